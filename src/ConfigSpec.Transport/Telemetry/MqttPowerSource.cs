using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ConfigSpec.Telemetry;
using ConfigSpec.Transport.Mqtt;

namespace ConfigSpec.Transport.Telemetry;

/// <summary>
/// Wall power from a smart plug publishing telemetry over MQTT (Tasmota-style <c>tele/NAME/SENSOR</c> with
/// <c>{"ENERGY":{"Power":5.2}}</c>): <c>mqtt:broker=URL,topic=T,path=ENERGY.Power[,stale=30]</c>. Each message is
/// time-stamped on arrival; a read returns the latest value, and one older than <c>stale</c> seconds is refused.
/// </summary>
public sealed class MqttPowerSource : IPowerSource
{
    private readonly MqttClient _client;
    private readonly string[] _path;
    private readonly TimeSpan _stale;
    private readonly Task _loop;
    private readonly Lock _gate = new();
    private (double Time, double Watts)? _latest;
    private string? _lastProblem;

    private MqttPowerSource(string spec, MqttClient client, string topic, string path, TimeSpan stale)
    {
        Spec = spec;
        Topic = topic;
        _client = client;
        _path = path.Split('.', StringSplitOptions.RemoveEmptyEntries);
        _stale = stale;
        _loop = Task.Run(ReceiveAsync);
    }

    public string Spec { get; }

    public string Topic { get; }

    public PowerScope Scope => PowerScope.Wall;

    /// <summary>Payloads that could not be read, since start.</summary>
    public int BadMessages { get; private set; }

    /// <summary>Payloads received on the topic, since start (read or not).</summary>
    public int Received { get; private set; }

    /// <summary>Creates the source from its options (broker, topic, path, stale); connects and subscribes.</summary>
    public static IPowerSource Create(string spec, IReadOnlyDictionary<string, string> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var broker = options.GetValueOrDefault("broker") ?? throw new PowerSourceException($"{spec}: mqtt needs broker=mqtt://HOST[:PORT]");
        var topic = options.GetValueOrDefault("topic") ?? throw new PowerSourceException($"{spec}: mqtt needs topic=TOPIC (e.g. tele/plug1/SENSOR)");
        var path = options.GetValueOrDefault("path") ?? "ENERGY.Power";
        var stale = TimeSpan.FromSeconds(30);
        if (options.GetValueOrDefault("stale") is { } staleText)
        {
            stale = double.TryParse(staleText, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s > 0
                ? TimeSpan.FromSeconds(s)
                : throw new PowerSourceException($"{spec}: stale={staleText} is not a positive number of seconds");
        }

        MqttClient client;
        try
        {
            client = new MqttClient(new MqttClientOptions { Broker = MqttClientOptions.ParseBroker(broker, $"{spec}: broker"), ConnectTimeout = TimeSpan.FromSeconds(5) });
            client.ConnectAsync().GetAwaiter().GetResult();
            client.SubscribeAsync(topic, 0).GetAwaiter().GetResult();
        }
        catch (ConfigSpecException ex) when (ex is not PowerSourceException)
        {
            throw new PowerSourceException($"{spec}: {ex.Message}", ex);
        }

        return new MqttPowerSource(spec, client, topic, path, stale);
    }

    public PowerReading Read()
    {
        (double Time, double Watts)? latest;
        string? problem;
        lock (_gate)
        {
            latest = _latest;
            problem = _lastProblem;
        }

        var now = Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
        if (latest is not { } value)
        {
            throw new PowerSourceException($"{Spec}: no power reading on '{Topic}' yet{(problem is null ? string.Empty : $" (last message: {problem})")}");
        }

        if (now - value.Time > _stale.TotalSeconds)
        {
            throw new PowerSourceException($"{Spec}: the last reading on '{Topic}' is {now - value.Time:F0} s old (stale after {_stale.TotalSeconds:F0} s; lower the plug's telemetry period)");
        }

        return new PowerReading(now, value.Watts, [new RailPower("wall", value.Watts)]);
    }

    private async Task ReceiveAsync()
    {
        await foreach (var message in _client.Messages.ReadAllAsync().ConfigureAwait(false))
        {
            var arrival = Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
            try
            {
                using var document = JsonDocument.Parse(message.Payload);
                var element = document.RootElement;
                foreach (var step in _path)
                {
                    if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(step, out element))
                    {
                        throw new FormatException($"no '{string.Join('.', _path)}' in the payload");
                    }
                }

                if (element.ValueKind != JsonValueKind.Number || !element.TryGetDouble(out var watts) || watts < 0 || !double.IsFinite(watts))
                {
                    throw new FormatException($"'{string.Join('.', _path)}' is {element.GetRawText()}, not a non-negative number of watts");
                }

                lock (_gate)
                {
                    _latest = (arrival, watts);
                    _lastProblem = null;
                }
            }
#pragma warning disable CA1031 // a plug's payload is outside input: whatever it holds, the loop that keeps the reading fresh goes on
            catch (Exception ex) when (ex is not OutOfMemoryException)
#pragma warning restore CA1031
            {
                lock (_gate)
                {
                    BadMessages++;
                    _lastProblem = ex is JsonException ? "not JSON" : ex is FormatException ? ex.Message : $"unreadable payload ({ex.Message})";
                }
            }
            finally
            {
                lock (_gate)
                {
                    Received++;
                }
            }
        }
    }

    public void Dispose()
    {
        _client.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _loop.GetAwaiter().GetResult();
    }
}
