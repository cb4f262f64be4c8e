using System.Text.Json;
using ConfigSpec.Fleet;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;
using Microsoft.Extensions.DependencyInjection;

namespace ConfigSpec.Tests.Fleet;

/// <summary>MQTT 5 sessions that outlive a restart: the aggregator's, and a board's command topic.</summary>
public sealed class SessionTests
{
    [Fact]
    public async Task An_aggregator_restarted_while_a_board_publishes_gets_every_message_over_its_mqtt5_session()
    {
        using var broker = new MosquittoBroker(logConnections: true);
        var db = Path.Combine(TestEnvironment.NewTemporaryDirectory(), "fleet.db");
        var (aggregator, url) = await FleetHarness.StartAggregatorAsync(broker.Uri, db, "session-aggregator");
        await using var board = new MqttClient(new MqttClientOptions { Broker = broker.Uri, ClientId = "session-board" });
        await board.ConnectAsync();
        var seq = 1L;
        // The aggregator subscribes as it starts: the board's status (sent again until stored) tells when it listens.
        using var http = new HttpClient();
        await FleetHarness.EventuallyAsync(async () =>
        {
            await board.PublishAsync(FleetTopics.Status("pi-s"), FleetMessages.Status("pi-s", 1, DateTimeOffset.UtcNow, new StatusMessage(BoardState.Serving, "Board", "h", "1", null, null)), 1);
            return (await FleetHarness.GetJsonAsync(http, url + "api/devices")).GetProperty("devices").GetArrayLength();
        }, n => n == 1, TimeSpan.FromSeconds(20), "the board's status stored");
        async Task PublishMetricsAsync(int count)
        {
            for (var i = 0; i < count; i++)
            {
                seq++;
                await board.PublishAsync(FleetTopics.Metrics("pi-s"),
                    FleetMessages.Metrics("pi-s", seq, DateTimeOffset.UtcNow, new MetricsMessage(1, 1, 8, 20, 0.8, 2.5, 4, null, null, false)), 1);
            }
        }

        await PublishMetricsAsync(50);
        await FleetHarness.EventuallyAsync(() => Task.FromResult(FleetFaultTests.MetricsSequence(db, "pi-s").Rows), n => n == 50, TimeSpan.FromSeconds(20), "the first 50 stored");
        Assert.False(aggregator.Services.GetRequiredService<MqttClient>().SessionPresent); // a new session the first time
        await aggregator.StopAsync();
        await aggregator.DisposeAsync();

        await PublishMetricsAsync(200); // the aggregator is away: the broker queues these in its session
        (aggregator, _) = await FleetHarness.StartAggregatorAsync(broker.Uri, db, "session-aggregator");
        await using (aggregator)
        {
            Assert.True(aggregator.Services.GetRequiredService<MqttClient>().SessionPresent);
            await PublishMetricsAsync(50);
            var seqs = await FleetHarness.EventuallyAsync(() => Task.FromResult(FleetFaultTests.MetricsSequence(db, "pi-s").Seqs), s => s.Count >= 300, TimeSpan.FromSeconds(30), "all 300 stored");
            Assert.Equal(Enumerable.Range(2, 300).Select(i => (long)i), seqs.Order());
            await aggregator.StopAsync();
        }

        // Both connections were MQTT 5 with clean start false (mosquitto logs "as ID (p5, c0, k30)").
        var connects = broker.Log.Where(l => l.Contains(" as session-aggregator (", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, connects.Count);
        Assert.All(connects, l => Assert.Contains("(p5, c0, k30", l, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_command_sent_while_the_daemon_is_down_is_applied_when_it_returns_and_a_stale_one_is_refused_with_the_reason()
    {
        using var broker = new MosquittoBroker(logConnections: true);
        var dir = TestEnvironment.NewTemporaryDirectory();
        var httpPort = MosquittoBroker.FreePort();
        var config = FleetHarness.DaemonConfig(dir, "pi-away", broker.Uri, "Raspberry Pi 5 Model B", ["stories260K-Q8_0.gguf", "stories260K-Q4_0.gguf"], httpPort,
            adopt: false, verifier: $"\"target\": \"{TestEnvironment.Model("stories260K.gguf")}\"",
            profile: "\"max_rounds\": 12, \"min_rounds\": 6, \"timing_rounds\": 1, \"tokens_per_prompt\": 16, \"idle_baseline\": \"0s\"");
        // The first run also reports to a systemd notify socket: READY, STATUS and WATCHDOG while it runs, STOPPING on SIGTERM.
        await using var notify = new NotifyListener(Path.Combine(dir, "notify.sock"));
        using (var first = FleetHarness.StartDaemon(config, new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path, ["WATCHDOG_USEC"] = "1000000" }))
        {
            await first.WaitForOutputAsync("serving ", TimeSpan.FromSeconds(120));
            await Task.Delay(1200); // a watchdog ping or two
            first.Terminate();
            Assert.True(first.WaitForExit(TimeSpan.FromSeconds(30)), first.Log);
            await Task.Delay(200);
            await notify.StopAsync();
            var seen = notify.Notes.ToList();
            Assert.Contains(seen, n => n.StartsWith("READY=1", StringComparison.Ordinal));
            Assert.Contains(seen, n => n.StartsWith("STATUS=serving", StringComparison.Ordinal));
            Assert.Contains("WATCHDOG=1", seen);
            var stopping = seen.FindIndex(n => n.StartsWith("STOPPING=1", StringComparison.Ordinal));
            Assert.True(stopping > seen.FindIndex(n => n.StartsWith("READY=1", StringComparison.Ordinal)), string.Join(" | ", seen));
        }

        await using var operatorClient = new MqttClient(new MqttClientOptions { Broker = broker.Uri, ClientId = "operator" });
        await operatorClient.ConnectAsync();
        await operatorClient.SubscribeAsync(FleetTopics.CommandResult("pi-away"), 1);
        var now = DateTimeOffset.UtcNow;
        await operatorClient.PublishAsync(FleetTopics.Command("pi-away"), FleetMessages.Command(new CommandMessage(FleetCommand.Apply, "stale", null, "stories260K-Q8_0", 1, now.AddHours(-2))), 1);
        await operatorClient.PublishAsync(FleetTopics.Command("pi-away"), FleetMessages.Command(new CommandMessage(FleetCommand.Apply, "while-away", null, "stories260K-Q4_0", 3, now)), 1);

        // Under journald (JOURNAL_STREAM set) the log is in the systemd format: a priority prefix, category and event id.
        using var second = FleetHarness.StartDaemon(config, new Dictionary<string, string> { ["JOURNAL_STREAM"] = "8:12345" });
        var results = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        while (results.Count < 2)
        {
            var m = await operatorClient.Messages.ReadAsync(cts.Token);
            using var doc = JsonDocument.Parse(m.Payload);
            results[doc.RootElement.GetProperty("id").GetString()!] = doc.RootElement.Clone();
        }

        var stale = results["stale"];
        Assert.False(stale.GetProperty("ok").GetBoolean());
        Assert.Contains("is 2 h old, over the 1 h limit (commands:max_age_s); not applied", stale.GetProperty("error").GetString(), StringComparison.Ordinal);
        var applied = results["while-away"];
        Assert.True(applied.GetProperty("ok").GetBoolean(), applied.ToString());
        Assert.Equal(3, applied.GetProperty("config").GetProperty("k").GetInt32());
        Assert.Contains("Q4_0", applied.GetProperty("config").GetProperty("draft").GetString(), StringComparison.Ordinal);
        Assert.Contains("<4>ConfigSpec.Edge.Daemon.EdgeDaemon[6] command apply refused: command issued at", second.Log, StringComparison.Ordinal);
        using var http = new HttpClient();
        var status = await FleetHarness.GetJsonAsync(http, $"http://127.0.0.1:{httpPort}/v1/status");
        Assert.True(status.GetProperty("broker_connected").GetBoolean());
        Assert.Equal(0, status.GetProperty("outbox_refused").GetInt64()); // everything the board published was taken
        Assert.Equal(System.Text.Json.JsonValueKind.Null, status.GetProperty("outbox_last_refusal").ValueKind);

        // The board's session is MQTT 5 with clean start false, so the broker kept its command subscription.
        var connects = broker.Log.Where(l => l.Contains(" as configspec-edge-pi-away (", StringComparison.Ordinal)).ToList();
        Assert.True(connects.Count >= 2, string.Join('\n', broker.Log));
        Assert.All(connects, l => Assert.Contains("(p5, c0,", l, StringComparison.Ordinal));
        second.Terminate();
        Assert.True(second.WaitForExit(TimeSpan.FromSeconds(30)));
    }
}
