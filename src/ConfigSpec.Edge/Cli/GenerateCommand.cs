using ConfigSpec.Contracts;
using System.CommandLine;
using System.Globalization;
using ConfigSpec.Interop;
using ConfigSpec.Profiling;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Sampling;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Telemetry.Energy;
using ConfigSpec.Telemetry.Sources;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Remote;

namespace ConfigSpec.Edge.Cli;

/// <summary><c>generate</c>: local speculative generation with an in-process verifier.</summary>
internal static class GenerateCommand
{
    public static Command Create(TextWriter output)
    {
        var board = new BoardOptions();
        var idle = new Option<string>("--idle-baseline") { Description = "idle power measured first for this long (0s = none)", DefaultValueFactory = _ => "1s" };
        var draft = new Option<string?>("--draft") { Description = "draft GGUF model (proposes); omit with --k 0" };
        var k = new Option<int>("--k") { Description = $"draft block length {DraftLength.Range}; 0 = target only", DefaultValueFactory = _ => 4 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "tokens to generate", DefaultValueFactory = _ => 128 };
        var prompt = new Option<string>("--prompt") { Description = "prompt text", Required = true };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy (default); > 0 samples with exact rejection sampling" };
        var topK = new Option<int>("--top-k") { Description = "truncate sampling to the k most likely tokens (0 = off)" };
        var seed = new Option<ulong>("--seed") { Description = "random seed for sampling", DefaultValueFactory = _ => 1 };
        var threads = new Option<int>("--threads") { Description = "decode threads per model", DefaultValueFactory = _ => 1 };
        var ctx = new Option<int>("--ctx") { Description = "context length in tokens", DefaultValueFactory = _ => 512 };
        var json = new Option<bool>("--json") { Description = "print one JSON object" };
        var policy = new Option<string?>("--k-policy")
        {
            Description = $"choose K per round instead of a fixed --k ({Speculative.Policies.DraftPolicies.Help}; not oracle); --k is then the most it drafts",
        };
        var pace = new Option<double?>("--draft-tokens-per-s")
        {
            Description = "hold drafting to this many tokens per second (a slower board's pace, for lab runs on a fast machine; output is unchanged)",
        };
        var pipelineOption = new Option<int>("--pipeline")
        {
            Description = $"blocks in flight at once (1..{GenerationOptions.MaxPipeline}): with 2 or more the board drafts on while verdicts travel; 1 = sequential",
            DefaultValueFactory = _ => 1,
        };
        var compare = new Option<bool>("--compare-target") { Description = "also decode with the target alone and report the speed-up" };
        var command = new Command("generate", "speculative generation with a local verifier")
        {
            draft, k, maxTokens, prompt, temperature, topK, seed, threads, ctx, json, compare, idle, policy, pace, pipelineOption,
        };
        board.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var options = new GenerationOptions
            {
                DraftLength = parse.GetValue(k),
                MaxTokens = parse.GetValue(maxTokens),
                Sampling = new SamplingSettings(parse.GetValue(temperature), parse.GetValue(topK), parse.GetValue(seed)),
                ContextLength = parse.GetValue(ctx),
                Threads = parse.GetValue(threads),
                Pipeline = parse.GetValue(pipelineOption),
            };
            var draftPath = parse.GetValue(draft);
            options.Validate(draftPath is not null);
            options = options with { DeviceId = parse.GetValue(board.DeviceId)! };
            if (parse.GetValue(policy) is { } spec)
            {
                if (options.DraftLength < 1)
                {
                    throw new ConfigSpecException($"--k-policy needs --k {DraftLength.Range} (the most it may draft)");
                }

                options = options with
                {
                    Policy = Profiling.Objectives.PipelinedPolicies.Adapt(Speculative.Policies.DraftPolicies.Parse(spec, options.DraftLength), options.Pipeline),
                };
            }

            if (parse.GetValue(pace) is { } tokensPerSecond)
            {
                if (options.DraftLength < 1)
                {
                    throw new ConfigSpecException($"--draft-tokens-per-s needs a draft: --k {DraftLength.Range}");
                }

                options = options with
                {
                    Policy = new Speculative.Policies.PacedPolicy(options.Policy ?? new Speculative.Policies.StaticPolicy(options.DraftLength), tokensPerSecond),
                };
            }

            await using var connection = await board.ConnectAsync(parse, options, cancellationToken).ConfigureAwait(false);
            using var draftModel = options.DraftLength > 0 || connection.Target is null ? EdgeCli.LoadModel(parse, draftPath ?? string.Empty, "--draft") : null;
            var tokenizer = connection.Target ?? draftModel!;
            var promptTokens = tokenizer.Tokenize(parse.GetValue(prompt)!);
            var verifier = connection.Verifier;
            await using var powerSession = await board.StartPowerAsync(parse, parse.GetValue(idle)!, cancellationToken).ConfigureAwait(false);
            var sampler = powerSession?.Sampler;
            var idleWatts = powerSession?.IdleWatts;

            var result = await new SpeculativeGenerator(verifier, draftModel).GenerateAsync(promptTokens, options, tokenizer, cancellationToken).ConfigureAwait(false);
            DraftingEnergy? energy = null;
            if (sampler is not null)
            {
                // Every drafting window counts, discarded blocks' too: the board paid for them.
                var windows = result.Rounds.Where(r => r.Drafted > 0).Select(r => (r.DraftStart, r.DraftStart + r.DraftSeconds))
                    .Concat(result.DiscardedWindows.Select(w => (w.Start, w.Start + w.Seconds))).OrderBy(w => w.Item1).ToList();
                energy = await DraftingEnergy.MeasureAsync(sampler, windows, idleWatts, cancellationToken).ConfigureAwait(false);
            }

            GenerationResult? reference = null;
            if (parse.GetValue(compare) && options.DraftLength > 0)
            {
                reference = await new SpeculativeGenerator(verifier, null)
                    .GenerateAsync(promptTokens, options with { DraftLength = 0 }, tokenizer, cancellationToken).ConfigureAwait(false);
            }

            if (parse.GetValue(json))
            {
                WriteJson(output, result, reference, energy, powerSession?.Spec);
            }
            else
            {
                WriteText(output, result, reference);
                if (energy is not null)
                {
                    WriteEnergy(output, result, energy, powerSession!.Spec);
                }
            }

            return EdgeCli.ExitOk;
        });
        return command;
    }

    private static void WriteText(TextWriter output, GenerationResult result, GenerationResult? reference)
    {
        var c = CultureInfo.InvariantCulture;
        output.WriteLine(result.Text);
        output.WriteLine();
        var acceptance = result.Acceptance;
        output.WriteLine(string.Create(c,
            $"K={result.DraftLength}: {result.Tokens.Count} tokens in {result.Rounds.Count} rounds, stop: {Snake(result.StopReason)}"));
        if (result.PipelineNote is { } note)
        {
            output.WriteLine("pipeline: " + note);
        }

        if (result.Pipeline > 1)
        {
            output.WriteLine(string.Create(c, $"pipeline: up to {result.Pipeline} blocks in flight; {result.DiscardedTokens} drafted tokens discarded after cuts"));
        }
        if (result.DraftLength > 0)
        {
            output.WriteLine("acceptance by position: " + string.Join(" ", acceptance.ByPosition.Select(a => a?.ToString("0.00", c) ?? "-")));
            output.WriteLine(string.Create(c, $"mean accepted per block: {acceptance.MeanAccepted:0.00}; drafting {result.DraftTokensPerSecond:0} tokens/s"));
        }

        output.WriteLine(string.Create(c, $"wall {result.WallSeconds:0.000} s, {result.TokensPerSecond:0} tokens/s, goodput {result.GoodputTokensPerSecond:0} tokens/s from the first draft to the last verdict (draft {result.DraftSeconds:0.000} s, verify {result.VerifySeconds:0.000} s)"));
        if (reference is not null)
        {
            output.WriteLine(string.Create(c,
                $"target only: wall {reference.WallSeconds:0.000} s, {reference.TokensPerSecond:0} tokens/s; speed-up {reference.WallSeconds / result.WallSeconds:0.00}x; identical output: {(reference.Tokens.SequenceEqual(result.Tokens) ? "yes" : "no")}"));
        }
    }

    private static void WriteEnergy(TextWriter output, GenerationResult result, DraftingEnergy energy, string spec)
    {
        var c = CultureInfo.InvariantCulture;
        var label = energy.Estimated ? " (ESTIMATED, not measured)" : string.Empty;
        output.WriteLine(string.Create(c,
            $"drafting energy{label}: {energy.Joules:F4} J over {energy.Windows} windows ({energy.Seconds:F3} s, mean {energy.MeanWatts:F2} W, source {spec})"));
        output.WriteLine(string.Create(c,
            $"  {energy.Joules / Math.Max(1, result.DraftedTokens) * 1000:F3} mJ per drafted token, {energy.Joules / Math.Max(1, result.Tokens.Count) * 1000:F3} mJ per generated token"));
        if (energy.IdleWatts is { } idle)
        {
            output.WriteLine(string.Create(c, $"  idle baseline {idle:F2} W; above idle {energy.DynamicJoules:F4} J"));
        }

        if (energy.SparseWindows > 0 || energy.WindowsOverGaps > 0)
        {
            output.WriteLine(string.Create(c,
                $"  {energy.SparseWindows} windows shorter than the sampling interval (trapezoid between neighbouring samples), {energy.WindowsOverGaps} over sensor gaps (not counted)"));
        }
    }

    private static void WriteJson(TextWriter output, GenerationResult result, GenerationResult? reference, DraftingEnergy? energy, string? powerSpec)
    {
        var acceptance = result.Acceptance;
        JsonOutput.Write(output, new GenerationReport(result.Text, result.Tokens, result.PromptTokenCount, result.DraftLength, result.Rounds.Count, Snake(result.StopReason),
            acceptance.MeanAccepted, acceptance.ByPosition, acceptance.Reached, result.DraftedTokens, result.DraftTokensPerSecond, result.DraftSeconds, result.VerifySeconds,
            result.WallSeconds, result.TokensPerSecond,
            reference is null ? null : new TargetOnlyRun(reference.WallSeconds, reference.TokensPerSecond, reference.WallSeconds / result.WallSeconds, reference.Tokens.SequenceEqual(result.Tokens)),
            energy is null ? null : new GenerationEnergy(powerSpec, energy.Estimated, energy.Joules, energy.Seconds, energy.MeanWatts,
                energy.Joules / Math.Max(1, result.DraftedTokens), energy.Joules / Math.Max(1, result.Tokens.Count), energy.Windows, energy.SparseWindows,
                energy.WindowsOverGaps, energy.IdleWatts, energy.IdleWatts is null ? null : energy.DynamicJoules),
            result.Pipeline, result.DiscardedTokens, result.PipelineNote, result.GoodputTokensPerSecond));
    }

    internal static string Snake(StopReason reason) => reason switch
    {
        StopReason.MaxTokens => "max_tokens",
        StopReason.EndOfGeneration => "end_of_generation",
        StopReason.ContextFull => "context_full",
        _ => reason.ToString(),
    };
}
