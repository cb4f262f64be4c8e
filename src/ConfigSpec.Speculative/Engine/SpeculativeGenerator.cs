using ConfigSpec.Contracts;
using System.Diagnostics;
using ConfigSpec.Interop;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Speculative.Sampling;
using ConfigSpec.Speculative.Verification;

namespace ConfigSpec.Speculative.Engine;

/// <summary>Settings of one generation.</summary>
public sealed record GenerationOptions
{
    public const int MaxDraftLength = Contracts.DraftLength.Max;

    /// <summary>Draft block length K; 0 decodes with the target alone.</summary>
    public int DraftLength { get; init; } = 4;

    public int MaxTokens { get; init; } = 128;

    public SamplingSettings Sampling { get; init; } = SamplingSettings.Greedy;

    /// <summary>Draft context length; prompt + generation must fit in it and in the verifier's.</summary>
    public int ContextLength { get; init; } = 512;

    public int Threads { get; init; } = 1;

    /// <summary>The board, for the verifier's per-board accounting.</summary>
    public string DeviceId { get; init; } = "local";

    /// <summary>
    /// Chooses K per round (and learns from each); <see cref="DraftLength"/> is then the most it may draft. Null: K is
    /// always <see cref="DraftLength"/>.
    /// </summary>
    public Policies.IDraftLengthPolicy? Policy { get; init; }

    /// <summary>Called after every round with the tokens it added to the output (for streaming); runs on the generating thread.</summary>
    public Action<IReadOnlyList<int>>? OnTokens { get; init; }

    public void Validate(bool hasDraft)
    {
        if (DraftLength < 0 || DraftLength > MaxDraftLength)
        {
            throw new SettingException("k", $"{DraftLength} is out of range: use 1..{MaxDraftLength}, or 0 for target-only decoding");
        }

        if (DraftLength > 0 && !hasDraft)
        {
            throw new SettingException("k", $"{DraftLength} needs a draft model, or use k 0 for target-only decoding");
        }

        if (MaxTokens < 1)
        {
            throw new SettingException("max_tokens", $"{MaxTokens} must be at least 1");
        }

        if (Threads < 1)
        {
            throw new SettingException("threads", $"{Threads} must be at least 1");
        }

        Sampling.Validate();
    }
}

/// <summary>
/// Measurements of one draft-and-verify round. <see cref="DraftStart"/> is when drafting began, in seconds of the
/// monotonic clock (<see cref="System.Diagnostics.Stopwatch"/>), so energy can be charged to exactly that window.
/// <see cref="ServerSeconds"/> is the verifier's own time for the round (queue and target compute, as it reports it);
/// <see cref="RoundSeconds"/> the whole round on the board, from the start of drafting to the draft cache in step again.
/// <see cref="TokenTimes"/> holds, per draft token, the seconds from the start of drafting until it was chosen.
/// </summary>
public sealed record RoundMetrics(int Drafted, int Accepted, double DraftSeconds, double VerifySeconds, double DraftStart = 0, double ServerSeconds = 0, double RoundSeconds = 0,
    IReadOnlyList<double>? TokenTimes = null)
{
    /// <summary>The part of the round the board spends not drafting: verification round trip plus bookkeeping.</summary>
    public double WaitSeconds => Math.Max(0, RoundSeconds - DraftSeconds);
}

public enum StopReason
{
    MaxTokens,
    EndOfGeneration,
    ContextFull,
}

/// <summary>The outcome of a generation with its per-round metrics.</summary>
public sealed record GenerationResult
{
    public required string Text { get; init; }

    public required IReadOnlyList<int> Tokens { get; init; }

    public required int PromptTokenCount { get; init; }

    public required int DraftLength { get; init; }

    public required IReadOnlyList<RoundMetrics> Rounds { get; init; }

    public required StopReason StopReason { get; init; }

    public required double WallSeconds { get; init; }

    public AcceptanceStatistics Acceptance => AcceptanceStatistics.From(Rounds, DraftLength);

    public double DraftSeconds => Rounds.Sum(r => r.DraftSeconds);

    public double VerifySeconds => Rounds.Sum(r => r.VerifySeconds);

    public int DraftedTokens => Rounds.Sum(r => r.Drafted);

    /// <summary>Drafted tokens the target accepted.</summary>
    public int AcceptedTokens => Rounds.Sum(r => r.Accepted);

    /// <summary>Drafted tokens per second of drafting time (v_d).</summary>
    public double DraftTokensPerSecond => DraftSeconds > 0 ? DraftedTokens / DraftSeconds : 0;

    public double TokensPerSecond => WallSeconds > 0 ? Tokens.Count / WallSeconds : 0;
}

/// <summary>
/// Acceptance counted by draft position: alpha[i] is the rate at which position i+1 was accepted among
/// blocks where positions 1..i were all accepted and position i+1 was drafted; null where no block reached it.
/// </summary>
public sealed record AcceptanceStatistics(IReadOnlyList<double?> ByPosition, IReadOnlyList<long> Reached, IReadOnlyList<long> AcceptedAt, double MeanAccepted)
{
    public static AcceptanceStatistics From(IReadOnlyList<RoundMetrics> rounds, int k)
    {
        ArgumentNullException.ThrowIfNull(rounds);
        var reached = new long[k];
        var accepted = new long[k];
        long acceptedTotal = 0;
        var blocks = 0;
        foreach (var round in rounds)
        {
            if (round.Drafted == 0)
            {
                continue;
            }

            blocks++;
            acceptedTotal += round.Accepted;
            for (var i = 0; i < round.Drafted && i <= round.Accepted; i++)
            {
                reached[i]++;
                if (i < round.Accepted)
                {
                    accepted[i]++;
                }
            }
        }

        var rates = new double?[k];
        for (var i = 0; i < k; i++)
        {
            rates[i] = reached[i] > 0 ? (double)accepted[i] / reached[i] : null;
        }

        return new AcceptanceStatistics(rates, reached, accepted, blocks > 0 ? (double)acceptedTotal / blocks : 0);
    }
}

/// <summary>
/// Lossless speculative generation: a draft model proposes K tokens, the verifier keeps the accepted prefix
/// and adds its own token. With greedy sampling the output equals target-only greedy decoding; with
/// stochastic sampling it is distributed as target sampling.
/// </summary>
public sealed class SpeculativeGenerator(IVerifier verifier, LlamaModel? draft)
{
    private readonly IVerifier _verifier = verifier ?? throw new ArgumentNullException(nameof(verifier));

    /// <summary>Tokenizer model: the draft when present (same vocabulary as the target, checked at open).</summary>
    public LlamaModel? Draft { get; } = draft;

    /// <summary>Sessions re-opened after the verifier evicted them (over all generations of this generator).</summary>
    public int Reopened { get; private set; }

    public async Task<GenerationResult> GenerateAsync(IReadOnlyList<int> prompt, GenerationOptions options, LlamaModel tokenizer, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(tokenizer);
        options.Validate(Draft is not null);
        if (prompt.Count >= options.ContextLength)
        {
            throw SettingException.Naming(
                $"the prompt has {prompt.Count} tokens but the context holds {options.ContextLength}; shorten the prompt or raise {{ctx}}");
        }

        var started = Stopwatch.GetTimestamp();
        var fingerprint = options.DraftLength > 0 ? Draft!.VocabularyFingerprint : null;
        var session = await _verifier.OpenAsync(
            new OpenSessionRequest(prompt, options.Sampling, fingerprint, Draft?.Path, options.DeviceId),
            cancellationToken).ConfigureAwait(false);
        var contextLength = Math.Min(options.ContextLength, session.ContextLength);
        using var drafter = options.DraftLength > 0
            ? new Drafter(Draft!, prompt, options.Sampling, contextLength, options.Threads)
            : null;

        var generated = new List<int>(options.MaxTokens + GenerationOptions.MaxDraftLength);
        var rounds = new List<RoundMetrics>();
        var drafts = new List<int>(options.DraftLength);
        var distributions = options.Sampling.IsGreedy ? null : new List<SparseDistribution>(options.DraftLength);
        var stop = StopReason.MaxTokens;
        var committed = new List<int>(prompt); // everything the verifier has committed: prompt, accepted drafts, its own tokens
        var round = 0;
        // A policy that reads the link's delay as each round begins gets a probe when the verifier's link can echo one.
        var linkProbe = options.Policy is { WantsLinkProbe: true } && _verifier is Policies.ILinkProbe echo ? echo : null;
        try
        {
            while (generated.Count < options.MaxTokens)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var room = contextLength - committed.Count - 1;
                if (room < 0)
                {
                    stop = StopReason.ContextFull;
                    break;
                }

                var wanted = options.Policy is { } policy ? Math.Clamp(policy.Choose(), 1, options.DraftLength) : options.DraftLength;
                var k = Math.Min(Math.Min(wanted, options.MaxTokens - generated.Count - 1), room);
                var t0 = Stopwatch.GetTimestamp();
                linkProbe?.SendProbe();
                drafter?.Draft(k, drafts, distributions, options.Policy is { } stopper
                    ? (n, p) => stopper.StopDrafting(new Policies.DraftProgress(n, p, Stopwatch.GetElapsedTime(t0).TotalSeconds, linkProbe?.ProbeRoundTripSeconds))
                    : null, options.Policy?.ReadsConfidence ?? false);
                var t1 = Stopwatch.GetTimestamp();
                VerifyResult result;
                try
                {
                    result = await _verifier.VerifyAsync(
                        new VerifyRequest(session.SessionId, drafts, distributions, ++round, committed.Count), cancellationToken).ConfigureAwait(false);
                }
                catch (VerificationException ex) when (ex.Code == VerificationErrorCode.SessionEvicted)
                {
                    // The verifier dropped this session's KV cache: re-open with the full context and repeat the round.
                    session = await _verifier.OpenAsync(
                        new OpenSessionRequest(committed, options.Sampling, fingerprint, Draft?.Path, options.DeviceId), cancellationToken).ConfigureAwait(false);
                    Reopened++;
                    round = 1;
                    result = await _verifier.VerifyAsync(
                        new VerifyRequest(session.SessionId, drafts, distributions, round, committed.Count), cancellationToken).ConfigureAwait(false);
                }

                for (var i = 0; i < result.AcceptedCount; i++)
                {
                    committed.Add(drafts[i]);
                }

                committed.Add(result.NextToken);
                var t2 = Stopwatch.GetTimestamp();
                drafter?.Commit(drafts, result.AcceptedCount, result.NextToken);
                options.Policy?.Observe(new Policies.RoundObservation(drafts.Count, result.AcceptedCount,
                    Stopwatch.GetElapsedTime(t0, t1).TotalSeconds, Stopwatch.GetElapsedTime(t0).TotalSeconds, linkProbe?.ProbeRoundTripSeconds));
                rounds.Add(new RoundMetrics(drafts.Count, result.AcceptedCount,
                    Stopwatch.GetElapsedTime(t0, t1).TotalSeconds, Stopwatch.GetElapsedTime(t1, t2).TotalSeconds, t0 / (double)Stopwatch.Frequency,
                    result.TargetSeconds + result.QueueSeconds, Stopwatch.GetElapsedTime(t0).TotalSeconds, drafter is null ? null : [.. drafter.TokenTimes]));

                var ended = false;
                var before = generated.Count;
                for (var i = 0; i <= result.AcceptedCount && !ended; i++)
                {
                    var token = i < result.AcceptedCount ? drafts[i] : result.NextToken;
                    if (tokenizer.IsEndOfGeneration(token))
                    {
                        ended = true;
                    }
                    else
                    {
                        generated.Add(token);
                    }
                }

                if (options.OnTokens is { } sink && generated.Count > before)
                {
                    sink(generated.GetRange(before, Math.Min(generated.Count, options.MaxTokens) - before));
                }

                if (ended)
                {
                    stop = StopReason.EndOfGeneration;
                    break;
                }
            }
        }
        finally
        {
            await _verifier.CloseAsync(session.SessionId, CancellationToken.None).ConfigureAwait(false);
        }

        if (generated.Count > options.MaxTokens)
        {
            generated.RemoveRange(options.MaxTokens, generated.Count - options.MaxTokens);
        }

        return new GenerationResult
        {
            Text = tokenizer.Detokenize(generated.ToArray()),
            Tokens = generated,
            PromptTokenCount = prompt.Count,
            DraftLength = options.DraftLength,
            Rounds = rounds,
            StopReason = stop,
            WallSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds,
        };
    }
}
