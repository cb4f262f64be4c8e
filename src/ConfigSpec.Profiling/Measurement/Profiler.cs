using ConfigSpec.Contracts;
using System.Diagnostics;
using System.Security.Cryptography;
using ConfigSpec.Interop;
using ConfigSpec.Interop.Gguf;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Profiling.Prompts;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Sampling;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Telemetry.Energy;

namespace ConfigSpec.Profiling.Measurement;

/// <summary>How long and how precisely to profile.</summary>
public sealed record ProfilerOptions
{
    /// <summary>Drafts per round while profiling: acceptance is measured at positions 1..KMax.</summary>
    /// <summary>The defaults, the one place they are written (the lab command and the daemon's settings take theirs from here).</summary>
    public static ProfilerOptions Defaults { get; } = new();

    public int KMax { get; init; } = 8;

    /// <summary>Stop once the confidence intervals of v_d and of the mean accepted length are within ±this fraction.</summary>
    public double Tolerance { get; init; } = 0.03;

    public double Confidence { get; init; } = 0.95;

    public int MinRounds { get; init; } = 30;

    public int MaxRounds { get; init; } = 400;

    public int TokensPerPrompt { get; init; } = 64;

    /// <summary>Rounds at least per block length when timing drafting and verification for K = 1..KMax (0 = skip).</summary>
    public int TimingRounds { get; init; } = 16;

    public int ContextLength { get; init; } = 512;

    public int Threads { get; init; } = 1;

    public SamplingSettings Sampling { get; init; } = SamplingSettings.Greedy;

    public string DeviceId { get; init; } = "local";

    public LlamaModelOptions Model { get; init; } = new();

    /// <summary>Hold drafting to this many tokens per second (a slower board's pace, for lab runs on a fast machine); null = as fast as it drafts.</summary>
    public double? DraftTokensPerSecond { get; init; }

    /// <summary>
    /// Blocks in flight in the chain pass (pipelined blocks of K_max after the sequential rounds: acceptance by chain
    /// position out to K_max·D, and the round trip of chained blocks); 1 = no chain pass.
    /// </summary>
    public int ChainDepth { get; init; } = 4;

    public void Validate()
    {
        if (DraftTokensPerSecond is { } pace && (!(pace > 0) || double.IsInfinity(pace)))
        {
            throw new SettingException("draft_tokens_per_s", $"{pace} must be a positive number of tokens per second");
        }

        if (!DraftLength.IsValid(KMax))
        {
            throw new SettingException("k_max", $"{KMax} is out of range: use {DraftLength.Range}");
        }

        if (!(Tolerance > 0 && Tolerance < 1))
        {
            throw new SettingException("tolerance", $"{Tolerance} must lie between 0 and 1 (0.03 = ±3%)");
        }

        if (MinRounds < 2 || MaxRounds < MinRounds)
        {
            throw new SettingException("min_rounds", $"{MinRounds} and max_rounds {MaxRounds}: need 2 ≤ min ≤ max");
        }

        if (!PipelineDepth.IsValid(ChainDepth))
        {
            throw new SettingException("chain_depth", $"{ChainDepth} is out of range: use {PipelineDepth.Range} (1 = no chain pass)");
        }

        if (TokensPerPrompt < KMax + 1)
        {
            throw new SettingException("tokens_per_prompt", $"{TokensPerPrompt} must be at least k_max + 1 = {KMax + 1}");
        }

        Sampling.Validate();
    }
}

/// <summary>Where profiling stands, for a progress display.</summary>
public sealed record ProfileProgress(string Configuration, int Index, int Count, int Rounds, int MaxRounds, Estimate DraftTokensPerSecond, Estimate MeanAccepted, string Phase);

/// <summary>A draft to profile: its file, with an optional display name and the file's sha256 when already known.</summary>
public sealed record DraftSpec(string Path, string? Name = null, string? Sha256 = null);

/// <summary>
/// Measures draft configurations against a verifier: drafting speed, acceptance by position (drafting K_max per
/// round), verification round time split by the server's own time, power while drafting, load time and memory.
/// Stops when the confidence intervals are tight enough or at the round limit.
/// </summary>
public sealed class Profiler(IVerifier verifier, PromptSet prompts, ProfilerOptions options, PowerSampler? sampler = null, LlamaRuntimeOptions? runtime = null)
{
    private readonly IVerifier _verifier = verifier ?? throw new ArgumentNullException(nameof(verifier));
    private readonly PromptSet _prompts = prompts ?? throw new ArgumentNullException(nameof(prompts));
    private readonly ProfilerOptions _options = options ?? throw new ArgumentNullException(nameof(options));

    public Action<ProfileProgress>? Progress { get; init; }

    /// <summary>Profiles one draft configuration.</summary>
    public async Task<ConfigurationProfile> ProfileAsync(DraftSpec spec, int index = 1, int count = 1, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        _options.Validate();
        var sha = spec.Sha256 ?? await HashAsync(spec.Path, cancellationToken).ConfigureAwait(false);
        var residentBefore = DeviceIdentity.ResidentMegabytes();
        var loadStarted = Stopwatch.GetTimestamp();
        using var draft = LlamaModel.Load(spec.Path, _options.Model, runtime);
        var loadSeconds = Stopwatch.GetElapsedTime(loadStarted).TotalSeconds;
        var quant = QuantName(draft.Gguf);
        var name = spec.Name ?? Path.GetFileNameWithoutExtension(spec.Path);
        var label = $"{name} ({quant})";

        var all = new List<RoundMetrics>();
        var secondsPerToken = new SampleSet();
        var blockTimes = new double[_options.KMax];
        var timedBlocks = 0;
        var accepted = new SampleSet();
        double joules = 0, powerSeconds = 0;
        int windows = 0, tokens = 0, promptsUsed = 0;
        double? residentAfter = null;
        var order = _prompts.Interleaved();
        var converged = false;
        while (all.Count < _options.MaxRounds)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var prompt = PromptTokens(draft, order[promptsUsed % order.Count]);
            promptsUsed++;
            var room = _options.ContextLength - prompt.Length - _options.KMax - 2;
            var result = await Generate(draft, prompt, _options.KMax, Math.Min(_options.TokensPerPrompt, room), cancellationToken).ConfigureAwait(false);
            residentAfter ??= DeviceIdentity.ResidentMegabytes();
            var rounds = result.Rounds.Where(r => r.Drafted > 0).Take(_options.MaxRounds - all.Count).ToList();
            all.AddRange(rounds);
            tokens += result.Tokens.Count;
            foreach (var r in rounds.Where(r => r.Drafted == _options.KMax))
            {
                accepted.Add(r.Accepted);

                // The first round of a generation also feeds the prompt to the draft: its times are not a block's.
                if (!ReferenceEquals(r, result.Rounds[0]) && r.TokenTimes is { } times && times.Count == _options.KMax)
                {
                    // Marginal seconds per drafted token within the block, and the time to reach every shorter block.
                    secondsPerToken.Add(times.Count > 1 ? (times[^1] - times[0]) / (times.Count - 1) : times[0]);
                    for (var i = 0; i < times.Count; i++)
                    {
                        blockTimes[i] += times[i];
                    }

                    timedBlocks++;
                }
            }

            if (sampler is not null && rounds.Count > 0)
            {
                var energy = await DraftingEnergy.MeasureAsync(sampler, [.. rounds.Select(r => (r.DraftStart, r.DraftStart + r.DraftSeconds))], null, cancellationToken)
                    .ConfigureAwait(false);
                joules += energy.Joules;
                powerSeconds += energy.Seconds;
                windows += energy.Windows - energy.WindowsOverGaps;
            }

            var vd = secondsPerToken.Estimate(_options.Confidence).Reciprocal();
            var mean = accepted.Estimate(_options.Confidence);
            // Converged once both intervals are tight and every prompt has been used once (acceptance depends on the prompt).
            converged = all.Count >= _options.MinRounds && vd.IsWithin(_options.Tolerance) && mean.IsWithin(_options.Tolerance, floor: 1)
                && promptsUsed >= order.Count;
            Progress?.Invoke(new ProfileProgress(label, index, count, all.Count, _options.MaxRounds, vd, mean, converged ? "converged" : "profiling"));
            if (converged)
            {
                break;
            }
        }

        if (all.Count == 0)
        {
            throw new ConfigSpecException($"{spec.Path}: profiling produced no draft rounds (the prompts leave no room in a {_options.ContextLength}-token context?)");
        }

        var timing = await TimeEveryKAsync(draft, label, index, count, order, promptsUsed, cancellationToken).ConfigureAwait(false);
        var chain = await ChainAsync(draft, label, index, count, order, promptsUsed, cancellationToken).ConfigureAwait(false);
        var acceptance = AcceptanceStatistics.From(all, _options.KMax);
        if (timedBlocks == 0)
        {
            throw SettingException.Naming($"{spec.Path}: no full blocks of {_options.KMax} drafts were timed; raise {{tokens_per_prompt}} or lower {{k_max}}");
        }

        var byK = blockTimes.Select(t => t / timedBlocks).ToList();
        return new ConfigurationProfile
        {
            Draft = name,
            Quant = quant,
            File = Path.GetFullPath(spec.Path),
            FileBytes = draft.FileBytes,
            Sha256 = sha,
            LoadSeconds = loadSeconds,
            ResidentMegabytes = residentBefore is { } before && residentAfter is { } after ? Math.Max(0, after - before) : draft.FileBytes / 1048576.0,
            Rounds = all.Count,
            Tokens = tokens,
            Prompts = promptsUsed,
            DraftTokensPerSecond = secondsPerToken.Estimate(_options.Confidence).Reciprocal(),
            DraftSecondsByK = byK,
            MeanAccepted = accepted.Estimate(_options.Confidence),
            Converged = converged,
            AcceptanceByPosition = acceptance.ByPosition,
            ReachedByPosition = acceptance.Reached,
            Verify = Timing(_options.KMax, all.Any(r => r.Drafted == _options.KMax) ? [.. all.Where(r => r.Drafted == _options.KMax)] : all),
            TimingByK = timing,
            Power = sampler is null ? null : new DraftPower(powerSeconds > 0 ? joules / powerSeconds : 0, joules, powerSeconds, windows),
            Chain = chain,
        };
    }

    /// <summary>The quantisation a GGUF file declares (general.file_type), e.g. "Q4_K_M".</summary>
    public static string QuantName(GgufFile gguf)
    {
        ArgumentNullException.ThrowIfNull(gguf);
        return gguf.GetInteger("general.file_type") is { } fileType ? QuantTypes.NameOf(fileType) ?? $"ftype {fileType}" : "unknown";
    }

    public static async Task<string> HashAsync(string path, CancellationToken cancellationToken = default)
    {
        if (!File.Exists(path))
        {
            throw new ConfigSpecException($"draft model {path}: no such file");
        }

        var stream = File.OpenRead(path);
        await using (stream.ConfigureAwait(false))
        {
            return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
        }
    }

    internal static VerifyTiming Timing(int k, IReadOnlyList<RoundMetrics> rounds)
    {
        var trip = rounds.Select(r => r.VerifySeconds).ToList();
        return new VerifyTiming(k, rounds.Count, Statistics.Percentile(trip, 0.5), Statistics.Percentile(trip, 0.95),
            Statistics.Percentile([.. rounds.Select(r => r.ServerSeconds)], 0.5), rounds.Average(r => r.WaitSeconds), rounds.Average(r => r.DraftSeconds));
    }

    /// <summary>
    /// Rounds at every K in 1..K_max: the time to draft a block and to wait for its verification, measured at that K
    /// rather than extrapolated from K_max (both depend on K beyond the linear term: the target verifies K + 1 rows,
    /// and the draft's first proposal after a longer wait runs on colder caches).
    /// </summary>
    private async Task<List<VerifyTiming>> TimeEveryKAsync(LlamaModel draft, string label, int index, int count, IReadOnlyList<Prompt> order, int promptIndex,
        CancellationToken cancellationToken)
    {
        var timings = new List<VerifyTiming>();
        if (_options.TimingRounds <= 0)
        {
            return timings;
        }

        for (var k = 1; k <= _options.KMax; k++)
        {
            // Until the mean round time is known within the tolerance (at least TimingRounds rounds, at most half the round limit).
            var rounds = new List<RoundMetrics>();
            var roundTimes = new SampleSet();
            var limit = Math.Max(_options.TimingRounds, _options.MaxRounds / 2);
            for (var attempt = 0; attempt < 4 * limit && rounds.Count < limit; attempt++)
            {
                if (rounds.Count >= _options.TimingRounds && roundTimes.Estimate(_options.Confidence).IsWithin(_options.Tolerance))
                {
                    break;
                }

                var prompt = PromptTokens(draft, order[promptIndex++ % order.Count]);
                // Generations as long as in the acceptance rounds and in serving: the cost of a round grows with the context.
                var tokens = Math.Min(_options.TokensPerPrompt, _options.ContextLength - prompt.Length - k - 2);
                var result = await Generate(draft, prompt, k, tokens, cancellationToken).ConfigureAwait(false);

                // The first round of a generation also feeds the prompt to the draft: not a steady-state round.
                foreach (var round in result.Rounds.Skip(1).Where(r => r.Drafted == k).Take(limit - rounds.Count))
                {
                    rounds.Add(round);
                    roundTimes.Add(round.RoundSeconds);
                }
            }

            Progress?.Invoke(new ProfileProgress(label, index, count, k, _options.KMax, new Estimate(0, 0, 0, 0), new Estimate(0, 0, 0, 0), "timing"));
            if (rounds.Count > 0)
            {
                timings.Add(Timing(k, rounds));
            }
        }

        return timings;
    }

    /// <summary>
    /// The chain pass: generations of pipelined blocks of K_max with up to <see cref="ProfilerOptions.ChainDepth"/> in
    /// flight, until as many chains (episodes) are verified as a quarter of the round budget (at least the minimum rounds), or
    /// as many blocks as the round budget (a draft accepted nearly always makes long chains of many blocks). A pipelined
    /// episode reaches chain positions past K_max, which sequential rounds never draft; this measures them rather than
    /// extrapolating. Null when skipped, or when the verifier allows no blocks in flight (then there is no chain to measure).
    /// </summary>
    private async Task<ChainProfile?> ChainAsync(LlamaModel draft, string label, int index, int count, IReadOnlyList<Prompt> order, int promptIndex,
        CancellationToken cancellationToken)
    {
        if (_options.ChainDepth < 2)
        {
            return null;
        }

        var k = _options.KMax;
        var positions = k * _options.ChainDepth;
        var wanted = Math.Max(_options.MinRounds, _options.MaxRounds / 4);
        var rounds = new List<RoundMetrics>();
        var chains = 0;
        for (var attempt = 0; attempt < 4 * wanted && chains < wanted && rounds.Count < _options.MaxRounds; attempt++)
        {
            var prompt = PromptTokens(draft, order[promptIndex++ % order.Count]);
            // Long enough for a chain to run its full length, as the context allows.
            var tokens = Math.Min(Math.Max(_options.TokensPerPrompt, 2 * positions), _options.ContextLength - prompt.Length - positions - 2);
            var result = await Generate(draft, prompt, k, tokens, cancellationToken, _options.ChainDepth).ConfigureAwait(false);
            if (result.Pipeline < 2)
            {
                return null;
            }

            var verified = result.Rounds.Where(r => r.Drafted > 0).Take(_options.MaxRounds - rounds.Count).ToList();
            rounds.AddRange(verified);
            chains += verified.Count(r => r.ChainOffset == 0);
            Progress?.Invoke(new ProfileProgress(label, index, count, chains, wanted, new Estimate(0, 0, 0, 0), new Estimate(0, 0, 0, 0), "chain"));
        }

        if (rounds.Count == 0)
        {
            return null;
        }

        var acceptance = AcceptanceStatistics.ByChainPosition(rounds, positions);
        var chained = rounds.Where(r => r.ChainOffset > 0 && r.Drafted == k).ToList();
        return new ChainProfile(k, _options.ChainDepth, rounds.Count, acceptance.ByPosition, acceptance.Reached, chained.Count > 0 ? Timing(k, chained) : null);
    }

    private int[] PromptTokens(LlamaModel tokenizer, Prompt prompt) => PromptTokens(tokenizer, prompt, _options.ContextLength, _options.KMax);

    /// <summary>A prompt's tokens, cut to leave half the context for generation (profiling and validation alike).</summary>
    public static int[] PromptTokens(LlamaModel tokenizer, Prompt prompt, int contextLength, int kMax)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompt);
        var tokens = tokenizer.Tokenize(prompt.Text);
        var limit = Math.Max(8, (contextLength / 2) - kMax);
        return tokens.Length <= limit ? tokens : tokens[..limit];
    }

    private async Task<GenerationResult> Generate(LlamaModel draft, int[] prompt, int k, int maxTokens, CancellationToken cancellationToken, int pipeline = 1)
    {
        var generation = new GenerationOptions
        {
            DraftLength = k,
            Pipeline = pipeline,
            MaxTokens = Math.Max(1, maxTokens),
            Sampling = _options.Sampling,
            ContextLength = _options.ContextLength,
            Threads = _options.Threads,
            DeviceId = _options.DeviceId,
            Policy = _options.DraftTokensPerSecond is { } pace ? new Speculative.Policies.PacedPolicy(new Speculative.Policies.StaticPolicy(k), pace) : null,
        };
        return await new SpeculativeGenerator(_verifier, draft).GenerateAsync(prompt, generation, draft, cancellationToken).ConfigureAwait(false);
    }
}
