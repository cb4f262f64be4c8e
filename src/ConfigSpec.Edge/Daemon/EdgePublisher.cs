using System.Text;
using ConfigSpec.Fleet;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Fleet.Outbox;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Transport.Mqtt;

namespace ConfigSpec.Edge.Daemon;

/// <summary>
/// A board's MQTT presence: one client with the retained "offline" last will, and every publication of status,
/// profile, configuration and metrics going through the on-disk outbox at QoS 1.
/// </summary>
public sealed class EdgePublisher : IAsyncDisposable
{
    private readonly EdgeSettings _settings;
    private readonly string _board;
    private readonly string _software;

    public EdgePublisher(EdgeSettings settings, string board)
    {
        _settings = settings ?? throw new ArgumentNullException(nameof(settings));
        _board = board;
        _software = DeviceIdentity.Software().ConfigSpec;
        var will = FleetMessages.Status(settings.DeviceId, 0, DateTimeOffset.UtcNow,
            new StatusMessage(BoardState.Offline, board, Environment.MachineName, _software, null, "connection lost"));
        // A persistent MQTT 5 session: commands published at QoS 1 while the board is away wait on the broker.
        Client = new MqttClient(settings.Broker with
        {
            LastWill = new MqttLastWill(FleetTopics.Status(settings.DeviceId), Encoding.UTF8.GetBytes(will)),
            PersistentSession = true,
            SessionExpiry = settings.SessionExpiry,
        });
        Outbox = new Outbox(settings.OutboxDirectory, (m, ct) => Client.PublishAsync(m.Topic, m.Payload, 1, m.Retain, null, ct));
        Client.ConnectionChanged += up =>
        {
            if (up)
            {
                Outbox.Wake();
            }
        };
    }

    public MqttClient Client { get; }

    public Outbox Outbox { get; }

    public string Board => _board;

    /// <summary>State last published (for the HTTP status endpoint).</summary>
    public BoardState State { get; private set; } = BoardState.Starting;

    public string? Detail { get; private set; }

    /// <summary>Starts the network thread and the outbox; a broker that is away is retried in the background.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Outbox.Start();
        try
        {
            await Client.ConnectAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (MqttException)
        {
            // The network thread keeps trying; the outbox holds everything until it succeeds.
        }
    }

    /// <summary>Subscribes (QoS 1: queued for the board while it is away; QoS 0: only while it is connected).</summary>
    public async Task SubscribeAsync(string filter, int qos, CancellationToken cancellationToken)
    {
        try
        {
            await Client.SubscribeAsync(filter, qos, cancellationToken).ConfigureAwait(false);
        }
        catch (MqttException)
        {
            // Kept by the client and made again on (re)connect.
        }
    }

    public void Status(BoardState state, string? detail, string? objective)
    {
        State = state;
        Detail = detail;
        Outbox.Enqueue(FleetTopics.Status(_settings.DeviceId), true, seq => FleetMessages.Status(_settings.DeviceId, seq, DateTimeOffset.UtcNow,
            new StatusMessage(state, _board, Environment.MachineName, _software, objective, detail)));
    }

    public void Profile(BoardProfile profile) =>
        Outbox.Enqueue(FleetTopics.Profile(_settings.DeviceId), true, seq => FleetMessages.Profile(_settings.DeviceId, seq, DateTimeOffset.UtcNow, profile));

    public void Config(ServedConfig config) =>
        Outbox.Enqueue(FleetTopics.Config(_settings.DeviceId), true, seq => FleetMessages.Config(_settings.DeviceId, seq, DateTimeOffset.UtcNow, config));

    public void Metrics(MetricsMessage metrics) =>
        Outbox.Enqueue(FleetTopics.Metrics(_settings.DeviceId), false, seq => FleetMessages.Metrics(_settings.DeviceId, seq, DateTimeOffset.UtcNow, metrics));

    /// <summary>Home Assistant MQTT discovery: one retained sensor config per metric, reading the metrics topic.</summary>
    public void HomeAssistantDiscovery()
    {
        var id = _settings.DeviceId;
        foreach (var (key, name, unit, deviceClass) in new[]
        {
            ("goodput", "Goodput", "tokens/s", (string?)null),
            ("acceptance", "Draft acceptance", null, null),
            ("k", "Draft length K", null, null),
            ("watts", "Drafting power", "W", "power"),
            ("joules_per_token", "Energy per token", "J", null),
        })
        {
            var objectId = $"configspec_{id.Replace('-', '_').Replace('.', '_')}_{key}";
            var payload = Contract.Write(new DiscoverySensor(name, objectId, FleetTopics.Metrics(id), $"{{{{ value_json.{key} }}}}", "measurement",
                FleetTopics.Status(id), "{{ 'offline' if value_json.state == 'offline' else 'online' }}",
                new DiscoveryDevice(["configspec_" + id], "ConfigSpec " + id, _board, "ConfigSpec", _software), unit, deviceClass));
            Outbox.Enqueue($"homeassistant/sensor/{objectId}/config", true, _ => payload);
        }
    }

    /// <summary>
    /// Publishes "offline" (or "error" with <paramref name="failure"/>, which then stays retained for the fleet to see)
    /// and waits (up to <paramref name="drain"/>) for the outbox to empty.
    /// </summary>
    public async Task StopAsync(TimeSpan drain, string? objective, string? failure = null)
    {
        Status(failure is null ? BoardState.Offline : BoardState.Error, failure ?? "stopped", objective);
        await Outbox.DrainAsync(drain).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await Outbox.DisposeAsync().ConfigureAwait(false);
        await Client.DisposeAsync().ConfigureAwait(false);
    }
}
