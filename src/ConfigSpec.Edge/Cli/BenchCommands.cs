using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using ConfigSpec.Interop;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Sampling;

namespace ConfigSpec.Edge.Cli;

/// <summary><c>bench decode</c> and <c>bench speculative</c>: figures printed, never asserted.</summary>
internal static class BenchCommands
{
    public static Command Create(TextWriter output)
    {
        var bench = new Command("bench", "benchmarks that print measured figures");
        bench.Subcommands.Add(Decode(output));
        bench.Subcommands.Add(Speculative(output));
        bench.Subcommands.Add(RemoteBench.Rounds(output));
        bench.Subcommands.Add(RemoteBench.Fleet(output));
        bench.Subcommands.Add(PowerBench.Create(output));
        bench.Subcommands.Add(DaemonBench.Create(output));
        return bench;
    }

    private static Command Decode(TextWriter output)
    {
        var model = new Option<string>("--model") { Description = "GGUF model to decode with", Required = true };
        var tokens = new Option<int>("--tokens") { Description = "tokens to decode (after 64 warm-up tokens)", DefaultValueFactory = _ => 5000 };
        var threads = new Option<int>("--threads") { Description = "decode threads", DefaultValueFactory = _ => 1 };
        var command = new Command("decode",
            "single-token greedy decode loop through the managed API and through the drafter (compare with scripts/bench/decode_loop.c)")
        {
            model, tokens, threads,
        };
        command.SetAction(parse =>
        {
            var count = parse.GetValue(tokens);
            if (count < 1)
            {
                throw new ConfigSpecException($"--tokens {count} must be at least 1");
            }

            using var m = EdgeCli.LoadModel(parse, parse.GetValue(model)!, "--model");
            var n = parse.GetValue(threads);
            var c = CultureInfo.InvariantCulture;

            // Each path at two KV depth ranges: attention costs more per token deeper in the cache, so the drafter and
            // the plain loop are compared over the same positions (0..127, and 0..499 as a whole story).
            foreach (var depth in (int[])[128, 500])
            {
                double apiSeconds;
                using (var context = m.CreateContext(new LlamaContextOptions { ContextLength = 512, Threads = n }))
                {
                    ApiLoop(context, m, 64, depth);
                    apiSeconds = ApiLoop(context, m, count, depth);
                }

                var api = apiSeconds * 1e6 / count;
                output.WriteLine(string.Create(c, $"managed-api  depth={depth} tokens={count} seconds={apiSeconds:F4} tokens_per_s={count / apiSeconds:F1} us_per_token={api:F2}"));

                // Sequential rounds: blocks of 8 all accepted, then the verifier's token (9 decoded per 8 drafted). Chained
                // (pipelined) rounds: each block continues the one before with no verifier token between them.
                foreach (var chained in (bool[])[false, true])
                {
                    var (drafted, decoded, seconds) = DrafterLoop(m, n, count, depth, chained);
                    var perDecoded = seconds * 1e6 / decoded;
                    output.WriteLine(string.Create(c,
                        $"drafter      depth={depth} mode={(chained ? "chained" : "sequential")} tokens={drafted} decoded={decoded} seconds={seconds:F4} tokens_per_s={drafted / seconds:F1} us_per_token={seconds * 1e6 / drafted:F2} us_per_decoded={perDecoded:F2} vs_api={perDecoded / api:F3}"));
                }
            }

            return EdgeCli.ExitOk;
        });
        return command;
    }

    /// <summary>Greedy single-token loop; the KV cache is cleared when <paramref name="depth"/> positions are used.</summary>
    private static double ApiLoop(LlamaContext context, LlamaModel model, int count, int depth)
    {
        context.Clear();
        context.Decode([model.BosToken], 0);
        var position = 1;
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            var next = TokenDistribution.ArgMax(context.GetLogits(-1));
            if (position >= depth)
            {
                context.Clear();
                position = 0;
            }

            context.Decode([next], position++);
        }

        return Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    /// <summary>The drafter's own path in blocks of 8, all accepted, the sequence restarted before it passes <paramref name="depth"/> positions.</summary>
    private static (long Drafted, long Decoded, double Seconds) DrafterLoop(LlamaModel model, int threads, int count, int depth, bool chained)
    {
        using var drafter = new Drafter(model, [model.BosToken], SamplingSettings.Greedy, 512, threads);
        var block = new List<int>(8);
        long drafted = 0;
        var perBlock = chained ? 8 : 9;
        var started = Stopwatch.GetTimestamp();
        while (drafted < count)
        {
            drafter.Restart([model.BosToken]);
            for (var committed = 1; drafted < count && committed + perBlock + 1 < depth; committed += perBlock)
            {
                drafter.Draft(8, block, null);
                drafter.Commit(block, 8, chained ? -1 : block[^1]);
                drafted += 8;
            }
        }

        return (drafted, drafter.DecodedTokens, Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    private static Command Speculative(TextWriter output)
    {
        var target = new Option<string>("--target") { Description = "target GGUF model", Required = true };
        var drafts = new Option<string>("--drafts") { Description = "comma-separated draft GGUF files", Required = true };
        var ks = new Option<string>("--k") { Description = "comma-separated draft lengths", DefaultValueFactory = _ => "1,4,8" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "tokens per generation", DefaultValueFactory = _ => 200 };
        var repeat = new Option<int>("--repeat") { Description = "timed repetitions per configuration (median reported)", DefaultValueFactory = _ => 5 };
        var prompt = new Option<string>("--prompt") { Description = "prompt text", DefaultValueFactory = _ => "Once upon a time" };
        var command = new Command("speculative", "wall time of speculative vs target-only generation, per draft and K, local verifier")
        {
            target, drafts, ks, maxTokens, repeat, prompt,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var c = CultureInfo.InvariantCulture;
            using var targetModel = EdgeCli.LoadModel(parse, parse.GetValue(target)!, "--target");
            var draftPaths = parse.GetValue(drafts)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var lengths = parse.GetValue(ks)!.Split(',', StringSplitOptions.RemoveEmptyEntries)
                .Select(s => int.TryParse(s, NumberStyles.Integer, c, out var v) ? v : throw new ConfigSpecException($"--k: '{s}' is not a number")).ToArray();
            var runs = Math.Max(1, parse.GetValue(repeat));
            var promptTokens = targetModel.Tokenize(parse.GetValue(prompt)!);
            var baseOptions = new GenerationOptions { MaxTokens = parse.GetValue(maxTokens), DraftLength = 0 };

            async Task<(double Median, GenerationResult Last)> Measure(LlamaModel? draft, GenerationOptions options)
            {
                var last = await LocalGeneration.RunAsync(targetModel, draft, promptTokens, options, cancellationToken: cancellationToken).ConfigureAwait(false);
                var times = new List<double>();
                for (var i = 0; i < runs; i++)
                {
                    last = await LocalGeneration.RunAsync(targetModel, draft, promptTokens, options, cancellationToken: cancellationToken).ConfigureAwait(false);
                    times.Add(last.WallSeconds);
                }

                times.Sort();
                return (times[times.Count / 2], last);
            }

            var (baseline, reference) = await Measure(null, baseOptions).ConfigureAwait(false);
            output.WriteLine(string.Create(c, $"{"draft",-32} {"K",3} {"wall_ms",9} {"speedup",8} {"mean_acc",9} {"draft_tok/s",12} {"identical",9}"));
            output.WriteLine(string.Create(c, $"{"(target only)",-32} {0,3} {baseline * 1000,9:F2} {1.0,8:F2} {"-",9} {"-",12} {"-",9}"));
            foreach (var path in draftPaths)
            {
                using var draft = EdgeCli.LoadModel(parse, path, "--drafts");
                foreach (var k in lengths)
                {
                    var (wall, result) = await Measure(draft, baseOptions with { DraftLength = k }).ConfigureAwait(false);
                    var identical = result.Tokens.SequenceEqual(reference.Tokens) ? "yes" : "no";
                    output.WriteLine(string.Create(c,
                        $"{Path.GetFileName(path),-32} {k,3} {wall * 1000,9:F2} {baseline / wall,8:F2} {result.Acceptance.MeanAccepted,9:F2} {result.DraftTokensPerSecond,12:F0} {identical,9}"));
                }
            }

            return EdgeCli.ExitOk;
        });
        return command;
    }
}
