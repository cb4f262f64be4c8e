using ConfigSpec.Contracts;
using System.CommandLine;
using System.Globalization;
using ConfigSpec.Interop;
using ConfigSpec.Profiling;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Profiling.Measurement;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Profiling.Prompts;
using ConfigSpec.Profiling.Selection;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Telemetry.Energy;

namespace ConfigSpec.Edge.Cli;

/// <summary><c>validate</c>: runs real generation with one configuration and compares it with the profile's prediction.</summary>
internal static class ValidateCommand
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static Command Create(TextWriter output)
    {
        var profile = new Option<string>("--profile") { Description = "profile JSON written by `profile`", Required = true };
        var draft = new Option<string>("--draft") { Description = "draft GGUF model (must be in the profile)", Required = true };
        var k = new Option<int>("--k") { Description = "draft block length", Required = true };
        var boardOptions = new BoardOptions();
        var tokens = new Option<int>("--tokens") { Description = "tokens to generate in all", DefaultValueFactory = _ => 256 };
        var prompts = new Option<string?>("--prompts") { Description = "JSONL prompts (default: the profile's prompt set)" };
        var json = new Option<bool>("--json") { Description = "print one JSON object: predicted, measured, goodput_error_pct" };
        var pace = new Option<double?>("--draft-tokens-per-s") { Description = "hold drafting to this many tokens per second (as the profile was taken with it)" };
        var perPrompt = new Option<int?>("--tokens-per-prompt")
        {
            Description = "tokens per generation (default: the profile's); longer generations come nearer the steady state the model predicts",
        };
        var selection = new SelectionOptions();
        var command = new Command("validate", "run one configuration for real and compare goodput, tokens per dollar and joules per token with the prediction")
        {
            profile, draft, k, tokens, prompts, json, pace, perPrompt,
        };
        selection.AddTo(command, constraints: false);
        boardOptions.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var board = ProfileJson.Load(parse.GetValue(profile)!);
            var settings = selection.Read(parse);
            var draftPath = parse.GetValue(draft)!;
            var blockLength = parse.GetValue(k);
            if (blockLength < 1 || blockLength > board.Settings.KMax)
            {
                throw new ConfigSpecException($"--k {blockLength} is out of range: the profile measured acceptance for K = 1..{board.Settings.KMax}");
            }

            var total = parse.GetValue(tokens);
            if (total < 1)
            {
                throw new ConfigSpecException($"--tokens {total} must be at least 1");
            }

            var sha = await Profiler.HashAsync(draftPath, cancellationToken).ConfigureAwait(false);
            var configuration = board.Configurations.FirstOrDefault(c => c.Sha256 == sha)
                ?? throw new ConfigSpecException($"--draft {draftPath} is not in the profile (profiled: {string.Join(", ", board.Configurations.Select(c => $"{c.Draft} ({c.Quant})"))}); profile it first");
            // --pipeline D validates the configuration with D blocks in flight (the selector's bound is the D asked for).
            var depth = settings.MaxPipeline;
            var predicted = Selector.Predict(board, settings).First(c => ReferenceEquals(c.Configuration, configuration) && c.K == blockLength && c.Pipeline == depth);
            var promptSet = parse.GetValue(prompts) is { } file ? PromptSet.Load(file)
                : board.Settings.PromptSource != PromptSet.BuiltInName && File.Exists(board.Settings.PromptSource) ? PromptSet.Load(board.Settings.PromptSource) : PromptSet.BuiltIn();

            var options = new GenerationOptions { DraftLength = blockLength, Pipeline = depth, ContextLength = 512, DeviceId = parse.GetValue(boardOptions.DeviceId)! };
            if (parse.GetValue(pace) is { } tokensPerSecond)
            {
                options = options with { Policy = new Speculative.Policies.PacedPolicy(new Speculative.Policies.StaticPolicy(blockLength), tokensPerSecond) };
            }

            await using var powerSession = await boardOptions.StartPowerAsync(parse, "0s", cancellationToken).ConfigureAwait(false);
            await using var connection = await boardOptions.ConnectAsync(parse, options, cancellationToken, defaultTargetId: board.Verifier.Target).ConfigureAwait(false);
            using var draftModel = EdgeCli.LoadModel(parse, draftPath, "--draft");
            var generator = new SpeculativeGenerator(connection.Verifier, draftModel);
            var rounds = new List<RoundMetrics>();
            var steadyRounds = new List<RoundMetrics>();
            var generationLength = parse.GetValue(perPrompt) ?? board.Settings.TokensPerPrompt;
            if (generationLength < 1)
            {
                throw new ConfigSpecException($"--tokens-per-prompt {generationLength} must be at least 1");
            }

            var discarded = new List<(double Start, double End)>();
            var generated = 0;
            var discardedTokens = 0;
            var depthUsed = 1;
            double wall = 0, span = 0, predictedSpan = 0;
            var order = promptSet.Interleaved();
            for (var i = 0; generated < total; i++)
            {
                var prompt = Profiler.PromptTokens(draftModel, order[i % order.Count], options.ContextLength, board.Settings.KMax);
                var run = await generator.GenerateAsync(prompt, options with { MaxTokens = Math.Min(generationLength, total - generated) }, draftModel, cancellationToken)
                    .ConfigureAwait(false);
                rounds.AddRange(run.Rounds);
                steadyRounds.AddRange(run.Rounds.Skip(1)); // the first round also feeds the prompt to the draft
                discarded.AddRange(run.DiscardedWindows.Select(w => (w.Start, w.Start + w.Seconds)));
                discardedTokens += run.DiscardedTokens;
                depthUsed = Math.Max(depthUsed, run.Pipeline);
                generated += run.Tokens.Count;
                wall += run.WallSeconds;
                // Pipelined blocks overlap, so their round times do not add up: the run's goodput is over its span.
                span += run.SpanSeconds;
                if (run.Tokens.Count > 0)
                {
                    // The model for a generation of this length: a pipelined one pays its last round trip in full.
                    predictedSpan += Selector.GenerationSeconds(predicted, run.Tokens.Count);
                }
            }

            var full = steadyRounds.Where(r => r.Drafted == blockLength).ToList();
            var steady = full.Count > 0 ? full : rounds;
            var goodput = depth > 1 ? generated / span : steady.Sum(r => r.Accepted + 1) / steady.Sum(r => r.RoundSeconds);
            // Sequential: every round yields its accepted drafts and the verifier's token. Pipelined: a block accepted whole
            // with a block chained after it yields no token of the verifier's, and only the block ending a chain is billed one.
            var yielded = depth > 1 ? generated : rounds.Sum(r => r.Accepted + 1);
            var tokensPerUsd = yielded / (depth > 1
                ? rounds.Sum(r => settings.Pricing.BlockCost(r.Drafted, endsChain: r.Accepted < r.Drafted))
                : rounds.Sum(r => settings.Pricing.RoundCost(r.Drafted)));
            double? joulesPerToken = null;
            var estimated = false;
            if (powerSession is not null)
            {
                // Every drafted token costs energy, the ones discarded after a cut included.
                var energy = await DraftingEnergy.MeasureAsync(powerSession.Sampler,
                    [.. rounds.Where(r => r.Drafted > 0).Select(r => (r.DraftStart, r.DraftStart + r.DraftSeconds)).Concat(discarded).OrderBy(w => w.Item1)], null,
                    cancellationToken).ConfigureAwait(false);
                var waitJoules = settings.IncludeIdleEnergy && board.Power.IdleWatts is { } idle ? idle * rounds.Sum(r => r.WaitSeconds) : 0;
                joulesPerToken = (energy.Joules + waitJoules) / yielded;
                estimated = energy.Estimated;
            }

            var acceptance = AcceptanceStatistics.From(rounds, blockLength);
            var draftSpeed = (rounds.Sum(r => r.Drafted) + discardedTokens) / (rounds.Sum(r => r.DraftSeconds) + discarded.Sum(w => w.End - w.Start));
            var draftBlock = steady.Average(r => r.DraftSeconds);
            var wait = steady.Average(r => r.WaitSeconds);
            // Pipelined: measured over the generations' spans, so predicted for generations of the lengths run (the steady
            // state is the selector's figure, shown beside it); sequential: steady rounds against the steady state.
            double? generationGoodput = depth > 1 && predictedSpan > 0 ? generated / predictedSpan : null;
            var expectedGoodput = generationGoodput ?? predicted.Goodput;
            var error = (goodput - expectedGoodput) / expectedGoodput * 100;
            var costError = (tokensPerUsd - predicted.TokensPerUsd) / predicted.TokensPerUsd * 100;
            double? energyError = joulesPerToken is { } mj && predicted.JoulesPerToken is { } pj ? (mj - pj) / pj * 100 : null;
            if (parse.GetValue(json))
            {
                JsonOutput.Write(output, new ValidationReport(configuration.Draft, configuration.Quant, blockLength, SelectionCommands.Candidate(predicted, null),
                    new MeasuredFigures(goodput, generated / wall, tokensPerUsd, joulesPerToken, acceptance.MeanAccepted, draftSpeed, draftBlock, wait, rounds.Count,
                        generated, joulesPerToken is null ? null : estimated), error, costError, energyError, depth, discardedTokens, generationGoodput));
                return EdgeCli.ExitOk;
            }

            output.WriteLine(depth > 1
                ? string.Create(C, $"{configuration.Draft} ({configuration.Quant}) K={blockLength} D={depth}: {generated} tokens in {rounds.Count} blocks verified, {discardedTokens} drafts discarded after cuts{(depthUsed < depth ? $" (the verifier allowed {depthUsed} in flight)" : string.Empty)}")
                : string.Create(C, $"{configuration.Draft} ({configuration.Quant}) K={blockLength}: {generated} tokens in {rounds.Count} rounds"));
            output.WriteLine(string.Create(C, $"{"",-22} {"predicted",12} {"measured",12} {"error",8}"));
            output.WriteLine(string.Create(C, $"{"goodput tokens/s",-22} {expectedGoodput,12:0.0} {goodput,12:0.0} {error,7:+0.0;-0.0}%"));
            if (generationGoodput is not null)
            {
                output.WriteLine(string.Create(C, $"{"  steady state",-22} {predicted.Goodput,12:0.0}   (the selector's figure; the row above is for generations of the lengths run)"));
            }

            output.WriteLine(string.Create(C, $"{"tokens per USD",-22} {predicted.TokensPerUsd,12:0} {tokensPerUsd,12:0} {costError,7:+0.0;-0.0}%"));
            if (predicted.JoulesPerToken is { } p && joulesPerToken is { } m)
            {
                output.WriteLine(string.Create(C, $"{"mJ per token",-22} {p * 1000,12:0.###} {m * 1000,12:0.###} {energyError,7:+0.0;-0.0}%{(estimated ? " (ESTIMATED power)" : string.Empty)}"));
            }

            output.WriteLine(string.Create(C, $"{"E_K",-22} {predicted.ExpectedAccepted,12:0.00} {acceptance.MeanAccepted,12:0.00}"));
            output.WriteLine(string.Create(C, $"{"draft block ms",-22} {predicted.DraftSeconds * 1000,12:0.000} {draftBlock * 1000,12:0.000}"));
            output.WriteLine(string.Create(C, $"{"T_verify ms",-22} {predicted.VerifySeconds * 1000,12:0.00} {wait * 1000,12:0.00}"));
            return EdgeCli.ExitOk;
        });
        return command;
    }
}
