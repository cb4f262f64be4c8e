using ConfigSpec.Contracts;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using ConfigSpec.Interop;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Speculative.Sampling;

namespace ConfigSpec.Speculative.Verification;

/// <summary>Settings of a verifier holding the target model.</summary>
public sealed record VerifierOptions
{
    /// <summary>Context length per session (prompt + generation + one draft block).</summary>
    public int ContextLength { get; init; } = 512;

    /// <summary>Sessions held at once, each as a sequence of one shared context; the least recently used is evicted past this.</summary>
    public int MaxSessions { get; init; } = 1;

    /// <summary>How long the first request of a batch waits for others to join one decode call (0 = no waiting).</summary>
    public TimeSpan BatchWindow { get; init; } = TimeSpan.Zero;

    /// <summary>Largest draft block accepted.</summary>
    public int MaxDraftLength { get; init; } = DraftLength.Max;

    /// <summary>Most blocks a pipelined session may have unverified at once (1: no pipelining).</summary>
    public int MaxPipeline { get; init; } = 8;

    /// <summary>Most rounds decoded in one call (1 = one at a time, for comparison).</summary>
    public int MaxBatchRounds { get; init; } = int.MaxValue;

    public int Threads { get; init; } = 1;

    /// <summary>Names this replica in session info (and, over MQTT, in its topics).</summary>
    public string InstanceId { get; init; } = "local";

    /// <summary>The acceptance rule of stochastic verification (exact rejection sampling unless a test replaces it).</summary>
    public AcceptanceRule AcceptanceRule { get; init; } = SpeculativeVerification.RejectionSampling;

    public void Validate()
    {
        if (ContextLength < 16)
        {
            throw new ConfigSpecException($"verifier context length {ContextLength} is too small (at least 16)");
        }

        if (MaxSessions is < 1 or > 256)
        {
            throw new SettingException("max_sessions", $"{MaxSessions} is out of range (1..256)");
        }

        if (MaxDraftLength is < 1 or > 255)
        {
            throw new SettingException("max_draft", $"{MaxDraftLength} is out of range (1..255)");
        }

        if (MaxPipeline is < 1 or > 64)
        {
            throw new SettingException("max_pipeline", $"{MaxPipeline} is out of range (1..64)");
        }

        if (MaxBatchRounds < 1)
        {
            throw new SettingException("max_batch", $"{MaxBatchRounds} must be at least 1");
        }

        if (BatchWindow < TimeSpan.Zero || BatchWindow > TimeSpan.FromSeconds(1))
        {
            throw new SettingException("batch_window_ms", $"{BatchWindow.TotalMilliseconds} is out of range (0..1000)");
        }
    }
}

/// <summary>Tokens a board's sessions made the target process.</summary>
/// <param name="VerifiedTokens">Draft tokens verified.</param>
/// <param name="BilledTokens">Tokens the target decoded (drafts plus the committed tokens fed with them), what a cloud bills.</param>
public sealed record DeviceUsage(long Rounds, long VerifiedTokens, long AcceptedTokens, long BilledTokens);

/// <summary>
/// The target side: sessions are sequences of one shared llama.cpp context, so verification requests from many
/// sessions that arrive within the batch window are decoded in one call. Each session's KV cache is kept across
/// rounds and rolled back exactly to the accepted length. Rounds are idempotent. Thread-safe: all model work
/// happens on one worker thread.
/// </summary>
public sealed class VerifierEngine : IVerifier
{
    private readonly LlamaModel _target;
    private readonly VerifierOptions _options;
    private readonly LlamaContext _context;
    private readonly LlamaBatch _batch;
    private readonly Channel<Work> _queue = Channel.CreateUnbounded<Work>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, Session> _sessions = new(StringComparer.Ordinal);
    private readonly Queue<string> _evictedOrder = new();
    private readonly HashSet<string> _evicted = new(StringComparer.Ordinal);
    private readonly Stack<int> _freeSlots = new();
    private readonly ConcurrentDictionary<string, DeviceUsage> _usage = new(StringComparer.Ordinal);
    private readonly Task _worker;
    private long _nextSession;
    private long _clock;
    private long _decodeCalls;
    private int _disposed;

    public VerifierEngine(LlamaModel target, VerifierOptions? options = null)
    {
        _target = target ?? throw new ArgumentNullException(nameof(target));
        _options = options ?? new VerifierOptions();
        _options.Validate();
        var batchCapacity = Math.Max(_options.ContextLength, _options.MaxSessions * (_options.MaxDraftLength + 2));
        _context = target.CreateContext(new LlamaContextOptions
        {
            ContextLength = _options.ContextLength * _options.MaxSessions,
            Sequences = _options.MaxSessions,
            BatchSize = batchCapacity,
            Threads = _options.Threads,
        });
        _batch = new LlamaBatch(_context.BatchCapacity);
        for (var slot = _options.MaxSessions - 1; slot >= 0; slot--)
        {
            _freeSlots.Push(slot);
        }

        _worker = Task.Factory.StartNew(RunAsync, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    public LlamaModel Target => _target;

    public VerifierOptions Options => _options;

    /// <summary>Open sessions right now.</summary>
    public int SessionCount { get; private set; }

    /// <summary>llama_decode calls made for verification (batched rounds share one).</summary>
    public long DecodeCalls => Interlocked.Read(ref _decodeCalls);

    public IReadOnlyDictionary<string, DeviceUsage> Usage => _usage;

    public Task<SessionInfo> OpenAsync(OpenSessionRequest request, CancellationToken cancellationToken = default) =>
        Enqueue<SessionInfo>(new OpenWork(request ?? throw new ArgumentNullException(nameof(request))), cancellationToken);

    public Task<VerifyResult> VerifyAsync(VerifyRequest request, CancellationToken cancellationToken = default) =>
        Enqueue<VerifyResult>(new VerifyWork(request ?? throw new ArgumentNullException(nameof(request))), cancellationToken);

    public Task CloseAsync(string sessionId, CancellationToken cancellationToken = default) =>
        Enqueue<bool>(new CloseWork(sessionId), cancellationToken);

    ValueTask<SessionInfo> IVerifier.OpenAsync(OpenSessionRequest request, CancellationToken cancellationToken) => new(OpenAsync(request, cancellationToken));

    ValueTask<VerifyResult> IVerifier.VerifyAsync(VerifyRequest request, CancellationToken cancellationToken) => new(VerifyAsync(request, cancellationToken));

    ValueTask IVerifier.CloseAsync(string sessionId, CancellationToken cancellationToken) => new(CloseAsync(sessionId, cancellationToken));

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _queue.Writer.TryComplete();
        await _worker.ConfigureAwait(false);
        VerifierMetrics.SessionsClosed(_sessions.Count);
        _sessions.Clear();
        _context.Dispose();
        _batch.Dispose();
    }

    private Task<T> Enqueue<T>(Work work, CancellationToken cancellationToken)
    {
        if (!_queue.Writer.TryWrite(work))
        {
            throw new VerificationException(VerificationErrorCode.ShuttingDown, "the verifier is shutting down");
        }

        return ((Task<T>)work.Completion).WaitAsync(cancellationToken);
    }

    private async Task RunAsync()
    {
        var reader = _queue.Reader;
        var pending = new List<VerifyWork>();
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            var deadline = Stopwatch.GetTimestamp() + (long)(_options.BatchWindow.TotalSeconds * Stopwatch.Frequency);
            var collecting = true;
            while (collecting)
            {
                while (reader.TryRead(out var work))
                {
                    if (work is VerifyWork verify)
                    {
                        pending.Add(verify);
                    }
                    else
                    {
                        // Opens and closes keep their order relative to the rounds before them.
                        RunBatch(pending);
                        Run(work);
                    }
                }

                // A session has at most one round outstanding, so once every open session has one queued there is nothing to wait for.
                var remaining = deadline - Stopwatch.GetTimestamp();
                collecting = pending.Count > 0 && pending.Count < Math.Min(_options.MaxBatchRounds, _sessions.Count) && remaining > 0;
                if (collecting)
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds((double)remaining / Stopwatch.Frequency));
                    try
                    {
                        collecting = await reader.WaitToReadAsync(timeout.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        collecting = false;
                    }
                }
            }

            RunBatch(pending);
        }

        foreach (var session in _sessions.Values)
        {
            _context.ClearSequence(session.Slot);
        }
    }

    private void Run(Work work)
    {
        try
        {
            switch (work)
            {
                case OpenWork open:
                    open.Complete(Open(open.Request));
                    break;
                case CloseWork close:
                    Close(close.SessionId);
                    close.Complete(true);
                    break;
            }
        }
        catch (Exception ex)
        {
            work.Fail(ex);
        }
    }

    private SessionInfo Open(OpenSessionRequest request)
    {
        request.Sampling.Validate();
        if (request.DraftVocabularyFingerprint is { Length: > 0 } fingerprint &&
            !string.Equals(fingerprint, _target.VocabularyFingerprint, StringComparison.Ordinal))
        {
            throw new VocabularyMismatchException(
                $"draft model '{request.DraftModelName ?? "draft"}' has a different vocabulary from target '{_target.Path}' " +
                $"(fingerprint {Short(fingerprint)} vs {Short(_target.VocabularyFingerprint)}); pick a draft derived from the same tokenizer");
        }

        if (request.PromptTokens.Count == 0)
        {
            throw new VerificationException(VerificationErrorCode.InvalidRequest, "the prompt is empty: at least one token (e.g. BOS) is needed");
        }

        for (var i = 0; i < request.PromptTokens.Count; i++)
        {
            CheckToken(request.PromptTokens[i], $"prompt token {i}");
        }

        if (request.PromptTokens.Count >= _options.ContextLength)
        {
            throw new VerificationException(VerificationErrorCode.ContextFull,
                $"the prompt has {request.PromptTokens.Count} tokens but the target context holds {_options.ContextLength}; shorten the prompt or raise the context length");
        }

        if (_freeSlots.Count == 0)
        {
            Evict(_sessions.Values.MinBy(s => s.LastUsed)!);
        }

        var id = $"{_options.InstanceId}-s{++_nextSession}";
        var session = new Session(id, _freeSlots.Pop(), request.Sampling, [.. request.PromptTokens], request.DeviceId)
        {
            LastUsed = ++_clock,
            Pipeline = Math.Clamp(request.Pipeline, 1, _options.MaxPipeline),
        };
        _sessions[id] = session;
        SessionCount = _sessions.Count;
        VerifierMetrics.SessionOpened();
        try
        {
            // Prefill all but the last prompt token; the last one is decoded with the first draft block.
            if (session.Committed.Count > 1)
            {
                _context.Decode(session.Committed.ToArray().AsSpan(0, session.Committed.Count - 1), 0, session.Slot);
                session.KvCount = session.Committed.Count - 1;
            }
        }
        catch
        {
            Close(id);
            throw;
        }

        return new SessionInfo(id, _target.VocabularySize, _options.ContextLength, _target.VocabularyFingerprint, _options.InstanceId, session.Pipeline);
    }

    private void Close(string sessionId, bool evicted = false)
    {
        if (_sessions.Remove(sessionId, out var session))
        {
            foreach (var parked in session.Parked)
            {
                parked.Fail(evicted
                    ? new VerificationException(VerificationErrorCode.SessionEvicted, $"session '{sessionId}' was evicted to make room; open a new session with the full context")
                    : new VerificationException(VerificationErrorCode.UnknownSession, $"session '{sessionId}' was closed with blocks in flight"));
            }

            session.Parked.Clear();
            _context.ClearSequence(session.Slot);
            _freeSlots.Push(session.Slot);
            SessionCount = _sessions.Count;
            VerifierMetrics.SessionsClosed(1);
        }
    }

    private void Evict(Session session)
    {
        Close(session.Id, evicted: true);
        VerifierMetrics.Evicted();
        _evicted.Add(session.Id);
        _evictedOrder.Enqueue(session.Id);
        while (_evictedOrder.Count > 4096)
        {
            _evicted.Remove(_evictedOrder.Dequeue());
        }
    }

    /// <summary>Verifies every pending round in as few decode calls as the batch capacity allows.</summary>
    private void RunBatch(List<VerifyWork> pending)
    {
        if (pending.Count == 0)
        {
            return;
        }

        var started = Stopwatch.GetTimestamp();
        var admitted = new List<(VerifyWork Work, Session Session, int FirstRow)>();
        var inBatch = new HashSet<string>(StringComparer.Ordinal);
        var deferred = new List<VerifyWork>();
        _batch.Clear();
        foreach (var work in pending)
        {
            try
            {
                // A session's next block waits for the verdict on the one before it (it is admitted against that state).
                if (inBatch.Contains(work.Request.SessionId))
                {
                    deferred.Add(work);
                    continue;
                }

                var (session, cached) = Admit(work);
                if (session is null)
                {
                    continue; // parked until the block it follows is verified
                }

                if (cached is not null)
                {
                    work.Complete(cached); // a repeated round: same answer, session not advanced
                    continue;
                }

                var tokens = session.Committed.Count - session.KvCount + work.Request.DraftTokens.Count;
                if (admitted.Count >= _options.MaxBatchRounds || _batch.Count + tokens > _context.BatchCapacity)
                {
                    deferred.Add(work);
                    continue;
                }

                inBatch.Add(session.Id);
                // Committed tokens not yet in the KV cache (normally one), then the drafts; logits from the last committed row on.
                var firstRow = _batch.Count + (session.Committed.Count - session.KvCount) - 1;
                for (var i = session.KvCount; i < session.Committed.Count; i++)
                {
                    _batch.Add(session.Committed[i], i, session.Slot, i == session.Committed.Count - 1);
                }

                var drafts = work.Request.DraftTokens;
                for (var j = 0; j < drafts.Count; j++)
                {
                    _batch.Add(drafts[j], session.Committed.Count + j, session.Slot, true);
                }

                admitted.Add((work, session, firstRow));
            }
            catch (Exception ex)
            {
                work.Fail(ex);
            }
        }

        pending.Clear();
        if (admitted.Count > 0)
        {
            var queued = Stopwatch.GetTimestamp();
            try
            {
                _context.Decode(_batch);
                Interlocked.Increment(ref _decodeCalls);
            }
            catch (Exception ex)
            {
                foreach (var (work, session, _) in admitted)
                {
                    work.Fail(ex);
                    Release(session);
                }

                admitted.Clear();
            }

            var compute = Stopwatch.GetElapsedTime(queued).TotalSeconds;
            if (admitted.Count > 0)
            {
                VerifierMetrics.Decode(admitted.Count, compute);
            }

            foreach (var (work, session, firstRow) in admitted)
            {
                try
                {
                    Conclude(work, session, firstRow, compute, work.QueueSeconds(started));
                }
                catch (Exception ex)
                {
                    work.Fail(ex);
                }

                Release(session);
            }
        }

        if (deferred.Count > 0)
        {
            RunBatch(deferred);
        }
    }

    /// <summary>
    /// Checks a round; a repeat of a round verified recently returns its cached result. A pipelined block that arrives before
    /// the block it follows is parked (null session) and queued again once that one is verified.
    /// </summary>
    private (Session? Session, VerifyResult? Cached) Admit(VerifyWork work)
    {
        var request = work.Request;
        if (!_sessions.TryGetValue(request.SessionId, out var session))
        {
            throw _evicted.Contains(request.SessionId)
                ? new VerificationException(VerificationErrorCode.SessionEvicted, $"session '{request.SessionId}' was evicted to make room; open a new session with the full context")
                : new VerificationException(VerificationErrorCode.UnknownSession, $"unknown verification session '{request.SessionId}' (closed, or never opened)");
        }

        session.LastUsed = ++_clock;
        if (request.Round > 0 && session.Results.TryGetValue(request.Round, out var cached))
        {
            return (session, cached);
        }

        if (request.Pipelined)
        {
            if (!CheckChain(session, work))
            {
                return (null, null);
            }
        }
        else if (request.Round > 0 && request.Round != session.LastRound + 1)
        {
            throw new VerificationException(VerificationErrorCode.BadRound,
                $"session '{session.Id}' expected round {session.LastRound + 1}, got {request.Round}");
        }
        else if (session.ChainOpen)
        {
            throw new VerificationException(VerificationErrorCode.BadRound,
                $"session '{session.Id}': round {session.LastRound} was accepted whole on the promise of a chained block; a sequential round cannot follow it");
        }

        if (request.Position >= 0 && request.Position != session.Committed.Count)
        {
            throw new VerificationException(VerificationErrorCode.BadRound,
                $"session '{session.Id}' holds {session.Committed.Count} committed tokens, the request assumes {request.Position}");
        }

        ValidateDrafts(session, request);
        return (session, null);
    }

    /// <summary>
    /// The pipelined rules: true to verify now, false when parked; refusals (a dropped block among them) throw. Requests
    /// are admitted as they are handled, which need not be the order they were sent in, so a block may come before the
    /// one it follows and waits (parked) until that one is concluded; a block dropped releases those parked, so any that
    /// follow it are dropped at once rather than waiting for nothing.
    /// </summary>
    private bool CheckChain(Session session, VerifyWork work)
    {
        var request = work.Request;
        if (session.Pipeline < 2)
        {
            throw new VerificationException(VerificationErrorCode.InvalidRequest,
                $"session '{session.Id}' was opened without pipelining; pipelined blocks need a session opened with a pipeline depth");
        }

        if (request.Round <= 0 || request.Base >= request.Round)
        {
            throw new VerificationException(VerificationErrorCode.BadRound,
                $"session '{session.Id}': round {request.Round} cannot follow round {request.Base}");
        }

        if (session.Dropped.Contains(request.Round) || session.Dropped.Contains(request.Base) || request.Round <= session.LastRound)
        {
            Drop(session, request.Round);
            throw new VerificationException(VerificationErrorCode.Superseded,
                $"session '{session.Id}': round {request.Round} was dropped: a block before it was cut, or a later one is verified already");
        }

        if (request.Base > session.LastRound)
        {
            // Up to D - 1 live blocks can come before the one they follow, and blocks of a chain cut a moment ago may
            // still wait for their release: room for twice the pipeline.
            if (session.Parked.Count >= 2 * session.Pipeline)
            {
                throw new VerificationException(VerificationErrorCode.BadRound,
                    $"session '{session.Id}': round {request.Round} follows round {request.Base}, not yet received, and {session.Parked.Count} blocks already wait (the session's pipeline is {session.Pipeline})");
            }

            session.Parked.Add(work);
            return false;
        }

        if (request.Base < session.LastRound)
        {
            Drop(session, request.Round);
            throw new VerificationException(VerificationErrorCode.Superseded,
                $"session '{session.Id}': round {request.Round} follows round {request.Base}, but round {session.LastRound} is verified already");
        }

        if (request.Chained && !session.ChainOpen)
        {
            Drop(session, request.Round);
            throw new VerificationException(VerificationErrorCode.Superseded,
                session.LastResult is null
                    ? $"session '{session.Id}': round {request.Round} is chained, but no block before it was verified"
                    : $"session '{session.Id}': round {request.Round} was dropped: round {request.Base} was cut after {session.LastResult.AcceptedCount} drafts");
        }

        if (!request.Chained && session.ChainOpen)
        {
            throw new VerificationException(VerificationErrorCode.BadRound,
                $"session '{session.Id}': round {request.Base} was accepted whole on the promise of a chained block; round {request.Round} is not chained");
        }

        return true;
    }

    /// <summary>Records a block as dropped and lets the blocks parked behind it be checked again (they are dropped too).</summary>
    private void Drop(Session session, int round)
    {
        session.Remember(round, null);
        Release(session);
    }

    /// <summary>After a session's block is concluded, blocks parked behind it go back into the queue, in order.</summary>
    private void Release(Session session)
    {
        if (session.Parked.Count == 0)
        {
            return;
        }

        var parked = session.Parked.OrderBy(w => w.Request.Round).ToList();
        session.Parked.Clear();
        foreach (var work in parked)
        {
            if (!_queue.Writer.TryWrite(work))
            {
                work.Fail(new VerificationException(VerificationErrorCode.ShuttingDown, "the verifier is shutting down"));
            }
        }
    }

    private void Conclude(VerifyWork work, Session session, int firstRow, double compute, double queue)
    {
        var request = work.Request;
        var drafts = request.DraftTokens;
        int accepted, next;
        var bonus = !(request.Pipelined && request.ChainFollows) || drafts.Count == 0;
        if (session.Sampling.IsGreedy)
        {
            (accepted, next) = SpeculativeVerification.Greedy(drafts, i => _context.GetLogits(firstRow + i).ToArray(), bonus);
        }
        else
        {
            var rows = new float[drafts.Count + 1][];
            (accepted, next) = SpeculativeVerification.Stochastic(drafts, request.DraftDistributions!,
                i => rows[i] ??= Dense(session, firstRow + i), session.Random, _options.AcceptanceRule, bonus);
        }

        var billed = session.Committed.Count - session.KvCount + drafts.Count;
        var keep = session.Committed.Count + accepted;
        for (var i = 0; i < accepted; i++)
        {
            session.Committed.Add(drafts[i]);
        }

        if (next >= 0)
        {
            session.Committed.Add(next);
        }
        else
        {
            // Accepted whole with a chained block to come: the last draft leaves the KV cache and is decoded again at the
            // head of that block, whose first draft it predicts (as the last committed token heads every block).
            keep--;
        }

        _context.TruncateSequence(session.Slot, keep);
        session.KvCount = keep;
        var result = new VerifyResult(accepted, next, compute, queue);
        session.LastRound = request.Round > 0 ? request.Round : session.LastRound + 1;
        session.LastResult = result;
        session.Remember(session.LastRound, result);
        VerifierMetrics.Round(session.DeviceId, drafts.Count, accepted, billed);
        _usage.AddOrUpdate(session.DeviceId, _ => new DeviceUsage(1, drafts.Count, accepted, billed),
            (_, u) => new DeviceUsage(u.Rounds + 1, u.VerifiedTokens + drafts.Count, u.AcceptedTokens + accepted, u.BilledTokens + billed));
        work.Complete(result);
    }

    private float[] Dense(Session session, int row)
    {
        var logits = _context.GetLogits(row);
        var p = new float[logits.Length];
        TokenDistribution.Dense(logits, session.Sampling, p);
        return p;
    }

    private void ValidateDrafts(Session session, VerifyRequest request)
    {
        var drafts = request.DraftTokens;
        if (drafts.Count > _options.MaxDraftLength)
        {
            throw new VerificationException(VerificationErrorCode.DraftTooLong,
                $"draft block of {drafts.Count} tokens exceeds the verifier's limit of {_options.MaxDraftLength}");
        }

        if (session.Committed.Count + drafts.Count > _options.ContextLength)
        {
            throw new VerificationException(VerificationErrorCode.ContextFull,
                $"session '{session.Id}' is full: {session.Committed.Count} tokens plus {drafts.Count} drafts exceed the context of {_options.ContextLength}");
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
            throw new VerificationException(VerificationErrorCode.InvalidRequest,
                $"stochastic verification needs one draft distribution per draft token ({drafts.Count}), got {distributions?.Count ?? 0}");
        }

        for (var i = 0; i < drafts.Count; i++)
        {
            var q = distributions[i];
            if (q.Tokens.Length != q.Probabilities.Length || q.Tokens.Length == 0)
            {
                throw new VerificationException(VerificationErrorCode.InvalidRequest,
                    $"draft distribution {i} is malformed ({q.Tokens.Length} tokens, {q.Probabilities.Length} probabilities)");
            }

            double sum = 0;
            for (var j = 0; j < q.Tokens.Length; j++)
            {
                CheckToken(q.Tokens[j], $"token in draft distribution {i}");
                var value = q.Probabilities[j];
                if (!float.IsFinite(value) || value < 0f)
                {
                    throw new VerificationException(VerificationErrorCode.InvalidRequest,
                        $"draft distribution {i} has an invalid probability {value} for token {q.Tokens[j]}");
                }

                sum += value;
            }

            if (Math.Abs(sum - 1.0) > 1e-3)
            {
                throw new VerificationException(VerificationErrorCode.InvalidRequest, $"draft distribution {i} sums to {sum:F6}, not 1");
            }

            if (q.ProbabilityOf(drafts[i]) <= 0f)
            {
                throw new VerificationException(VerificationErrorCode.InvalidRequest,
                    $"draft token {drafts[i]} at position {i} has probability 0 in its own draft distribution");
            }
        }
    }

    private void CheckToken(int token, string what)
    {
        if (!_target.IsValidToken(token))
        {
            throw new VerificationException(VerificationErrorCode.InvalidToken,
                $"{what} is {token}, outside the target vocabulary 0..{_target.VocabularySize - 1}");
        }
    }

    private static string Short(string fingerprint) => fingerprint.Length > 12 ? fingerprint[..12] : fingerprint;

    private sealed class Session(string id, int slot, SamplingSettings sampling, List<int> committed, string deviceId)
    {
        public string Id { get; } = id;

        public int Slot { get; } = slot;

        public SamplingSettings Sampling { get; } = sampling;

        public List<int> Committed { get; } = committed;

        public string DeviceId { get; } = deviceId;

        public int KvCount { get; set; }

        public long LastUsed { get; set; }

        public int LastRound { get; set; }

        public VerifyResult? LastResult { get; set; }

        /// <summary>Blocks this session may have unverified at once.</summary>
        public int Pipeline { get; init; } = 1;

        /// <summary>The last verdict accepted a block whole and a chained block must follow it.</summary>
        public bool ChainOpen => LastResult is { NextToken: < 0 };

        /// <summary>Verdicts of recent rounds, for repeated requests (a pipelined board may repeat any block in flight).</summary>
        public Dictionary<int, VerifyResult> Results { get; } = [];

        /// <summary>Recent rounds dropped unverified.</summary>
        public HashSet<int> Dropped { get; } = [];

        /// <summary>Pipelined blocks that came before the block they follow.</summary>
        public List<VerifyWork> Parked { get; } = [];

        private readonly Queue<int> _remembered = new();

        /// <summary>Records a round's verdict, or (null) that it was dropped; the oldest are forgotten past 128.</summary>
        public void Remember(int round, VerifyResult? result)
        {
            if (round <= 0)
            {
                return;
            }

            if (result is null ? Dropped.Add(round) : Results.TryAdd(round, result))
            {
                _remembered.Enqueue(round);
            }

            while (_remembered.Count > 128)
            {
                var old = _remembered.Dequeue();
                Results.Remove(old);
                Dropped.Remove(old);
            }
        }

        public Xoshiro256 Random { get; } = Xoshiro256.ForStream(sampling.Seed, 2);
    }

    private abstract class Work
    {
        private readonly long _enqueued = Stopwatch.GetTimestamp();

        public abstract Task Completion { get; }

        public abstract void Fail(Exception exception);

        public double QueueSeconds(long until) => Math.Max(0, (until - _enqueued) / (double)Stopwatch.Frequency);
    }

    private abstract class Work<T> : Work
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override Task Completion => _completion.Task;

        public void Complete(T value) => _completion.TrySetResult(value);

        public override void Fail(Exception exception) => _completion.TrySetException(exception);
    }

    private sealed class OpenWork(OpenSessionRequest request) : Work<SessionInfo>
    {
        public OpenSessionRequest Request { get; } = request;
    }

    private sealed class VerifyWork(VerifyRequest request) : Work<VerifyResult>
    {
        public VerifyRequest Request { get; } = request;
    }

    private sealed class CloseWork(string sessionId) : Work<bool>
    {
        public string SessionId { get; } = sessionId;
    }
}
