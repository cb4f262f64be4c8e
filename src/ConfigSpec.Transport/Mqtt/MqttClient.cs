using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Channels;

namespace ConfigSpec.Transport.Mqtt;

/// <summary>
/// An MQTT 5 client on libmosquitto. libmosquitto's network thread delivers messages into
/// <see cref="Messages"/>, reconnects with exponential backoff, and this client resubscribes every
/// subscription after each reconnect. QoS 1 publishes and subscriptions complete on the broker's ack.
/// </summary>
public sealed partial class MqttClient : IAsyncDisposable
{
    private static readonly Lock InitGate = new();
    private static bool _libraryInitialised;

    private readonly MqttClientOptions _options;
    private readonly Lock _gate = new();
    private readonly Channel<MqttMessage> _messages = Channel.CreateUnbounded<MqttMessage>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly ConcurrentDictionary<int, TaskCompletionSource<int>> _pending = new();
    private readonly ConcurrentDictionary<string, int> _subscriptions = new(StringComparer.Ordinal);
    private readonly GCHandle _self;
    private TaskCompletionSource<int> _connected = NewSignal();
    private nint _mosq;
    private volatile bool _isConnected;
    private bool _started;
    private int _disposed;

    public MqttClient(MqttClientOptions options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
        InitialiseLibrary();
        _self = GCHandle.Alloc(this);
        _mosq = MosquittoNative.mosquitto_new(options.ClientId, options.CleanStart && !options.PersistentSession, GCHandle.ToIntPtr(_self));
        if (_mosq == 0)
        {
            _self.Free();
            throw new MqttException($"libmosquitto could not create a client '{options.ClientId}'");
        }

        Check(MosquittoNative.mosquitto_int_option(_mosq, MosquittoNative.ProtocolVersionOption,
            options.PersistentSession ? MosquittoNative.ProtocolV311 : MosquittoNative.ProtocolV5), "select the MQTT version");
        // Small request/response messages: without this, Nagle's algorithm and delayed ACKs add ~40 ms per hop.
        Check(MosquittoNative.mosquitto_int_option(_mosq, MosquittoNative.TcpNoDelayOption, 1), "disable Nagle's algorithm");
        if (options.Username is not null)
        {
            Check(MosquittoNative.mosquitto_username_pw_set(_mosq, options.Username, options.Password), "set credentials");
        }

        if (options.UseTls && options.CaFile is null && options.CertificateFile is null)
        {
            Check(MosquittoNative.mosquitto_int_option(_mosq, MosquittoNative.TlsUseOsCertsOption, 1), "use the system's CA certificates");
        }
        else if (options.UseTls)
        {
            Check(MosquittoNative.mosquitto_tls_set(_mosq, options.CaFile, null, options.CertificateFile, options.KeyFile, 0), "configure TLS");
        }

        if (options.LastWill is { } will)
        {
            Check(MosquittoNative.mosquitto_will_set_v5(_mosq, will.Topic, will.Payload.Length, will.Payload, will.Qos, will.Retain, 0), "set the last will");
        }

        Check(MosquittoNative.mosquitto_reconnect_delay_set(_mosq, (uint)Math.Max(1, options.ReconnectDelay.TotalSeconds),
            (uint)Math.Max(1, options.ReconnectDelayMax.TotalSeconds), true), "set reconnect delays");
        RegisterCallbacks(_mosq);
    }

    /// <summary>Every message received on this client's subscriptions, in arrival order.</summary>
    public ChannelReader<MqttMessage> Messages => _messages.Reader;

    public bool IsConnected => _isConnected;

    public string ClientId => _options.ClientId;

    /// <summary>Raised on libmosquitto's thread when the connection comes up (true) or goes down (false).</summary>
    public event Action<bool>? ConnectionChanged;

    /// <summary>Starts the network thread and waits for the first CONNACK (the thread keeps retrying until then).</summary>
    public async Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            if (!_started)
            {
                var rc = MosquittoNative.mosquitto_connect_async(_mosq, _options.Broker.Host, _options.Port, _options.KeepAliveSeconds);
                // A refused first attempt is retried by the network thread; only argument errors are fatal.
                if (rc is 3 or 1)
                {
                    Check(rc, $"connect to {_options.Broker}");
                }

                Check(MosquittoNative.mosquitto_loop_start(_mosq), "start the network thread");
                _started = true;
            }
        }

        await WaitConnectedAsync(_options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Waits until the client is connected (after a reconnect, for instance).</summary>
    public async Task WaitConnectedAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var signal = _connected;
        if (_isConnected)
        {
            return;
        }

        try
        {
            var reason = await signal.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            if (reason != 0)
            {
                throw new MqttException($"broker {_options.Broker} refused the connection: {MosquittoNative.Reason(reason)}");
            }
        }
        catch (TimeoutException)
        {
            throw new MqttException($"no connection to broker {_options.Broker} within {timeout.TotalSeconds:0.#} s (is it running and reachable?)");
        }
    }

    public async Task SubscribeAsync(string filter, int qos = 1, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(filter);
        _subscriptions[filter] = qos;
        var ack = Send((nint m, out int mid) => MosquittoNative.mosquitto_subscribe_v5(m, out mid, filter, qos, 0, 0), $"subscribe to '{filter}'");
        var granted = await ack.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        if (granted >= 0x80)
        {
            throw new MqttException($"broker refused the subscription '{filter}': {MosquittoNative.Reason(granted)}");
        }
    }

    public Task UnsubscribeAsync(string filter, CancellationToken cancellationToken = default)
    {
        _subscriptions.TryRemove(filter, out _);
        lock (_gate)
        {
            ThrowIfDisposed();
            Check(MosquittoNative.mosquitto_unsubscribe_v5(_mosq, out _, filter, 0), $"unsubscribe from '{filter}'");
        }

        return Task.CompletedTask;
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

        var ack = SendPublish(topic, payload, qos, retain, properties);
        if (qos > 0)
        {
            await ack.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        }
    }

    private Task<int> SendPublish(string topic, ReadOnlyMemory<byte> payload, int qos, bool retain, MqttPublishProperties? properties)
    {
        var props = properties is null ? 0 : BuildProperties(properties);
        try
        {
            return Send((nint m, out int mid) => MosquittoNative.mosquitto_publish_v5(m, out mid, topic, payload.Length, payload.Span, qos, retain, props),
                $"publish to '{topic}'", qos > 0);
        }
        finally
        {
            if (props != 0)
            {
                MosquittoNative.mosquitto_property_free_all(ref props);
            }
        }
    }

    public Task PublishAsync(string topic, string payload, int qos = 0, bool retain = false, CancellationToken cancellationToken = default) =>
        PublishAsync(topic, Encoding.UTF8.GetBytes(payload), qos, retain, null, cancellationToken);

    private delegate int NativeSend(nint mosq, out int mid);

    private Task<int> Send(NativeSend call, string what, bool awaitAck = true)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            var rc = call(_mosq, out var mid);
            if (rc == 4)
            {
                throw new MqttException($"cannot {what}: not connected to broker {_options.Broker}");
            }

            Check(rc, what);
            if (!awaitAck)
            {
                return Task.FromResult(0);
            }

            // Callbacks take this lock too, so the ack cannot be seen before it is registered.
            var signal = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            _pending[mid] = signal;
            return signal.Task;
        }
    }

    private static nint BuildProperties(MqttPublishProperties properties)
    {
        nint list = 0;
        var rc = 0;
        if (properties.ResponseTopic is { } responseTopic)
        {
            rc |= MosquittoNative.mosquitto_property_add_string(ref list, MosquittoNative.PropertyResponseTopic, responseTopic);
        }

        if (properties.CorrelationData is { } correlation)
        {
            if (correlation.Length > ushort.MaxValue)
            {
                throw new ArgumentException("correlation data longer than 65535 bytes", nameof(properties));
            }

            rc |= MosquittoNative.mosquitto_property_add_binary(ref list, MosquittoNative.PropertyCorrelationData, correlation, (ushort)correlation.Length);
        }

        if (properties.MessageExpirySeconds is { } expiry)
        {
            rc |= MosquittoNative.mosquitto_property_add_int32(ref list, MosquittoNative.PropertyMessageExpiry, expiry);
        }

        if (rc != 0)
        {
            MosquittoNative.mosquitto_property_free_all(ref list);
            throw new MqttException($"could not build MQTT 5 properties: {MosquittoNative.Error(rc)}");
        }

        return list;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        nint mosq;
        lock (_gate)
        {
            mosq = _mosq;
            _mosq = 0;
        }

        if (_started)
        {
            _ = MosquittoNative.mosquitto_disconnect_v5(mosq, 0, 0); // NO_CONN when already down is fine
            // Joining the network thread can block briefly; keep it off the caller's context.
            await Task.Run(() => MosquittoNative.mosquitto_loop_stop(mosq, false)).ConfigureAwait(false);
        }

        MosquittoNative.mosquitto_destroy(mosq);
        _self.Free();
        _messages.Writer.TryComplete();
        foreach (var pending in _pending.Values)
        {
            pending.TrySetException(new MqttException("client closed"));
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed != 0 || _mosq == 0, this);

    private void Check(int rc, string what)
    {
        if (rc != 0)
        {
            throw new MqttException($"MQTT client '{_options.ClientId}' could not {what}: {MosquittoNative.Error(rc)}");
        }
    }

    private static void InitialiseLibrary()
    {
        lock (InitGate)
        {
            if (!_libraryInitialised)
            {
                MosquittoNative.EnsureLoaded();
                var rc = MosquittoNative.mosquitto_lib_init();
                if (rc != 0)
                {
                    throw new MqttException($"libmosquitto failed to initialise: {MosquittoNative.Error(rc)}");
                }

                _libraryInitialised = true;
            }
        }
    }

    private static TaskCompletionSource<int> NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static MqttClient? From(nint obj) => obj == 0 ? null : GCHandle.FromIntPtr(obj).Target as MqttClient;
}
