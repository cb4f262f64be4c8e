using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading.Channels;
using MQTTnet;
using MQTTnet.Exceptions;
using MQTTnet.Protocol;
using Net = MQTTnet;

namespace ConfigSpec.Transport.Mqtt;

/// <summary>
/// An MQTT 5 client on MQTTnet that stays connected: a background loop connects, reconnects with exponential back-off
/// after every loss and makes every subscription again on each new connection. Received messages arrive in
/// <see cref="Messages"/>; QoS 1 publishes and subscriptions complete on the broker's acknowledgement.
/// </summary>
public sealed class MqttClient : IAsyncDisposable
{
    private readonly MqttClientOptions _options;
    private readonly IMqttClient _client;
    private readonly Net.MqttClientOptions _connect;
    private readonly Channel<MqttMessage> _messages = Channel.CreateUnbounded<MqttMessage>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly ConcurrentDictionary<string, int> _subscriptions = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _closing = new();
    private readonly Lock _gate = new();
    private TaskCompletionSource<string?> _connected = NewSignal();
    private TaskCompletionSource _lost = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _loop;
    private volatile bool _isConnected;
    private int _disposed;

    public MqttClient(MqttClientOptions options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
        _connect = BuildConnectOptions(options);
        _client = new MqttClientFactory().CreateMqttClient();
        _client.ApplicationMessageReceivedAsync += OnMessage;
        _client.DisconnectedAsync += OnDisconnected;
    }

    /// <summary>Every message received on this client's subscriptions, in arrival order.</summary>
    public ChannelReader<MqttMessage> Messages => _messages.Reader;

    public bool IsConnected => _isConnected;

    public string ClientId => _options.ClientId;

    /// <summary>True when the broker kept this client's session from an earlier connection (persistent sessions only).</summary>
    public bool SessionPresent { get; private set; }

    /// <summary>Raised when the connection comes up, after the subscriptions are made again (true), or goes down (false).</summary>
    public event Action<bool>? ConnectionChanged;

    /// <summary>Starts the connection loop and waits for the first connection (the loop keeps trying after a time-out).</summary>
    public async Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            _loop ??= Task.Run(ConnectionLoopAsync, CancellationToken.None);
        }

        await WaitConnectedAsync(_options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Waits until the client is connected (after a reconnect, for instance).</summary>
    public async Task WaitConnectedAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        TaskCompletionSource<string?> signal;
        lock (_gate)
        {
            signal = _connected;
        }

        if (_isConnected)
        {
            return;
        }

        try
        {
            var refusal = await signal.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            if (refusal is not null)
            {
                throw new MqttException($"broker {_options.Broker} refused the connection: {refusal}");
            }
        }
        catch (TimeoutException)
        {
            throw new MqttException($"no connection to broker {_options.Broker} within {timeout.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)} s (is it running and reachable?)");
        }
    }

    public async Task SubscribeAsync(string filter, int qos = 1, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(filter);
        ThrowIfDisposed();
        _subscriptions[filter] = qos;
        if (!_isConnected)
        {
            throw NotConnected($"subscribe to '{filter}'");
        }

        await SubscribeCoreAsync(filter, qos, cancellationToken).ConfigureAwait(false);
    }

    private async Task SubscribeCoreAsync(string filter, int qos, CancellationToken cancellationToken)
    {
        var request = new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic(filter).WithQualityOfServiceLevel(Qos(qos)))
            .Build();
        var result = await Call(() => _client.SubscribeAsync(request, cancellationToken), $"subscribe to '{filter}'").ConfigureAwait(false);
        var code = result.Items.Count > 0 ? result.Items.First().ResultCode : MqttClientSubscribeResultCode.UnspecifiedError;
        if ((int)code >= 0x80)
        {
            throw new MqttRefusedException($"broker refused the subscription '{filter}': {Words(code.ToString())}");
        }
    }

    /// <summary>Publishes; for QoS 1 the task completes when the broker acknowledges.</summary>
    public async Task PublishAsync(string topic, ReadOnlyMemory<byte> payload, int qos = 0, bool retain = false,
        MqttPublishProperties? properties = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        if (qos is < 0 or > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(qos), qos, "QoS 0 or 1");
        }

        ThrowIfDisposed();
        var builder = new MqttApplicationMessageBuilder()
            .WithTopic(topic)
            .WithPayloadSegment(payload)
            .WithQualityOfServiceLevel(Qos(qos))
            .WithRetainFlag(retain);
        if (properties?.ResponseTopic is { } responseTopic)
        {
            builder.WithResponseTopic(responseTopic);
        }

        if (properties?.CorrelationData is { } correlation)
        {
            if (correlation.Length > ushort.MaxValue)
            {
                throw new ArgumentException("correlation data longer than 65535 bytes", nameof(properties));
            }

            builder.WithCorrelationData(correlation);
        }

        if (properties?.MessageExpirySeconds is { } expiry)
        {
            builder.WithMessageExpiryInterval(expiry);
        }

        var message = builder.Build();
        var what = $"publish to '{topic}'";
        if (!_isConnected)
        {
            throw NotConnected(what);
        }

        var result = await Call(() => _client.PublishAsync(message, cancellationToken), what).ConfigureAwait(false);
        // "No matching subscribers" (0x10) is a success: the broker took the message.
        if ((int)result.ReasonCode >= 0x80)
        {
            throw new MqttRefusedException($"broker {_options.Broker} refused the {what}: {Words(result.ReasonCode.ToString())}{(result.ReasonString is { Length: > 0 } r ? " (" + r + ")" : string.Empty)}");
        }
    }

    public Task PublishAsync(string topic, string payload, int qos = 0, bool retain = false, CancellationToken cancellationToken = default) =>
        PublishAsync(topic, Encoding.UTF8.GetBytes(payload), qos, retain, null, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _closing.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }

        if (_client.IsConnected)
        {
            // A normal DISCONNECT: the broker drops the last will; a persistent session keeps its expiry.
            var disconnect = new MqttClientDisconnectOptionsBuilder()
                .WithReason(MqttClientDisconnectOptionsReason.NormalDisconnection)
                .WithSessionExpiryInterval(_connect.SessionExpiryInterval)
                .Build();
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await _client.DisconnectAsync(disconnect, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException or ObjectDisposedException)
            {
                // Already gone.
            }
        }

        _client.Dispose();
        _messages.Writer.TryComplete();
        _closing.Dispose();
    }

    /// <summary>Connects, waits for the loss of the connection, and reconnects with back-off until disposed.</summary>
    private async Task ConnectionLoopAsync()
    {
        var delay = _options.ReconnectDelay;
        var token = _closing.Token;
        while (!token.IsCancellationRequested)
        {
            TaskCompletionSource lost;
            lock (_gate)
            {
                lost = _lost = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            try
            {
                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(token);
                attempt.CancelAfter(_options.ConnectTimeout);
                // A refusal (bad credentials, say) comes back as the CONNACK's reason code, not as an exception.
                var result = await _client.ConnectAsync(_connect, attempt.Token).ConfigureAwait(false);
                if (result.ResultCode != MqttClientConnectResultCode.Success)
                {
                    Refused(Words(result.ResultCode.ToString()) + (result.ReasonString is { Length: > 0 } r ? $" ({r})" : string.Empty));
                }
                else
                {
                    SessionPresent = result.IsSessionPresent;
                    await ResubscribeAsync(token).ConfigureAwait(false);
                    _isConnected = _client.IsConnected;
                    if (_isConnected)
                    {
                        delay = _options.ReconnectDelay;
                        lock (_gate)
                        {
                            _connected.TrySetResult(null);
                        }

                        ConnectionChanged?.Invoke(true);
                        await lost.Task.WaitAsync(token).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // whatever one attempt meets (unreachable, TLS, a connection lost while subscribing), the loop must go on
            catch (Exception)
#pragma warning restore CA1031
            {
                // Try again after the delay.
            }

            try
            {
                await Task.Delay(delay, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.ReconnectDelayMax.Ticks));
        }
    }

    /// <summary>Makes every subscription again: a clean start drops them on the broker, and a kept session may lack later ones.</summary>
    private async Task ResubscribeAsync(CancellationToken cancellationToken)
    {
        foreach (var (filter, qos) in _subscriptions)
        {
            try
            {
                await SubscribeCoreAsync(filter, qos, cancellationToken).ConfigureAwait(false);
            }
            catch (MqttException) when (_client.IsConnected)
            {
                // Refused by the broker (an ACL, say): the other subscriptions still stand.
            }
        }
    }

    private void Refused(string reason)
    {
        lock (_gate)
        {
            _connected.TrySetResult(reason);
            _connected = NewSignal();
        }
    }

    private Task OnDisconnected(MqttClientDisconnectedEventArgs e)
    {
        if (!e.ClientWasConnected)
        {
            return Task.CompletedTask;
        }

        var was = _isConnected;
        _isConnected = false;
        lock (_gate)
        {
            if (_connected.Task.IsCompleted)
            {
                _connected = NewSignal();
            }

            _lost.TrySetResult();
        }

        if (was)
        {
            ConnectionChanged?.Invoke(false);
        }

        return Task.CompletedTask;
    }

    private Task OnMessage(MqttApplicationMessageReceivedEventArgs e)
    {
        var m = e.ApplicationMessage;
        _messages.Writer.TryWrite(new MqttMessage(m.Topic, m.Payload.ToArray(), (int)m.QualityOfServiceLevel, m.Retain, m.ResponseTopic, m.CorrelationData));
        return Task.CompletedTask;
    }

    /// <summary>Runs an MQTTnet call; its failures become an <see cref="MqttException"/> that says what failed and where.</summary>
    private async Task<T> Call<T>(Func<Task<T>> call, string what)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (MqttClientNotConnectedException)
        {
            throw NotConnected(what);
        }
        catch (MqttCommunicationTimedOutException)
        {
            throw new MqttException($"cannot {what}: broker {_options.Broker} did not acknowledge in time");
        }
        catch (MqttCommunicationException ex)
        {
            throw new MqttException($"cannot {what}: connection to broker {_options.Broker} lost before the broker acknowledged ({ex.Message})", ex);
        }
        catch (ObjectDisposedException)
        {
            throw new MqttException($"cannot {what}: the MQTT client '{_options.ClientId}' is closed");
        }
    }

    private MqttException NotConnected(string what) => new($"cannot {what}: not connected to broker {_options.Broker}");

    private static Net.MqttClientOptions BuildConnectOptions(MqttClientOptions options)
    {
        var builder = new MqttClientOptionsBuilder()
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
            .WithTcpServer(options.Broker.Host, options.Port)
            .WithClientId(options.ClientId)
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(options.KeepAliveSeconds))
            .WithTimeout(TimeSpan.FromSeconds(30))
            .WithCleanStart(!options.PersistentSession && options.CleanStart)
            .WithSessionExpiryInterval(options.PersistentSession ? (uint)Math.Clamp(options.SessionExpiry.TotalSeconds, 1, uint.MaxValue) : 0);
        if (options.Username is not null)
        {
            builder.WithCredentials(options.Username, options.Password);
        }

        if (options.UseTls)
        {
            builder.WithTlsOptions(tls =>
            {
                tls.UseTls().WithTargetHost(options.Broker.Host);
                if (options.CaFile is not null)
                {
                    // A private CA: the broker's chain must end at it (not at a system root).
                    tls.WithTrustChain(LoadCertificates(options.CaFile));
                }

                if (options.CertificateFile is not null)
                {
                    tls.WithClientCertificates(new X509Certificate2Collection(LoadClientCertificate(options.CertificateFile, options.KeyFile!)));
                }
            });
        }

        if (options.LastWill is { } will)
        {
            builder.WithWillTopic(will.Topic).WithWillPayload(will.Payload).WithWillQualityOfServiceLevel(Qos(will.Qos)).WithWillRetain(will.Retain);
        }

        var built = builder.Build();
        // Small request/response messages: without this, Nagle's algorithm and delayed ACKs add ~40 ms per hop.
        ((MqttClientTcpOptions)built.ChannelOptions).NoDelay = true;
        return built;
    }

    private static X509Certificate2Collection LoadCertificates(string path)
    {
        var collection = new X509Certificate2Collection();
        try
        {
            collection.ImportFromPemFile(path);
        }
        catch (System.Security.Cryptography.CryptographicException ex)
        {
            throw new MqttException($"MQTT CA file '{path}' is not a PEM certificate: {ex.Message}", ex);
        }

        return collection.Count > 0 ? collection : throw new MqttException($"MQTT CA file '{path}' holds no certificate");
    }

    private static X509Certificate2 LoadClientCertificate(string certificate, string key)
    {
        try
        {
            return X509Certificate2.CreateFromPemFile(certificate, key);
        }
        catch (System.Security.Cryptography.CryptographicException ex)
        {
            throw new MqttException($"MQTT client certificate '{certificate}' with key '{key}' cannot be used: {ex.Message}", ex);
        }
    }

    private static MqttQualityOfServiceLevel Qos(int qos) => qos switch
    {
        0 => MqttQualityOfServiceLevel.AtMostOnce,
        1 => MqttQualityOfServiceLevel.AtLeastOnce,
        _ => throw new ArgumentOutOfRangeException(nameof(qos), qos, "QoS 0 or 1"),
    };

    /// <summary>"BadUserNameOrPassword" → "bad user name or password".</summary>
    private static string Words(string name)
    {
        var text = new StringBuilder(name.Length + 8);
        foreach (var c in name)
        {
            if (char.IsUpper(c) && text.Length > 0 && !char.IsUpper(text[^1]))
            {
                text.Append(' ');
            }

            text.Append(char.ToLowerInvariant(c));
        }

        return text.ToString();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed != 0, this);

    private static TaskCompletionSource<string?> NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
