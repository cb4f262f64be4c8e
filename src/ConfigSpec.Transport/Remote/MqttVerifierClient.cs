using ConfigSpec.Contracts;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using ConfigSpec.Speculative.Policies;
using ConfigSpec.Speculative.Sampling;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Protocol;

namespace ConfigSpec.Transport.Remote;

/// <summary>Settings of the board side of remote verification.</summary>
public sealed record RemoteVerifierOptions
{
    /// <summary>The target model's id, e.g. <c>stories260K</c>.</summary>
    public required string TargetId { get; init; }

    /// <summary>This board's id (its reply topic and accounting name).</summary>
    public required string DeviceId { get; init; }

    /// <summary>How long one request may wait for its reply before it is sent again.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Attempts per round (re-sends to the same replica, then re-opens through the pool) before giving up.</summary>
    public int Attempts { get; init; } = 8;
}

/// <summary>
/// <see cref="IVerifier"/> over MQTT. Opens go to the target's pool topic; rounds go to the replica holding the
/// session. A lost replica (offline status, time-out, eviction, shutdown) is replaced transparently: the session is
/// re-opened through the pool with its full committed context and the round is repeated, so greedy output is
/// unchanged. The caller's session id stays the same throughout.
/// It is also a <see cref="ILinkProbe"/>: a probe is an empty QoS 0 message to the board's own reply topic (correlation
/// data <c>probe-N</c>), which the broker echoes back over the same link the verdicts take.
/// </summary>
public sealed class MqttVerifierClient : IVerifier, ILinkProbe
{
    private const string ProbePrefix = "probe-";
    private readonly MqttClient _client;
    private readonly RemoteVerifierOptions _options;
    private readonly string _replyTopic;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<ProtocolMessage>> _waiting = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _waitingOn = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RemoteSession> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _offline = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _closing = new();
    private Task? _loop;
    private long _nextLocal;
    private bool _ownsClient;
    private long _probeSeq;
    private long _probeSent;
    private long _probeBack = -1;
    private bool _sequentialOnly;

    public MqttVerifierClient(MqttClient client, RemoteVerifierOptions options)
    {
        _client = client ?? throw new ArgumentNullException(nameof(client));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _replyTopic = Topics.Reply(options.DeviceId);
        _ = Topics.Pool(options.TargetId);
    }

    /// <summary>Sessions re-opened on another (or the same) replica after a loss.</summary>
    public int Reopened { get; private set; }

    private long _refused;

    /// <summary>Messages on the board's reply and status subscriptions that could not be read (a replica's status that is not its schema, say): ignored and counted.</summary>
    public long RefusedMessages => Interlocked.Read(ref _refused);

    /// <summary>Requests sent again after a time-out.</summary>
    public int Resent { get; private set; }

    /// <summary>Probes that could not be sent (the broker was unreachable at the time).</summary>
    public int ProbesFailed { get; private set; }

    public void SendProbe()
    {
        var seq = Interlocked.Increment(ref _probeSeq);
        Interlocked.Exchange(ref _probeBack, -1);
        Interlocked.Exchange(ref _probeSent, Stopwatch.GetTimestamp());
        var sent = _client.PublishAsync(_replyTopic, ReadOnlyMemory<byte>.Empty, 0, false,
            new MqttPublishProperties(CorrelationData: Encoding.ASCII.GetBytes(ProbePrefix + seq.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        if (sent.IsFaulted)
        {
            _ = sent.Exception; // observed: a probe lost is no news, the round goes on without it
            ProbesFailed++;
        }
    }

    public double? ProbeRoundTripSeconds
    {
        get
        {
            var back = Interlocked.Read(ref _probeBack);
            return back < 0 ? null : Stopwatch.GetElapsedTime(Interlocked.Read(ref _probeSent), back).TotalSeconds;
        }
    }

    private void OnProbe(string key)
    {
        // Only the latest probe counts; an echo of an earlier one (a round that ended first) is ignored.
        if (long.TryParse(key.AsSpan(ProbePrefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seq)
            && seq == Interlocked.Read(ref _probeSeq))
        {
            Interlocked.CompareExchange(ref _probeBack, Stopwatch.GetTimestamp(), -1);
        }
    }

    private const int MaxRoundTimes = 100_000;
    private const int MaxEvictionsPerRound = 200;

    /// <summary>Round trips of the most recent verification rounds in seconds, with the verifier's own queue and compute time.</summary>
    public ConcurrentQueue<(double RoundTrip, double Queue, double Compute)> RoundTimes { get; } = new();

    /// <summary>Connects a client of its own to the broker and starts; the client is closed with this verifier.</summary>
    public static async Task<MqttVerifierClient> ConnectAsync(MqttClientOptions broker, RemoteVerifierOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(broker);
        ArgumentNullException.ThrowIfNull(options);
        var client = new MqttClient(broker with { ClientId = $"{options.DeviceId}-{Guid.NewGuid().ToString("N")[..6]}" });
        var verifier = new MqttVerifierClient(client, options) { _ownsClient = true };
        try
        {
            await verifier.StartAsync(cancellationToken).ConfigureAwait(false);
            return verifier;
        }
        catch
        {
            await verifier.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (!_client.IsConnected)
        {
            await _client.ConnectAsync(cancellationToken).ConfigureAwait(false);
        }

        await _client.SubscribeAsync(_replyTopic, 1, cancellationToken).ConfigureAwait(false);
        await _client.SubscribeAsync(Topics.AllStatus, 1, cancellationToken).ConfigureAwait(false);
        _loop = Task.Run(ReceiveLoopAsync, CancellationToken.None);
    }

    public async ValueTask<SessionInfo> OpenAsync(OpenSessionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var session = new RemoteSession($"{_options.DeviceId}-{Interlocked.Increment(ref _nextLocal)}", request);
        var opened = await OpenRemoteAsync(session, cancellationToken).ConfigureAwait(false);
        _sessions[session.LocalId] = session;
        return new SessionInfo(session.LocalId, opened.VocabularySize, opened.ContextLength, request.DraftVocabularyFingerprint ?? string.Empty, opened.InstanceId,
            opened.Pipeline);
    }

    public async ValueTask<VerifyResult> VerifyAsync(VerifyRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!_sessions.TryGetValue(request.SessionId, out var session))
        {
            throw new VerificationException(VerificationErrorCode.UnknownSession, $"unknown verification session '{request.SessionId}'");
        }

        if (request.Pipelined)
        {
            return await VerifyPipelinedAsync(session, request, cancellationToken).ConfigureAwait(false);
        }

        if (request.Position >= 0 && request.Position != session.Committed.Count)
        {
            throw new VerificationException(VerificationErrorCode.BadRound,
                $"session '{session.LocalId}' holds {session.Committed.Count} committed tokens, the request assumes {request.Position}");
        }

        var drafts = request.DraftTokens.ToArray();
        var distributions = request.DraftDistributions?.ToArray();
        var round = session.RemoteRound + 1;
        var evictions = 0;
        for (var attempt = 1; ; attempt++)
        {
            var started = Stopwatch.GetTimestamp();
            var message = new VerifyMessage(session.RemoteId, round, session.Committed.Count, drafts, distributions);
            ProtocolMessage? reply = null;
            if (!_offline.ContainsKey(session.InstanceId))
            {
                reply = await RequestAsync(Topics.Instance(session.InstanceId), message, session.InstanceId, cancellationToken).ConfigureAwait(false);
            }

            switch (reply)
            {
                case VerifyResultMessage result:
                    var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
                    RoundTimes.Enqueue((seconds, result.QueueMicros / 1e6, result.ComputeMicros / 1e6));
                    while (RoundTimes.Count > MaxRoundTimes && RoundTimes.TryDequeue(out _))
                    {
                    }

                    session.RemoteRound = round;
                    for (var i = 0; i < result.Accepted; i++)
                    {
                        session.Committed.Add(drafts[i]);
                    }

                    session.Committed.Add(result.NextToken);
                    return new VerifyResult(result.Accepted, result.NextToken, result.ComputeMicros / 1e6, result.QueueMicros / 1e6);
                case ErrorMessage { Code: ProtocolErrorCode.SessionEvicted }:
                    // More busy boards than session slots: back off with jitter so two boards do not keep evicting each other.
                    if (++evictions > MaxEvictionsPerRound)
                    {
                        throw new VerificationException(VerificationErrorCode.SessionEvicted,
                            $"session evicted {evictions - 1} times in one round: the verifiers for '{_options.TargetId}' hold too few sessions for the boards using them");
                    }

                    attempt--; // an eviction is an answer, not a lost request
                    await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(0, 5 * Math.Min(evictions, 20))), cancellationToken).ConfigureAwait(false);
                    await ReopenAsync(session, cancellationToken).ConfigureAwait(false);
                    round = 1;
                    break;
                case ErrorMessage { Code: ProtocolErrorCode.UnknownSession or ProtocolErrorCode.ShuttingDown }:
                case null when attempt % 2 == 0 || _offline.ContainsKey(session.InstanceId):
                    if (attempt >= _options.Attempts)
                    {
                        throw new VerificationException(VerificationErrorCode.ShuttingDown,
                            $"no verifier for target '{_options.TargetId}' answered after {attempt} attempts");
                    }

                    // The replica lost the session or is gone: re-open through the pool with the full context.
                    await ReopenAsync(session, cancellationToken).ConfigureAwait(false);
                    round = 1;
                    break;
                case null:
                    Resent++; // a lost message or a slow replica: the same round again is idempotent
                    break;
                case ErrorMessage error:
                    throw new VerificationException(ErrorCodes.ToVerification(error.Code), $"verifier refused round {round}: {error.Message}");
                default:
                    throw new VerificationException(VerificationErrorCode.InvalidRequest, $"unexpected {reply.Type} reply to a round");
            }
        }
    }

    /// <summary>
    /// A pipelined block: sent as the caller numbered it (several may be in flight at once) and sent again on a time-out
    /// (the replica answers a repeated round from its cache). A replica lost with blocks in flight is not replaced here: the
    /// caller is told the session is gone (<see cref="VerificationErrorCode.SessionEvicted"/>) and re-opens with the context it
    /// holds, since only it knows which blocks stand.
    /// </summary>
    private async Task<VerifyResult> VerifyPipelinedAsync(RemoteSession session, VerifyRequest request, CancellationToken cancellationToken)
    {
        var message = new VerifyMessage(session.RemoteId, request.Round, request.Position, [.. request.DraftTokens], request.DraftDistributions?.ToArray(),
            request.Base, request.Chained, request.ChainFollows);
        for (var attempt = 1; ; attempt++)
        {
            var started = Stopwatch.GetTimestamp();
            var reply = _offline.ContainsKey(session.InstanceId) ? null
                : await RequestAsync(Topics.Instance(session.InstanceId), message, session.InstanceId, cancellationToken).ConfigureAwait(false);
            switch (reply)
            {
                case VerifyResultMessage result:
                    RoundTimes.Enqueue((Stopwatch.GetElapsedTime(started).TotalSeconds, result.QueueMicros / 1e6, result.ComputeMicros / 1e6));
                    while (RoundTimes.Count > MaxRoundTimes && RoundTimes.TryDequeue(out _))
                    {
                    }

                    return new VerifyResult(result.Accepted, result.NextToken, result.ComputeMicros / 1e6, result.QueueMicros / 1e6);
                case ErrorMessage { Code: ProtocolErrorCode.SessionEvicted or ProtocolErrorCode.UnknownSession or ProtocolErrorCode.ShuttingDown } error:
                    throw new VerificationException(VerificationErrorCode.SessionEvicted,
                        $"replica '{session.InstanceId}' lost the session with round {request.Round} in flight: {error.Message}");
                case null when _offline.ContainsKey(session.InstanceId) || attempt >= _options.Attempts:
                    throw new VerificationException(VerificationErrorCode.SessionEvicted,
                        $"replica '{session.InstanceId}' did not answer round {request.Round} after {attempt} attempts (offline or unreachable)");
                case null:
                    Resent++;
                    break;
                case ErrorMessage error:
                    throw new VerificationException(ErrorCodes.ToVerification(error.Code), $"verifier refused round {request.Round}: {error.Message}");
                default:
                    throw new VerificationException(VerificationErrorCode.InvalidRequest, $"unexpected {reply.Type} reply to a round");
            }
        }
    }

    public async ValueTask CloseAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        if (_sessions.TryRemove(sessionId, out var session) && _client.IsConnected)
        {
            try
            {
                await _client.PublishAsync(Topics.Instance(session.InstanceId), ProtocolCodec.Encode(new CloseSessionMessage(session.RemoteId)), 1,
                    cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (MqttException)
            {
                // The replica frees idle sessions by eviction anyway.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _closing.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }

        _closing.Dispose();
        if (_ownsClient)
        {
            await _client.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task ReopenAsync(RemoteSession session, CancellationToken cancellationToken)
    {
        await OpenRemoteAsync(session, cancellationToken).ConfigureAwait(false);
        Reopened++;
    }

    private async Task<SessionOpenedMessage> OpenRemoteAsync(RemoteSession session, CancellationToken cancellationToken)
    {
        var request = session.Request;
        var open = new OpenSessionMessage(_options.TargetId, _options.DeviceId, request.DraftVocabularyFingerprint ?? string.Empty,
            request.Sampling, [.. session.Committed], _sequentialOnly ? 1 : request.Pipeline);
        for (var attempt = 1; attempt <= _options.Attempts; attempt++)
        {
            var reply = await RequestAsync(Topics.Pool(_options.TargetId), open, null, cancellationToken).ConfigureAwait(false);
            switch (reply)
            {
                case ErrorMessage { Code: ProtocolErrorCode.UnsupportedVersion } when open.Pipeline > 1:
                    // A verifier of protocol version 1: it knows no pipelining, so ask again as version 1 (one block in flight).
                    _sequentialOnly = true;
                    open = open with { Pipeline = 1 };
                    attempt--;
                    continue;
                case SessionOpenedMessage opened:
                    session.RemoteId = opened.SessionId;
                    session.InstanceId = opened.InstanceId;
                    session.RemoteRound = 0;
                    _offline.TryRemove(opened.InstanceId, out _);
                    return opened;
                case ErrorMessage { Code: ProtocolErrorCode.VocabularyMismatch } error:
                    throw new VocabularyMismatchException(error.Message);
                case ErrorMessage { Code: ProtocolErrorCode.ShuttingDown }:
                case null:
                    continue;
                case ErrorMessage error:
                    throw new VerificationException(ErrorCodes.ToVerification(error.Code), $"verifier refused the session: {error.Message}");
            }
        }

        throw new VerificationException(VerificationErrorCode.ShuttingDown,
            $"no verifier for target '{_options.TargetId}' answered on {Topics.Pool(_options.TargetId)} after {_options.Attempts} attempts");
    }

    /// <summary>Publishes a request and waits for its reply; null on time-out or when the replica goes offline meanwhile.</summary>
    private async Task<ProtocolMessage?> RequestAsync(string topic, ProtocolMessage message, string? instance, CancellationToken cancellationToken)
    {
        var correlation = Guid.NewGuid().ToString("N");
        var signal = new TaskCompletionSource<ProtocolMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiting[correlation] = signal;
        if (instance is not null)
        {
            _waitingOn[correlation] = instance;
        }

        try
        {
            try
            {
                await _client.PublishAsync(topic, ProtocolCodec.Encode(message), 1, false,
                    new MqttPublishProperties(_replyTopic, Encoding.ASCII.GetBytes(correlation), (uint)Math.Ceiling(_options.RequestTimeout.TotalSeconds) + 1),
                    cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is MqttException or TimeoutException)
            {
                // Broker gone: the client may notice a dead socket on this publish before its loop reports the
                // disconnect, so pause before waiting for the (re)connection; then let the caller retry.
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(250, _options.RequestTimeout.TotalMilliseconds)), cancellationToken).ConfigureAwait(false);
                try
                {
                    await _client.WaitConnectedAsync(_options.RequestTimeout * 4, cancellationToken).ConfigureAwait(false);
                }
                catch (MqttException)
                {
                    // Still down; the caller's attempt budget decides when to give up.
                }

                return null;
            }

            try
            {
                return await signal.Task.WaitAsync(_options.RequestTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                return null;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return null; // the replica went offline while we waited
            }
        }
        finally
        {
            _waiting.TryRemove(correlation, out _);
            _waitingOn.TryRemove(correlation, out _);
        }
    }

    private async Task ReceiveLoopAsync()
    {
        try
        {
            await foreach (var message in _client.Messages.ReadAllAsync(_closing.Token).ConfigureAwait(false))
            {
#pragma warning disable CA1031 // whatever one message on the board's subscriptions holds, the loop that carries every verdict goes on
                try
                {
                    Dispatch(message);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    Interlocked.Increment(ref _refused);
                }
#pragma warning restore CA1031
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void Dispatch(MqttMessage message)
    {
        if (Topics.InstanceOfStatus(message.Topic) is { } instance)
        {
            OnStatus(instance, message.Payload);
            return;
        }

        if (message.CorrelationData is null)
        {
            return;
        }

        var key = Encoding.ASCII.GetString(message.CorrelationData);
        if (key.StartsWith(ProbePrefix, StringComparison.Ordinal))
        {
            OnProbe(key);
            return;
        }

        if (!_waiting.TryGetValue(key, out var signal))
        {
            return; // a late reply to a request already given up on
        }

        try
        {
            signal.TrySetResult(ProtocolCodec.Decode(message.Payload));
        }
        catch (ProtocolException ex)
        {
            signal.TrySetResult(new ErrorMessage(ex.Code, $"unreadable reply: {ex.Message}"));
        }
    }

    private void OnStatus(string instance, byte[] payload)
    {
        if (payload.Length == 0)
        {
            return; // a retained status cleared
        }

        VerifierStatus status;
        try
        {
            status = Contract.Read<VerifierStatus>(payload);
        }
        catch (ContractException)
        {
            Interlocked.Increment(ref _refused);
            return;
        }

        if (status.State != "offline")
        {
            _offline.TryRemove(instance, out _);
            return;
        }

        _offline[instance] = true;
        // Requests waiting on a replica that just went away give up at once.
        foreach (var (correlation, target) in _waitingOn)
        {
            if (target == instance && _waiting.TryGetValue(correlation, out var signal))
            {
                signal.TrySetCanceled();
            }
        }
    }

    private sealed class RemoteSession(string localId, OpenSessionRequest request)
    {
        public string LocalId { get; } = localId;

        public OpenSessionRequest Request { get; } = request;

        public List<int> Committed { get; } = [.. request.PromptTokens];

        public string RemoteId { get; set; } = string.Empty;

        public string InstanceId { get; set; } = string.Empty;

        public int RemoteRound { get; set; }
    }
}
