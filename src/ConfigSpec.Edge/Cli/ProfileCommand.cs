using System.CommandLine;
using ConfigSpec.Board;
using System.Globalization;
using ConfigSpec.Interop;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Profiling.Measurement;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Profiling.Prompts;
using ConfigSpec.Profiling.Reports;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Sampling;

namespace ConfigSpec.Edge.Cli;

/// <summary><c>profile</c>: measures a board's draft configurations against a verifier into a versioned JSON profile (and CSV).</summary>
internal static class ProfileCommand
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static Command Create(TextWriter output)
    {
        var board = new BoardOptions();
        var drafts = new Option<string?>("--drafts") { Description = "draft GGUF files, comma-separated" };
        var baseModel = new Option<string?>("--base") { Description = "derive drafts from this base model with --quants" };
        var quants = new Option<string?>("--quants") { Description = "quantisations to derive from --base, e.g. Q4_0,Q4_K_M,Q8_0" };
        var workDir = new Option<string?>("--work-dir") { Description = "folder for derived drafts (default: beside --out)" };
        var idle = new Option<string>("--idle-baseline") { Description = "idle power measured first for this long (0s = none)", DefaultValueFactory = _ => "2s" };
        var kMax = new Option<int>("--k-max") { Description = "drafts per profiling round: acceptance is measured at positions 1..k-max", DefaultValueFactory = _ => ProfilerOptions.Defaults.KMax };
        var prompts = new Option<string?>("--prompts") { Description = "JSONL prompts in the Dolly 15K schema (instruction, context, category); default: the built-in set" };
        var resume = new Option<bool>("--resume") { Description = "continue the profile in --out, keeping its finished configurations" };
        var force = new Option<bool>("--force") { Description = "replace an existing --out file" };
        var outFile = new Option<string>("--out") { Description = "profile file to write (JSON; a CSV is written beside it)", Required = true };
        var tolerance = new Option<double>("--tolerance") { Description = "stop when the 95% intervals of v_d and mean accepted length are within ±this fraction", DefaultValueFactory = _ => ProfilerOptions.Defaults.Tolerance };
        var minRounds = new Option<int>("--min-rounds") { Description = "rounds at least, per configuration", DefaultValueFactory = _ => ProfilerOptions.Defaults.MinRounds };
        var maxRounds = new Option<int>("--max-rounds") { Description = "round limit per configuration", DefaultValueFactory = _ => ProfilerOptions.Defaults.MaxRounds };
        var tokensPerPrompt = new Option<int>("--tokens-per-prompt") { Description = "tokens generated per prompt", DefaultValueFactory = _ => ProfilerOptions.Defaults.TokensPerPrompt };
        var timingRounds = new Option<int>("--timing-rounds") { Description = "rounds at least per K when timing drafting and verification for K = 1..k-max, more until the mean round time is within --tolerance (0 = extrapolate from k-max)", DefaultValueFactory = _ => ProfilerOptions.Defaults.TimingRounds };
        var chainDepth = new Option<int>("--chain-depth")
        {
            Description = "blocks in flight in the chain pass, which measures acceptance at the chain positions pipelined rounds reach past k-max (1 = no chain pass)",
            DefaultValueFactory = _ => ProfilerOptions.Defaults.ChainDepth,
        };
        var threads = new Option<int>("--threads") { Description = "decode threads per model", DefaultValueFactory = _ => ProfilerOptions.Defaults.Threads };
        var ctx = new Option<int>("--ctx") { Description = "context length in tokens", DefaultValueFactory = _ => ProfilerOptions.Defaults.ContextLength };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy acceptance (default); > 0 measures rejection-sampling acceptance" };
        var pace = new Option<double?>("--draft-tokens-per-s") { Description = "hold drafting to this many tokens per second (a slower board's pace, for lab runs on a fast machine)" };
        var command = new Command("profile", "measure drafting speed, power, acceptance by position and verification time for each draft configuration")
        {
            drafts, baseModel, quants, workDir, idle, kMax, prompts, resume, force, outFile,
            tolerance, minRounds, maxRounds, tokensPerPrompt, timingRounds, chainDepth, threads, ctx, temperature, pace,
        };
        board.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var options = new ProfilerOptions
            {
                KMax = parse.GetValue(kMax),
                Tolerance = parse.GetValue(tolerance),
                MinRounds = parse.GetValue(minRounds),
                MaxRounds = parse.GetValue(maxRounds),
                TokensPerPrompt = parse.GetValue(tokensPerPrompt),
                TimingRounds = parse.GetValue(timingRounds),
                ChainDepth = parse.GetValue(chainDepth),
                ContextLength = parse.GetValue(ctx),
                Threads = parse.GetValue(threads),
                Sampling = new SamplingSettings(parse.GetValue(temperature), 0, 1),
                DeviceId = parse.GetValue(board.DeviceId)!,
                Model = new LlamaModelOptions { GpuLayers = parse.GetValue(EdgeCli.GpuLayers) },
                DraftTokensPerSecond = parse.GetValue(pace),
            };
            options.Validate();
            var outPath = Path.GetFullPath(parse.GetValue(outFile)!);
            var existing = ExistingProfile(outPath, parse.GetValue(resume), parse.GetValue(force));
            if (existing is not null && existing.Settings.KMax != options.KMax)
            {
                throw new ConfigSpecException($"--resume: {outPath} was profiled with --k-max {existing.Settings.KMax}; this run asks for {options.KMax}");
            }

            var promptSet = parse.GetValue(prompts) is { } promptFile ? PromptSet.Load(promptFile) : PromptSet.BuiltIn();
            var runtime = EdgeCli.Runtime(parse);
            LlamaRuntime.Initialize(runtime);
            var specs = DraftSpecs(parse.GetValue(drafts), parse.GetValue(baseModel), parse.GetValue(quants),
                parse.GetValue(workDir) ?? Path.Combine(Path.GetDirectoryName(outPath)!, "drafts"), runtime, output);

            await using var powerSession = await board.StartPowerAsync(parse, parse.GetValue(idle)!, cancellationToken).ConfigureAwait(false);
            var generation = new GenerationOptions { ContextLength = options.ContextLength, Threads = options.Threads, DeviceId = options.DeviceId };
            await using var connection = await board.ConnectAsync(parse, generation, cancellationToken).ConfigureAwait(false);
            if (existing is not null && existing.Verifier.Target != connection.TargetName)
            {
                throw new ConfigSpecException($"--resume: {outPath} was profiled against target '{existing.Verifier.Target}', this run verifies with '{connection.TargetName}'");
            }

            var progress = new ProgressLine(output, ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected);
            var profiler = new Profiler(connection.Verifier, promptSet, options, powerSession?.Sampler, runtime) { Progress = progress.Report };
            var profile = existing ?? ProfileRun.NewProfile(options, promptSet, powerSession, connection);
            profile = await ProfileRun.MeasureAsync(profile, specs, profiler, outPath, output.WriteLine, progress.Done, cancellationToken).ConfigureAwait(false);
            output.WriteLine($"profile: {outPath} ({profile.Configurations.Count} configurations); CSV: {ProfileRun.CsvPath(outPath)}");
            if (profile.Power.Estimated)
            {
                output.WriteLine($"power figures are ESTIMATED ({profile.Power.Source}), not measured");
            }

            return EdgeCli.ExitOk;
        });
        return command;
    }

    /// <summary>An empty profile for this device, power source and verifier.</summary>
    private static BoardProfile? ExistingProfile(string outPath, bool resume, bool force)
    {
        if (!File.Exists(outPath))
        {
            return null;
        }

        if (resume)
        {
            return ProfileJson.Load(outPath);
        }

        return force ? null : throw new ConfigSpecException($"--out {outPath} exists: add --resume to continue it or --force to replace it");
    }

    internal static List<DraftSpec> DraftSpecs(string? drafts, string? baseModel, string? quants, string workDir, LlamaRuntimeOptions runtime, TextWriter output)
    {
        var specs = new List<DraftSpec>();
        foreach (var path in (drafts ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            specs.Add(new DraftSpec(File.Exists(path) ? path : throw new ConfigSpecException($"--drafts: {path}: no such file")));
        }

        if (baseModel is not null || quants is not null)
        {
            if (baseModel is null || quants is null)
            {
                throw new ConfigSpecException("--base and --quants go together: --base FILE --quants Q4_0,Q4_K_M,Q8_0");
            }

            if (!File.Exists(baseModel))
            {
                throw new ConfigSpecException($"--base {baseModel}: no such file");
            }

            Directory.CreateDirectory(workDir);
            foreach (var quant in quants.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                _ = QuantTypes.Parse(quant);
                var derived = Path.Combine(workDir, $"{Path.GetFileNameWithoutExtension(baseModel)}-{quant.ToUpperInvariant()}.gguf");
                if (!File.Exists(derived))
                {
                    output.WriteLine($"deriving {derived} from {baseModel} ({quant})");
                    LlamaQuantizer.Quantize(baseModel, derived, new QuantizeOptions { QuantType = quant, AllowRequantize = true }, runtime); // writes atomically
                }

                specs.Add(new DraftSpec(derived));
            }
        }

        return specs.Count > 0 ? specs : throw new ConfigSpecException("profile needs draft models: --drafts FILE[,FILE...] and/or --base FILE --quants LIST");
    }

    /// <summary>Progress on a terminal (one rewritten line), plain lines at most every two seconds otherwise.</summary>
    private sealed class ProgressLine(TextWriter output, bool terminal)
    {
        private long _last;
        private bool _open;

        public void Report(ProfileProgress p)
        {
            var line = p.Phase == "timing"
                ? string.Create(C, $"  [{p.Index}/{p.Count}] {p.Configuration}: timing K = {p.Rounds} of {p.MaxRounds}")
                : p.Phase == "chain"
                ? string.Create(C, $"  [{p.Index}/{p.Count}] {p.Configuration}: chain pass, {p.Rounds} of {p.MaxRounds} chains")
                : string.Create(C,
                    $"  [{p.Index}/{p.Count}] {p.Configuration}: {p.Rounds} rounds (limit {p.MaxRounds}); v_d {p.DraftTokensPerSecond.Mean:0.0} ±{Percent(p.DraftTokensPerSecond)}; mean accepted {p.MeanAccepted.Mean:0.00} ±{Percent(p.MeanAccepted)}; {p.Phase}");
            if (terminal)
            {
                output.Write("\r" + line.PadRight(Math.Min(160, line.Length + 8))[..Math.Min(line.Length + 8, 160)]);
                _open = true;
                return;
            }

            var now = Environment.TickCount64;
            if (now - _last >= 2000 || p.Phase == "converged")
            {
                output.WriteLine(line);
                _last = now;
            }
        }

        public void Done()
        {
            if (_open)
            {
                output.WriteLine();
                _open = false;
            }
        }

        private static string Percent(Estimate e) => double.IsFinite(e.RelativeHalfWidth) ? (e.RelativeHalfWidth * 100).ToString("0.0", C) + "%" : "∞";
    }
}
