using System.Collections.Concurrent;
using System.Diagnostics;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Speculative.Sampling;

namespace ConfigSpec.Speculative.Verification;

/// <summary>Settings of a verifier holding the target model.</summary>
public sealed record VerifierOptions
{
    /// <summary>Context length per session (prompt + generation + one draft block).</summary>
    public int ContextLength { get; init; } = 512;

    public int Threads { get; init; } = 1;

    /// <summary>Largest draft block accepted.</summary>
    public int MaxDraftLength { get; init; } = 32;

    /// <summary>The acceptance rule of stochastic verification (exact rejection sampling unless a test replaces it).</summary>
    public AcceptanceRule AcceptanceRule { get; init; } = SpeculativeVerification.RejectionSampling;
}

/// <summary>
/// A verifier in the same process as the drafter. Each session owns a target context whose KV cache is
/// kept across calls and rolled back exactly to the accepted length. Sessions may be used from different
/// threads, one call per session at a time.
/// </summary>
public sealed class InProcessVerifier : IVerifier
{
    private readonly LlamaModel _target;
    private readonly VerifierOptions _options;
    private readonly ConcurrentDictionary<string, TargetSession> _sessions = new(StringComparer.Ordinal);
    private long _nextSession;

    public InProcessVerifier(LlamaModel target, VerifierOptions? options = null)
    {
        _target = target ?? throw new ArgumentNullException(nameof(target));
        _options = options ?? new VerifierOptions();
    }

    public LlamaModel Target => _target;

    public ValueTask<SessionInfo> OpenAsync(OpenSessionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        request.Sampling.Validate();
        if (request.DraftVocabularyFingerprint is not null &&
            !string.Equals(request.DraftVocabularyFingerprint, _target.VocabularyFingerprint, StringComparison.Ordinal))
        {
            throw new VocabularyMismatchException(
                $"draft model '{request.DraftModelName ?? "draft"}' has a different vocabulary from target '{_target.Path}' " +
                $"(fingerprint {Short(request.DraftVocabularyFingerprint)} vs {Short(_target.VocabularyFingerprint)}); pick a draft derived from the same tokenizer");
        }

        if (request.PromptTokens.Count == 0)
        {
            throw new VerificationException("the prompt is empty: at least one token (e.g. BOS) is needed");
        }

        for (var i = 0; i < request.PromptTokens.Count; i++)
        {
            CheckToken(request.PromptTokens[i], $"prompt token {i}");
        }

        if (request.PromptTokens.Count >= _options.ContextLength)
        {
            throw new VerificationException(
                $"the prompt has {request.PromptTokens.Count} tokens but the target context holds {_options.ContextLength}; shorten the prompt or raise the context length");
        }

        var context = _target.CreateContext(new LlamaContextOptions { ContextLength = _options.ContextLength, Threads = _options.Threads });
        var session = new TargetSession(context, request.Sampling, [.. request.PromptTokens]);
        try
        {
            // Prefill all but the last prompt token; the last one is decoded with the first draft block.
            if (session.Committed.Count > 1)
            {
                context.Decode(session.Committed.ToArray().AsSpan(0, session.Committed.Count - 1), 0);
                session.KvCount = session.Committed.Count - 1;
            }
        }
        catch
        {
            context.Dispose();
            throw;
        }

        var id = $"s{Interlocked.Increment(ref _nextSession)}";
        _sessions[id] = session;
        return ValueTask.FromResult(new SessionInfo(id, _target.VocabularySize, context.ContextLength, _target.VocabularyFingerprint));
    }

    public ValueTask<VerifyResult> VerifyAsync(VerifyRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!_sessions.TryGetValue(request.SessionId, out var session))
        {
            throw new VerificationException($"unknown verification session '{request.SessionId}' (closed, or never opened)");
        }

        lock (session)
        {
            return ValueTask.FromResult(Verify(session, request));
        }
    }

    public ValueTask CloseAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        if (_sessions.TryRemove(sessionId, out var session))
        {
            lock (session)
            {
                session.Context.Dispose();
            }
        }

        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var id in _sessions.Keys)
        {
            await CloseAsync(id).ConfigureAwait(false);
        }
    }

    private VerifyResult Verify(TargetSession session, VerifyRequest request)
    {
        var started = Stopwatch.GetTimestamp();
        var drafts = request.DraftTokens;
        ValidateDrafts(session, request);

        var pending = session.Committed.Count - session.KvCount;
        var batch = new int[pending + drafts.Count];
        for (var i = 0; i < pending; i++)
        {
            batch[i] = session.Committed[session.KvCount + i];
        }

        for (var i = 0; i < drafts.Count; i++)
        {
            batch[pending + i] = drafts[i];
        }

        var firstRow = pending - 1;
        if (session.Committed.Count + drafts.Count > session.Context.ContextLength)
        {
            throw new VerificationException(
                $"session '{request.SessionId}' is full: {session.Committed.Count} tokens plus {drafts.Count} drafts exceed the context of {session.Context.ContextLength}");
        }

        session.Context.Decode(batch, session.KvCount, 0, firstRow);

        int accepted, next;
        if (session.Sampling.IsGreedy)
        {
            (accepted, next) = SpeculativeVerification.Greedy(drafts, i => session.Context.GetLogits(firstRow + i).ToArray());
        }
        else
        {
            var rows = new float[drafts.Count + 1][];
            (accepted, next) = SpeculativeVerification.Stochastic(
                drafts,
                request.DraftDistributions!,
                i => rows[i] ??= Dense(session, firstRow + i),
                session.Random,
                _options.AcceptanceRule);
        }

        // Keep KV for the pending tokens and the accepted drafts; the next token is decoded with the next block.
        var keep = session.Committed.Count + accepted;
        session.Context.TruncateSequence(0, keep);
        for (var i = 0; i < accepted; i++)
        {
            session.Committed.Add(drafts[i]);
        }

        session.KvCount = keep;
        session.Committed.Add(next);
        return new VerifyResult(accepted, next, Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    private static float[] Dense(TargetSession session, int row)
    {
        var logits = session.Context.GetLogits(row);
        var p = new float[logits.Length];
        TokenDistribution.Dense(logits, session.Sampling, p);
        return p;
    }

    private void ValidateDrafts(TargetSession session, VerifyRequest request)
    {
        var drafts = request.DraftTokens;
        if (drafts.Count > _options.MaxDraftLength)
        {
            throw new VerificationException($"draft block of {drafts.Count} tokens exceeds the verifier's limit of {_options.MaxDraftLength}");
        }

        for (var i = 0; i < drafts.Count; i++)
        {
            CheckToken(drafts[i], $"draft token at position {i}");
        }

        if (session.Sampling.IsGreedy || drafts.Count == 0)
        {
            return;
        }

        var distributions = request.DraftDistributions;
        if (distributions is null || distributions.Count != drafts.Count)
        {
            throw new VerificationException(
                $"stochastic verification needs one draft distribution per draft token ({drafts.Count}), got {distributions?.Count ?? 0}");
        }

        for (var i = 0; i < drafts.Count; i++)
        {
            var q = distributions[i];
            if (q.Tokens.Length != q.Probabilities.Length || q.Tokens.Length == 0)
            {
                throw new VerificationException($"draft distribution {i} is malformed ({q.Tokens.Length} tokens, {q.Probabilities.Length} probabilities)");
            }

            double sum = 0;
            for (var j = 0; j < q.Tokens.Length; j++)
            {
                CheckToken(q.Tokens[j], $"token in draft distribution {i}");
                var value = q.Probabilities[j];
                if (!float.IsFinite(value) || value < 0f)
                {
                    throw new VerificationException($"draft distribution {i} has an invalid probability {value} for token {q.Tokens[j]}");
                }

                sum += value;
            }

            if (Math.Abs(sum - 1.0) > 1e-3)
            {
                throw new VerificationException($"draft distribution {i} sums to {sum:F6}, not 1");
            }

            if (q.ProbabilityOf(drafts[i]) <= 0f)
            {
                throw new VerificationException($"draft token {drafts[i]} at position {i} has probability 0 in its own draft distribution");
            }
        }
    }

    private void CheckToken(int token, string what)
    {
        if (!_target.IsValidToken(token))
        {
            throw new VerificationException($"{what} is {token}, outside the target vocabulary 0..{_target.VocabularySize - 1}");
        }
    }

    private static string Short(string fingerprint) => fingerprint.Length > 12 ? fingerprint[..12] : fingerprint;

    private sealed class TargetSession(LlamaContext context, SamplingSettings sampling, List<int> committed)
    {
        public LlamaContext Context { get; } = context;

        public SamplingSettings Sampling { get; } = sampling;

        public List<int> Committed { get; } = committed;

        public int KvCount { get; set; }

        public Xoshiro256 Random { get; } = Xoshiro256.ForStream(sampling.Seed, 2);
    }
}
