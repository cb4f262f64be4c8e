using System.Diagnostics;
using System.Globalization;
using System.Text;
using ConfigSpec.Aggregator.Ingest;
using ConfigSpec.Fleet;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Profiling.Measurement;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Transport.Mqtt;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ConfigSpec.Aggregator.Bench;

/// <summary>Settings of the ingest benchmark.</summary>
/// <param name="Rate">Metrics per device per second; 0 = as fast as the broker acknowledges.</param>
public sealed record IngestBenchOptions(Uri Broker, int Devices, int Connections, TimeSpan Duration, int BoardModels, string Database, double Rate = 0);

/// <summary>
/// Ingest benchmark: an aggregator in this process and <c>Devices</c> simulated boards over <c>Connections</c> MQTT
/// connections on the given broker. Every board announces itself (status, a two-draft profile, a configuration), then
/// all publish metrics at QoS 1 as fast as the broker acknowledges, while the API is queried in a loop. Prints the
/// sustained storage rate, the backlog left, and API latency under that load.
/// </summary>
public static class IngestBench
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static async Task RunAsync(IngestBenchOptions o, TextWriter output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(output);
        await using var app = AggregatorApp.Build(new AggregatorOptions
        {
            Broker = new MqttClientOptions { Broker = o.Broker, ClientId = "bench-aggregator-" + Guid.NewGuid().ToString("N")[..6] },
            Database = o.Database,
            Http = "http://127.0.0.1:0",
        }, logging => logging.SetMinimumLevel(LogLevel.Error));
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var state = app.Services.GetRequiredService<FleetState>();
        var url = AggregatorApp.Address(app).TrimEnd('/');
        await Task.Delay(500, cancellationToken).ConfigureAwait(false);

        var clients = new List<MqttClient>();
        try
        {
            for (var i = 0; i < o.Connections; i++)
            {
                var client = new MqttClient(new MqttClientOptions { Broker = o.Broker, ClientId = $"bench-boards-{i}" });
                clients.Add(client);
                await client.ConnectAsync(cancellationToken).ConfigureAwait(false);
            }

            var run = Guid.NewGuid().ToString("N")[..6]; // fresh ids: a reused database must not see these as repeats
            var devices = Enumerable.Range(0, o.Devices).Select(i => $"sim-{run}-{i:D5}").ToList();
            var seqs = new long[o.Devices];
            var now = DateTimeOffset.UtcNow;
            var announce = Stopwatch.StartNew();
            await ForEachDeviceAsync(devices, clients, async (client, index, id) =>
            {
                var board = $"Simulated Board {index % o.BoardModels}";
                await client.PublishAsync(FleetTopics.Status(id), Encoding.UTF8.GetBytes(FleetMessages.Status(id, ++seqs[index], now,
                    new StatusMessage(BoardState.Serving, board, id, "bench", "goodput", null))), 1, true, null, cancellationToken).ConfigureAwait(false);
                await client.PublishAsync(FleetTopics.Profile(id), Encoding.UTF8.GetBytes(FleetMessages.Profile(id, ++seqs[index], now,
                    SimulatedProfile(id, board, index))), 1, true, null, cancellationToken).ConfigureAwait(false);
            }).ConfigureAwait(false);
            var announced = 2L * o.Devices;
            await WaitStoredAsync(state, announced, TimeSpan.FromSeconds(120), cancellationToken).ConfigureAwait(false);
            output.WriteLine(string.Create(C, $"announce: {o.Devices} devices (status + profile each) stored in {announce.Elapsed.TotalSeconds:0.00} s ({announced / announce.Elapsed.TotalSeconds:0} messages/s)"));

            // Load: metrics from every device, QoS 1, as fast as acknowledged; the API queried meanwhile.
            var baseline = state.Stored;
            var published = 0L;
            var unacknowledged = 0L;
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            stop.CancelAfter(o.Duration);
            var clock = Stopwatch.StartNew();
            var publishers = clients.Select((client, c) => Task.Run(async () =>
            {
                var mine = Enumerable.Range(0, o.Devices).Where(i => i % clients.Count == c).ToList();
                var inFlight = new List<Task>(64);
                var tick = o.Rate > 0 ? TimeSpan.FromSeconds(1 / o.Rate) : TimeSpan.Zero;
                var next = Stopwatch.GetTimestamp();
                while (!stop.IsCancellationRequested)
                {
                    if (tick > TimeSpan.Zero)
                    {
                        next += (long)(tick.TotalSeconds * Stopwatch.Frequency);
                        var wait = TimeSpan.FromSeconds((next - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency);
                        if (wait > TimeSpan.Zero)
                        {
                            try
                            {
                                await Task.Delay(wait, stop.Token).ConfigureAwait(false);
                            }
                            catch (OperationCanceledException)
                            {
                                break;
                            }
                        }
                    }

                    foreach (var i in mine)
                    {
                        var id = devices[i];
                        var payload = Encoding.UTF8.GetBytes(FleetMessages.Metrics(id, Interlocked.Increment(ref seqs[i]), DateTimeOffset.UtcNow,
                            new MetricsMessage(1, 1, 50, 40 + (i % 10), 0.8, 3.2, 4, 5, 0.02, true)));
                        inFlight.Add(client.PublishAsync(FleetTopics.Metrics(id), payload, 1, false, null, CancellationToken.None));
                        if (inFlight.Count == 64)
                        {
                            await SettleAsync(inFlight).ConfigureAwait(false);
                        }

                        if (stop.IsCancellationRequested)
                        {
                            break;
                        }
                    }
                }

                await SettleAsync(inFlight).ConfigureAwait(false);
            }, CancellationToken.None)).ToList();

            // A saturated broker may not acknowledge in time: such a publish is counted as not offered, and the load goes on.
            async Task SettleAsync(List<Task> batch)
            {
                try
                {
                    await Task.WhenAll(batch).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is TimeoutException or MqttException or OperationCanceledException)
                {
                }

                var acknowledged = batch.Count(t => t.IsCompletedSuccessfully);
                Interlocked.Add(ref published, acknowledged);
                Interlocked.Add(ref unacknowledged, batch.Count - acknowledged);
                batch.Clear();
            }

            var latencies = new Dictionary<string, List<double>>(StringComparer.Ordinal) { ["/api/devices"] = [], ["/api/rankings?objective=goodput"] = [], ["/api/health"] = [] };
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            var apiFailures = 0;
            while (!stop.IsCancellationRequested)
            {
                foreach (var (path, list) in latencies)
                {
                    var t = Stopwatch.GetTimestamp();
                    try
                    {
                        using var response = await http.GetAsync(new Uri(url + path), CancellationToken.None).ConfigureAwait(false);
                        _ = await response.Content.ReadAsByteArrayAsync(CancellationToken.None).ConfigureAwait(false);
                        list.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                    }
                    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                    {
                        apiFailures++; // over the client's 30 s, or refused: reported, the load goes on
                    }
                }
            }

            await Task.WhenAll(publishers).ConfigureAwait(false);
            var seconds = clock.Elapsed.TotalSeconds;
            var storedDuringLoad = state.Stored - baseline;
            var offered = Interlocked.Read(ref published);
            var mode = o.Rate > 0 ? string.Create(C, $"{o.Rate:0.###} metrics/s per device") : "as fast as acknowledged";
            output.WriteLine(string.Create(C, $"load ({mode}): {o.Devices} devices over {o.Connections} connections for {seconds:0.0} s: {offered} metrics acknowledged by the broker ({offered / seconds:0} messages/s offered){(Interlocked.Read(ref unacknowledged) is > 0 and var late ? string.Create(C, $", {late} not acknowledged in time (not counted)") : string.Empty)}"));
            output.WriteLine(string.Create(C, $"ingest: {storedDuringLoad} stored during the load = {storedDuringLoad / seconds:0} messages/s sustained; backlog at the end {offered - storedDuringLoad}"));
            var drain = Stopwatch.StartNew();
            await WaitStoredAsync(state, baseline + offered, TimeSpan.FromSeconds(120), cancellationToken).ConfigureAwait(false);
            var missing = baseline + offered - state.Stored;
            output.WriteLine(missing <= 0
                ? string.Create(C, $"drain: the backlog was stored {drain.Elapsed.TotalSeconds:0.00} s after the load stopped; duplicates {state.Duplicates}, refused {state.Rejected}")
                : string.Create(C, $"drain: {missing} acknowledged messages never reached the aggregator ({drain.Elapsed.TotalSeconds:0} s after the load, nothing more came for 10 s; the broker drops QoS 1 messages past a subscriber's max_queued_messages); duplicates {state.Duplicates}, refused {state.Rejected}"));
            foreach (var (path, list) in latencies)
            {
                output.WriteLine(string.Create(C,
                    $"API under load {path}: {list.Count} requests, p50 {(list.Count > 0 ? Statistics.Percentile(list, 0.5) : double.NaN):0.0} ms, p95 {(list.Count > 0 ? Statistics.Percentile(list, 0.95) : double.NaN):0.0} ms, max {(list.Count > 0 ? list.Max() : double.NaN):0.0} ms"));
            }

            if (apiFailures > 0)
            {
                output.WriteLine(string.Create(C, $"API under load: {apiFailures} requests failed or took over 30 s"));
            }
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync().ConfigureAwait(false);
            }

            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static async Task ForEachDeviceAsync(List<string> devices, List<MqttClient> clients, Func<MqttClient, int, string, Task> work)
    {
        for (var start = 0; start < devices.Count; start += 256)
        {
            var batch = Enumerable.Range(start, Math.Min(256, devices.Count - start)).Select(i => work(clients[i % clients.Count], i, devices[i]));
            await Task.WhenAll(batch).ConfigureAwait(false);
        }
    }

    /// <summary>Until <paramref name="target"/> messages are stored, the time-out passes, or nothing more has been stored for 10 s
    /// (what a broker dropped never comes).</summary>
    private static async Task WaitStoredAsync(FleetState state, long target, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        var last = state.Stored;
        var progressed = DateTime.UtcNow;
        while (state.Stored < target && DateTime.UtcNow < deadline && DateTime.UtcNow - progressed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
            if (state.Stored != last)
            {
                (last, progressed) = (state.Stored, DateTime.UtcNow);
            }
        }
    }

    /// <summary>A plausible two-draft profile, varied per simulated device so the medians have something to do.</summary>
    private static BoardProfile SimulatedProfile(string id, string board, int index)
    {
        var scale = 0.8 + (index % 9 * 0.05);
        ConfigurationProfile Config(string draft, string quant, char sha, double speed, double baseAlpha) => new()
        {
            Draft = draft,
            Quant = quant,
            File = $"/var/lib/configspec/models/{draft}.gguf",
            FileBytes = 500_000_000,
            Sha256 = new string(sha, 64),
            LoadSeconds = 1.2,
            ResidentMegabytes = 600,
            Rounds = 300,
            Tokens = 2000,
            Prompts = 24,
            DraftTokensPerSecond = new Estimate(speed * scale, speed * scale * 0.97, speed * scale * 1.03, 300),
            MeanAccepted = new Estimate(baseAlpha * 6, baseAlpha * 5.8, baseAlpha * 6.2, 300),
            Converged = true,
            AcceptanceByPosition = [.. Enumerable.Range(0, 8).Select(k => (double?)Math.Max(0.1, baseAlpha - (0.02 * k)))],
            ReachedByPosition = [.. Enumerable.Range(0, 8).Select(k => 300L - (20 * k))],
            Verify = new VerifyTiming(8, 300, 0.06, 0.08, 0.02, 0.06, 8 / (speed * scale)),
            Power = new DraftPower(5 * scale, 100, 20, 300),
        };
        var now = DateTimeOffset.UtcNow;
        return new BoardProfile
        {
            Created = now,
            Updated = now,
            Device = new DeviceInfo(id, id, board, "Linux", "arm64", 4),
            Software = new SoftwareInfo("bench", "bench", ".NET"),
            Power = new PowerInfo("estimate:board=rpi5", "board", true, 3),
            Verifier = new VerifierInfo("mqtt", "bench-target", null),
            Settings = new ProfileSettings(8, 0.03, 0.95, 30, 400, 64, "built-in", 24),
            Configurations = [Config("draft-q8", "Q8_0", 'a', 20, 0.88), Config("draft-q4", "Q4_K_M", 'b', 32, 0.82)],
        };
    }
}
