using ConfigSpec.Contracts;
using System.Collections.Concurrent;
using System.Text;
using ConfigSpec.Interop;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ConfigSpec.Transport.Remote;

/// <summary>
/// Serves a <see cref="VerifierEngine"/> over MQTT: takes session opens from the target's shared pool topic and
/// later rounds from its own instance topic, answers on each request's Response Topic with its Correlation Data,
/// and keeps a retained online/offline status (offline also as the last will). Bad payloads are answered with an
/// error where a reply topic exists, counted by kind and logged once per kind; everyone else is served on.
/// </summary>
public sealed partial class MqttVerifierServer : IAsyncDisposable
{
    private readonly VerifierEngine _engine;
    private readonly MqttClient _client;
    private readonly string _targetId;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<ProtocolErrorCode, long> _errors = new();
    private readonly ConcurrentDictionary<string, string> _replyTopics = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;
    private int _inFlight;

    public MqttVerifierServer(VerifierEngine engine, MqttClientOptions broker, string targetId, ILogger? logger = null)
    {
        _engine = engine ?? throw new ArgumentNullException(nameof(engine));
        ArgumentNullException.ThrowIfNull(broker);
        _targetId = targetId;
        _ = Topics.Pool(targetId); // validates the id
        _logger = logger ?? NullLogger.Instance;
        InstanceId = engine.Options.InstanceId;
        _client = new MqttClient(broker with
        {
            ClientId = InstanceId,
            LastWill = new MqttLastWill(Topics.Status(InstanceId), StatusPayload("offline"), 1, true),
        });
    }

    public string InstanceId { get; }

    /// <summary>The newest protocol version served (1: as a verifier without pipelining, which refuses version 2 frames).</summary>
    public byte ProtocolVersion { get; init; } = ProtocolCodec.Version;

    /// <summary>Whether the server's MQTT connection is up now.</summary>
    public bool Connected => _client.IsConnected;

    /// <summary>Refused requests by kind since start.</summary>
    public IReadOnlyDictionary<ProtocolErrorCode, long> ErrorCounts => _errors;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        // Retained messages may not survive a broker restart: say online again on every reconnect.
        _client.ConnectionChanged += up =>
        {
            if (up && _loop is not null && !_stopping.IsCancellationRequested)
            {
                _ = Task.Run(() => TryPublishStatusAsync("online"));
            }
        };
        await _client.ConnectAsync(cancellationToken).ConfigureAwait(false);
        await _client.SubscribeAsync(Topics.PoolSubscription(_targetId), 1, cancellationToken).ConfigureAwait(false);
        await _client.SubscribeAsync(Topics.Instance(InstanceId), 1, cancellationToken).ConfigureAwait(false);
        await _client.PublishAsync(Topics.Status(InstanceId), StatusPayload("online"), 1, true, null, cancellationToken).ConfigureAwait(false);
        _loop = Task.Run(ReceiveLoopAsync, CancellationToken.None);
        Log.Started(_logger, InstanceId, _targetId);
    }

    /// <summary>Stops taking requests, tells open sessions, publishes offline and disconnects.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }

        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (Volatile.Read(ref _inFlight) > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }

        if (_client.IsConnected)
        {
            foreach (var (session, topic) in _replyTopics)
            {
                await TryPublishAsync(topic, new ErrorMessage(ProtocolErrorCode.ShuttingDown, $"verifier {InstanceId} is shutting down; re-open through the pool", session), null)
                    .ConfigureAwait(false);
            }

            await TryPublishStatusAsync("offline").ConfigureAwait(false);
        }

        foreach (var (device, usage) in _engine.Usage)
        {
            Log.Usage(_logger, device, usage.Rounds, usage.VerifiedTokens, usage.AcceptedTokens, usage.BilledTokens);
        }

        Log.Stopped(_logger, InstanceId);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await _client.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    private byte[] StatusPayload(string state) => Contract.WriteUtf8(new VerifierStatus(state, InstanceId, _targetId, DateTimeOffset.UtcNow));

    private async Task TryPublishStatusAsync(string state)
    {
        try
        {
            await _client.PublishAsync(Topics.Status(InstanceId), StatusPayload(state), 1, true).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is MqttException or TimeoutException)
        {
            Log.PublishFailed(_logger, Topics.Status(InstanceId), ex.Message);
        }
    }

    private async Task ReceiveLoopAsync()
    {
        try
        {
            await foreach (var message in _client.Messages.ReadAllAsync(_stopping.Token).ConfigureAwait(false))
            {
                Interlocked.Increment(ref _inFlight);
                // Each request runs on its own so that rounds of different boards meet in one batch.
                _ = Task.Run(async () =>
                {
                    try
                    {
                        await HandleAsync(message).ConfigureAwait(false);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref _inFlight);
                    }
                });
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task HandleAsync(MqttMessage message)
    {
        ProtocolMessage request;
        try
        {
            request = ProtocolCodec.Decode(message.Payload, ProtocolVersion);
        }
        catch (ProtocolException ex)
        {
            await RefuseAsync(message, ex.Code, ex.Message, string.Empty).ConfigureAwait(false);
            return;
        }

        var session = request switch
        {
            VerifyMessage v => v.SessionId,
            CloseSessionMessage c => c.SessionId,
            _ => string.Empty,
        };
        try
        {
            ProtocolMessage? reply = request switch
            {
                OpenSessionMessage open => await OpenAsync(open, message.ResponseTopic).ConfigureAwait(false),
                VerifyMessage verify => await VerifyAsync(verify).ConfigureAwait(false),
                CloseSessionMessage close => await CloseAsync(close).ConfigureAwait(false),
                _ => throw new ProtocolException(ProtocolErrorCode.InvalidRequest, $"a verifier does not accept {request.Type} messages"),
            };
            if (reply is not null && message.ResponseTopic is not null)
            {
                await TryPublishAsync(message.ResponseTopic, reply, message.CorrelationData).ConfigureAwait(false);
            }
        }
        catch (ProtocolException ex)
        {
            await RefuseAsync(message, ex.Code, ex.Message, session).ConfigureAwait(false);
        }
        catch (VocabularyMismatchException ex)
        {
            await RefuseAsync(message, ProtocolErrorCode.VocabularyMismatch, ex.Message, session).ConfigureAwait(false);
        }
        catch (VerificationException ex)
        {
            await RefuseAsync(message, ErrorCodes.ToProtocol(ex.Code), ex.Message, session).ConfigureAwait(false);
        }
        catch (ConfigSpecException ex)
        {
            await RefuseAsync(message, ProtocolErrorCode.InvalidRequest, ex.Message, session).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // a request is outside input: whatever it causes is answered, counted and logged; the service goes on
        catch (Exception ex) when (ex is not OutOfMemoryException)
#pragma warning restore CA1031
        {
            await RefuseAsync(message, ProtocolErrorCode.Internal, $"{ex.GetType().Name}: {ex.Message}", session).ConfigureAwait(false);
        }
    }

    private async Task<ProtocolMessage> OpenAsync(OpenSessionMessage open, string? replyTopic)
    {
        if (!string.Equals(open.TargetId, _targetId, StringComparison.Ordinal))
        {
            throw new ProtocolException(ProtocolErrorCode.UnknownTarget, $"this verifier serves target '{_targetId}', not '{open.TargetId}'");
        }

        var info = await _engine.OpenAsync(new OpenSessionRequest(open.PromptTokens, open.Sampling,
            open.VocabularyFingerprint.Length > 0 ? open.VocabularyFingerprint : null, $"draft of {open.DeviceId}", open.DeviceId, open.Pipeline)).ConfigureAwait(false);
        if (replyTopic is not null)
        {
            _replyTopics[info.SessionId] = replyTopic;
        }

        return new SessionOpenedMessage(info.SessionId, InstanceId, info.VocabularySize, info.ContextLength, info.Pipeline);
    }

    private async Task<ProtocolMessage> VerifyAsync(VerifyMessage verify)
    {
        if (verify.DraftDistributions is not null && verify.DraftDistributions.Length != verify.DraftTokens.Length)
        {
            throw new ProtocolException(ProtocolErrorCode.InvalidRequest, "one draft distribution per draft token is needed");
        }

        if (verify.Round < 1)
        {
            throw new ProtocolException(ProtocolErrorCode.BadRound, $"round numbers start at 1 (got {verify.Round})");
        }

        var result = await _engine.VerifyAsync(new VerifyRequest(verify.SessionId, verify.DraftTokens, verify.DraftDistributions,
            verify.Round, verify.Position, verify.Base, verify.Chained, verify.ChainFollows)).ConfigureAwait(false);
        return new VerifyResultMessage(verify.SessionId, verify.Round, result.AcceptedCount, result.NextToken,
            (long)(result.QueueSeconds * 1e6), (long)(result.TargetSeconds * 1e6));
    }

    private async Task<ProtocolMessage?> CloseAsync(CloseSessionMessage close)
    {
        _replyTopics.TryRemove(close.SessionId, out _);
        await _engine.CloseAsync(close.SessionId).ConfigureAwait(false);
        return null;
    }

    private async Task RefuseAsync(MqttMessage message, ProtocolErrorCode code, string text, string session)
    {
        VerifierMetrics.Error(ErrorCodes.Name(code));
        if (_errors.AddOrUpdate(code, 1, (_, n) => n + 1) == 1)
        {
            Log.FirstRefusal(_logger, code, message.Topic, text);
        }

        if (message.ResponseTopic is not null)
        {
            await TryPublishAsync(message.ResponseTopic, new ErrorMessage(code, text, session), message.CorrelationData).ConfigureAwait(false);
        }
    }

    private async Task TryPublishAsync(string topic, ProtocolMessage reply, byte[]? correlation)
    {
        try
        {
            await _client.PublishAsync(topic, ProtocolCodec.Encode(reply), 1, false, new MqttPublishProperties(CorrelationData: correlation)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is MqttException or TimeoutException or ArgumentException)
        {
            Log.PublishFailed(_logger, topic, ex.Message);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "verifier {Instance} serving target {Target}")]
        public static partial void Started(ILogger logger, string instance, string target);

        [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "verifier {Instance} stopped")]
        public static partial void Stopped(ILogger logger, string instance);

        [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "board {Device}: {Rounds} rounds, {Verified} draft tokens verified, {Accepted} accepted, {Billed} tokens billed")]
        public static partial void Usage(ILogger logger, string device, long rounds, long verified, long accepted, long billed);

        [LoggerMessage(EventId = 110, Level = LogLevel.Warning, Message = "refused a request on {Topic} ({Code}): {Reason} (further {Code} refusals are counted, not logged)")]
        public static partial void FirstRefusal(ILogger logger, ProtocolErrorCode code, string topic, string reason);

        [LoggerMessage(EventId = 120, Level = LogLevel.Warning, Message = "could not publish to {Topic}: {Reason}")]
        public static partial void PublishFailed(ILogger logger, string topic, string reason);
    }
}
