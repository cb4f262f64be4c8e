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

    /// <summary>Most blocks in flight a board asks for.</summary>
    public const int MaxPipeline = Contracts.PipelineDepth.Max;

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

    /// <summary>
    /// Pipelined speculation: blocks a session may have unverified at once (D). With D ≥ 2 the board drafts the next block
    /// while the verdict on the last is in flight, assuming it is accepted whole; the verifier may grant fewer
    /// (<see cref="GenerationResult.Pipeline"/>). 1 is sequential.
    /// </summary>
    public int Pipeline { get; init; } = 1;

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

        if (Pipeline is < 1 or > MaxPipeline)
        {
            throw new SettingException("pipeline", $"{Pipeline} is out of range (1..{MaxPipeline})");
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
/// <see cref="ChainOffset"/>: for a pipelined block chained to the ones before it (no target token between them), the
/// drafts of its chain before it, so its first draft is at chain position <c>ChainOffset + 1</c>; 0 for a block that
/// starts a chain and for every sequential round.
/// </summary>
public sealed record RoundMetrics(int Drafted, int Accepted, double DraftSeconds, double VerifySeconds, double DraftStart = 0, double ServerSeconds = 0, double RoundSeconds = 0,
    IReadOnlyList<double>? TokenTimes = null, int ChainOffset = 0)
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

    /// <summary>Blocks that were in flight at most (the pipeline depth used: what was asked, or less when the verifier granted less).</summary>
    public int Pipeline { get; init; } = 1;

    /// <summary>What the verifier granted when it was less than asked (for the caller to say), else null.</summary>
    public string? PipelineNote { get; init; }

    /// <summary>Drafted tokens thrown away unverified (blocks after a cut, or in flight when a session was lost).</summary>
    public int DiscardedTokens { get; init; }

    /// <summary>Drafting time of the discarded tokens.</summary>
    public double DiscardedSeconds { get; init; }

    /// <summary>Drafting windows of the discarded blocks (start on the monotonic clock, seconds), for energy accounting.</summary>
    public IReadOnlyList<(double Start, double Seconds)> DiscardedWindows { get; init; } = [];

    public AcceptanceStatistics Acceptance => AcceptanceStatistics.From(Rounds, DraftLength);

    /// <summary>All drafting time, discarded blocks included (what the board's energy pays for).</summary>
    public double DraftSeconds => Rounds.Sum(r => r.DraftSeconds) + DiscardedSeconds;

    public double VerifySeconds => Rounds.Sum(r => r.VerifySeconds);

    /// <summary>Every token the board drafted, discarded ones included.</summary>
    public int DraftedTokens => Rounds.Sum(r => r.Drafted) + DiscardedTokens;

    /// <summary>Drafted tokens the target accepted.</summary>
    public int AcceptedTokens => Rounds.Sum(r => r.Accepted);

    /// <summary>Drafted tokens per second of drafting time (v_d).</summary>
    public double DraftTokensPerSecond => DraftSeconds > 0 ? DraftedTokens / DraftSeconds : 0;

    public double TokensPerSecond => WallSeconds > 0 ? Tokens.Count / WallSeconds : 0;

    /// <summary>
    /// Tokens per second of generating: over the span from the first block's drafting to the last verdict, so the
    /// session's opening (a one-time round trip, and the target's prefill) is left out. Sequential and pipelined rounds
    /// are measured alike (pipelined blocks overlap, so round times do not add up). 0 without rounds.
    /// </summary>
    public double GoodputTokensPerSecond => SpanSeconds > 0 ? Tokens.Count / SpanSeconds : 0;

    /// <summary>Seconds from the first block's drafting to the last verdict (0 without rounds).</summary>
    public double SpanSeconds => Rounds.Count == 0 ? 0 : Rounds.Max(r => r.DraftStart + r.RoundSeconds) - Rounds.Min(r => r.DraftStart);
}

/// <summary>
/// Acceptance counted by draft position: alpha[i] is the rate at which position i+1 was accepted among
/// blocks where positions 1..i were all accepted and position i+1 was drafted; null where no block reached it.
/// </summary>
public sealed record AcceptanceStatistics(IReadOnlyList<double?> ByPosition, IReadOnlyList<long> Reached, IReadOnlyList<long> AcceptedAt, double MeanAccepted)
{
    public static AcceptanceStatistics From(IReadOnlyList<RoundMetrics> rounds, int k) => Count(rounds, k, _ => 0);

    /// <summary>
    /// Acceptance by chain position over pipelined blocks (<see cref="RoundMetrics.ChainOffset"/>): position p counts the
    /// drafts since the last target token, across the chained blocks that were verified as one, for positions 1..
    /// <paramref name="positions"/>. A chained block was verified only when every draft before it in its chain was accepted,
    /// so each is a draw of α_p given positions 1..p-1. <see cref="MeanAccepted"/> is the mean per block.
    /// </summary>
    public static AcceptanceStatistics ByChainPosition(IReadOnlyList<RoundMetrics> rounds, int positions) => Count(rounds, positions, r => r.ChainOffset);

    private static AcceptanceStatistics Count(IReadOnlyList<RoundMetrics> rounds, int positions, Func<RoundMetrics, int> offset)
    {
        ArgumentNullException.ThrowIfNull(rounds);
        var reached = new long[positions];
        var accepted = new long[positions];
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
            var first = offset(round);
            for (var i = 0; i < round.Drafted && i <= round.Accepted && first + i < positions; i++)
            {
                reached[first + i]++;
                if (i < round.Accepted)
                {
                    accepted[first + i]++;
                }
            }
        }

        var rates = new double?[positions];
        for (var i = 0; i < positions; i++)
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
        var pipeline = options.DraftLength > 0 ? options.Pipeline : 1;
        var session = await _verifier.OpenAsync(
            new OpenSessionRequest(prompt, options.Sampling, fingerprint, Draft?.Path, options.DeviceId, pipeline),
            cancellationToken).ConfigureAwait(false);
        var contextLength = Math.Min(options.ContextLength, session.ContextLength);
        using var drafter = options.DraftLength > 0
            ? new Drafter(Draft!, prompt, options.Sampling, contextLength, options.Threads)
            : null;
        if (pipeline > 1 && drafter is not null && session.Pipeline > 1)
        {
            return await new PipelinedRun(this, options, tokenizer, prompt, drafter, session, fingerprint, contextLength, started)
                .RunAsync(cancellationToken).ConfigureAwait(false);
        }

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
            PipelineNote = pipeline > session.Pipeline ? PipelineGranted(session.Pipeline, pipeline) : null,
        };
    }

    private static string PipelineGranted(int granted, int asked) =>
        $"the verifier allows {granted} block{(granted == 1 ? string.Empty : "s")} in flight, not {asked}; using {granted}";

    /// <summary>
    /// One pipelined generation: up to D blocks in flight, each drafted past the unverified ones before it and sent as the
    /// chained continuation of the last; verdicts applied in order, and a cut drops every later block on both sides.
    /// </summary>
    private sealed class PipelinedRun(SpeculativeGenerator owner, GenerationOptions options, LlamaModel tokenizer, IReadOnlyList<int> prompt,
        Drafter drafter, SessionInfo session, string? fingerprint, int contextLength, long started)
    {
        private readonly List<int> _generated = new(options.MaxTokens + GenerationOptions.MaxDraftLength);
        private readonly List<RoundMetrics> _rounds = [];
        private readonly List<int> _committed = [.. prompt];
        private readonly List<Block> _inFlight = [];
        private readonly Policies.ILinkProbe? _linkProbe = options.Policy is { WantsLinkProbe: true } && owner._verifier is Policies.ILinkProbe echo ? echo : null;
        private SessionInfo _session = session;
        private int _depth = Math.Min(options.Pipeline, session.Pipeline);
        private int _depthUsed = 1;
        private string? _note = session.Pipeline < options.Pipeline ? PipelineGranted(session.Pipeline, options.Pipeline) : null;
        private int _round;          // the last round number sent
        private int _verified;       // the last round whose verdict was applied
        private bool _chainOpen;     // the last block sent promised a chained block after it, and nothing has cut the chain since
        private int _chainDrafts;    // drafts sent in the chain so far (the next chained block starts after them)
        private readonly List<(double Start, double Seconds)> _discardedWindows = [];
        private int _discardedTokens;
        private double _discardedSeconds;
        private StopReason _stop = StopReason.MaxTokens;
        private bool _ended;

        public async Task<GenerationResult> RunAsync(CancellationToken cancellationToken)
        {
            var drafts = new List<int>(options.DraftLength);
            var distributions = options.Sampling.IsGreedy ? null : new List<SparseDistribution>(options.DraftLength);
            try
            {
                while (!_ended && _generated.Count < options.MaxTokens)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (_inFlight.Count > 0 && _inFlight[0].Verdict.IsCompleted)
                    {
                        await ApplyHeadAsync(cancellationToken).ConfigureAwait(false);
                        continue;
                    }

                    // A block is drafted when there is room in the pipeline and it can be sent now: first in an empty
                    // pipeline, or as the chained continuation of the last block sent.
                    if (_inFlight.Count < _depth && (_inFlight.Count == 0 || _chainOpen))
                    {
                        var unverified = drafter.UnverifiedCount;
                        var room = contextLength - _committed.Count - unverified - 1;
                        var remaining = options.MaxTokens - _generated.Count - unverified - 1;
                        if (room < 0 && _inFlight.Count == 0 && !_chainOpen)
                        {
                            _stop = StopReason.ContextFull;
                            break;
                        }

                        var wanted = options.Policy is { } policy ? Math.Clamp(policy.Choose(), 1, options.DraftLength) : options.DraftLength;
                        var k = Math.Max(0, Math.Min(Math.Min(wanted, remaining), room));
                        if (k > 0 || _chainOpen || _inFlight.Count == 0)
                        {
                            var block = DraftBlock(k, drafts, distributions);
                            if (ChainBroken())
                            {
                                // A verdict came in while drafting that voids this block (it continues past a cut): it is
                                // not sent, and nothing more is drafted until that verdict is applied.
                                Discarded(block);
                                _chainOpen = false;
                                continue;
                            }

                            Send(block, remaining, room);
                            continue;
                        }
                    }

                    if (_inFlight.Count == 0)
                    {
                        break;
                    }

                    try
                    {
                        await _inFlight[0].Verdict.WaitAsync(cancellationToken).ConfigureAwait(false);
                    }
                    catch (VerificationException)
                    {
                        // Handled with the verdict below.
                    }
                }
            }
            finally
            {
                foreach (var block in _inFlight)
                {
                    Observe(block.Verdict);
                }

                await owner._verifier.CloseAsync(_session.SessionId, CancellationToken.None).ConfigureAwait(false);
            }

            if (_generated.Count > options.MaxTokens)
            {
                _generated.RemoveRange(options.MaxTokens, _generated.Count - options.MaxTokens);
            }

            return new GenerationResult
            {
                Text = tokenizer.Detokenize(_generated.ToArray()),
                Tokens = _generated,
                PromptTokenCount = prompt.Count,
                DraftLength = options.DraftLength,
                Rounds = _rounds,
                StopReason = _stop,
                WallSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds,
                Pipeline = _depthUsed,
                PipelineNote = _note,
                DiscardedTokens = _discardedTokens,
                DiscardedSeconds = _discardedSeconds,
                DiscardedWindows = _discardedWindows,
            };
        }

        private Block DraftBlock(int k, List<int> drafts, List<SparseDistribution>? distributions)
        {
            var t0 = Stopwatch.GetTimestamp();
            _linkProbe?.SendProbe();
            var stopper = options.Policy;
            // The policy first (a paced policy waits there until the token is due, as a slower board would still be
            // computing it), then whether a verdict that came in meanwhile voids the block.
            drafter.Draft(k, drafts, distributions, (n, p) =>
                (stopper is not null && stopper.StopDrafting(new Policies.DraftProgress(n, p, Stopwatch.GetElapsedTime(t0).TotalSeconds, _linkProbe?.ProbeRoundTripSeconds)))
                || ChainBroken(),
                options.Policy?.ReadsConfidence ?? false);
            return new Block([.. drafts], distributions is null ? null : [.. distributions], t0, Stopwatch.GetTimestamp(), [.. drafter.TokenTimes]);
        }

        /// <summary>
        /// True when a verdict already in says that what is being drafted now will be discarded: a block in flight was cut
        /// (its verdict carries a token), or refused (dropped after a cut, or its session lost). Drafting stops at once
        /// rather than finishing a block nobody will verify.
        /// </summary>
        private bool ChainBroken()
        {
            foreach (var block in _inFlight)
            {
                var verdict = block.Verdict;
                if (verdict.IsFaulted || verdict.IsCanceled || (verdict.IsCompletedSuccessfully && verdict.Result.NextToken >= 0))
                {
                    return true;
                }
            }

            return false;
        }

        private void Send(Block block, int remaining, int room)
        {
            var drafted = block.Drafts.Length;
            // Another block may chain after this one while it leaves room for at least one more draft.
            var follows = _depth > 1 && drafted > 0 && remaining - drafted >= 1 && room - drafted >= 1;
            block.Round = ++_round;
            block.ChainOffset = _chainOpen ? _chainDrafts : 0;
            _chainDrafts = block.ChainOffset + drafted;
            var position = _committed.Count + drafter.UnverifiedCount - drafted;
            // A session re-opened on a verifier that grants no pipeline goes on with sequential rounds.
            block.Verdict = owner._verifier.VerifyAsync(_depth > 1
                ? new VerifyRequest(_session.SessionId, block.Drafts, block.Distributions, block.Round, position, _chainOpen ? block.Round - 1 : _verified, _chainOpen, follows)
                : new VerifyRequest(_session.SessionId, block.Drafts, block.Distributions, block.Round, position)).AsTask();
            _chainOpen = follows;
            _inFlight.Add(block);
            _depthUsed = Math.Max(_depthUsed, _inFlight.Count);
        }

        private async Task ApplyHeadAsync(CancellationToken cancellationToken)
        {
            var block = _inFlight[0];
            _inFlight.RemoveAt(0);
            VerifyResult result;
            try
            {
                result = await block.Verdict.ConfigureAwait(false);
            }
            catch (VerificationException ex) when (ex.Code is VerificationErrorCode.SessionEvicted)
            {
                await ReopenAsync(block, cancellationToken).ConfigureAwait(false);
                return;
            }

            // The verdict's arrival, not when the drafting loop got to it: that is the round trip the link gave.
            var t2 = block.Arrived;
            for (var i = 0; i < result.AcceptedCount; i++)
            {
                _committed.Add(block.Drafts[i]);
            }

            if (result.NextToken >= 0)
            {
                _committed.Add(result.NextToken);
            }

            drafter.Commit(block.Drafts, result.AcceptedCount, result.NextToken);
            _verified = block.Round;
            if (result.NextToken >= 0)
            {
                // The chain ends here (a cut, or the bonus of a block nothing was chained to): every later block is void.
                Discard();
            }

            var roundSeconds = Stopwatch.GetElapsedTime(block.Started, t2).TotalSeconds;
            options.Policy?.Observe(new Policies.RoundObservation(block.Drafts.Length, result.AcceptedCount, block.DraftSeconds, roundSeconds, _linkProbe?.ProbeRoundTripSeconds));
            _rounds.Add(new RoundMetrics(block.Drafts.Length, result.AcceptedCount, block.DraftSeconds, Stopwatch.GetElapsedTime(block.Drafted, t2).TotalSeconds,
                block.Started / (double)Stopwatch.Frequency, result.TargetSeconds + result.QueueSeconds, roundSeconds, block.TokenTimes, block.ChainOffset));

            var before = _generated.Count;
            for (var i = 0; i <= result.AcceptedCount && !_ended; i++)
            {
                var token = i < result.AcceptedCount ? block.Drafts[i] : result.NextToken;
                if (token < 0)
                {
                    break;
                }

                if (tokenizer.IsEndOfGeneration(token))
                {
                    _ended = true;
                    _stop = StopReason.EndOfGeneration;
                }
                else
                {
                    _generated.Add(token);
                }
            }

            if (options.OnTokens is { } sink && _generated.Count > before)
            {
                sink(_generated.GetRange(before, Math.Min(_generated.Count, options.MaxTokens) - before));
            }
        }

        /// <summary>Drops every block still in flight: the board's drafts after the committed tokens go (the drafter has rolled back already).</summary>
        private void Discard()
        {
            foreach (var block in _inFlight)
            {
                Discarded(block);
                Observe(block.Verdict);
            }

            _inFlight.Clear();
            drafter.DiscardUnverified();
            _chainOpen = false;
        }

        /// <summary>The verifier lost the session with blocks in flight: open a new one with the committed context and draft on from there.</summary>
        private async Task ReopenAsync(Block head, CancellationToken cancellationToken)
        {
            Discarded(head);
            Discard();
            try
            {
                await owner._verifier.CloseAsync(_session.SessionId, cancellationToken).ConfigureAwait(false);
            }
            catch (VerificationException)
            {
                // Gone already.
            }

            _session = await owner._verifier.OpenAsync(
                new OpenSessionRequest(_committed, options.Sampling, fingerprint, owner.Draft?.Path, options.DeviceId, options.Pipeline), cancellationToken).ConfigureAwait(false);
            owner.Reopened++;
            _depth = Math.Min(options.Pipeline, _session.Pipeline);
            _note ??= _session.Pipeline < options.Pipeline ? PipelineGranted(_session.Pipeline, options.Pipeline) : null;
            _round = 0;
            _verified = 0;
        }

        private void Discarded(Block block)
        {
            _discardedTokens += block.Drafts.Length;
            _discardedSeconds += block.DraftSeconds;
            if (block.Drafts.Length > 0)
            {
                _discardedWindows.Add((block.Started / (double)Stopwatch.Frequency, block.DraftSeconds));
            }
        }

        private static void Observe(Task<VerifyResult>? verdict)
        {
            // A dropped block's verdict (or refusal) no longer matters; it is observed so that its failure is not reported as unobserved.
            verdict?.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        private sealed class Block(int[] drafts, SparseDistribution[]? distributions, long started, long drafted, double[] tokenTimes)
        {
            public int[] Drafts { get; } = drafts;

            public SparseDistribution[]? Distributions { get; } = distributions;

            public long Started { get; } = started;

            public long Drafted { get; } = drafted;

            public double[] TokenTimes { get; } = tokenTimes;

            public double DraftSeconds => Stopwatch.GetElapsedTime(Started, Drafted).TotalSeconds;

            public int Round { get; set; }

            /// <summary>Drafts of the chain sent before this block (0: it starts a chain).</summary>
            public int ChainOffset { get; set; }

            public Task<VerifyResult> Verdict
            {
                get => _verdict;
                set
                {
                    _verdict = value;
                    Arrived = 0;
                    _verdict.ContinueWith(_ => Arrived = Stopwatch.GetTimestamp(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                }
            }

            /// <summary>When the verdict came in (monotonic timestamp); read once it has completed.</summary>
            public long Arrived
            {
                get
                {
                    var at = Interlocked.Read(ref _arrived);
                    return at != 0 ? at : Stopwatch.GetTimestamp();
                }

                private set => Interlocked.Exchange(ref _arrived, value);
            }

            private Task<VerifyResult> _verdict = Task.FromResult(new VerifyResult(0, -1, 0));
            private long _arrived;
        }
    }
}
