using System.Text;
using System.Text.Json;
using ConfigSpec.Aggregator.Storage;
using ConfigSpec.Fleet;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;
using Microsoft.Data.Sqlite;

namespace ConfigSpec.Tests.Fleet;

/// <summary>Faults from the issue: a daemon killed while profiling, the broker away while publishing, an aggregator restart, a flood of bad messages.</summary>
public sealed class FleetFaultTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(180);

    [Fact]
    public async Task A_daemon_killed_while_profiling_resumes_with_its_state_intact()
    {
        using var broker = new MosquittoBroker();
        using var verifier = new VerifierProcess("fault-verifier", broker.Uri);
        await verifier.WaitForOutputAsync("serving target", TimeSpan.FromSeconds(60));
        var dir = TestEnvironment.NewTemporaryDirectory();
        var config = FleetHarness.DaemonConfig(dir, "pi-kill", broker.Uri, "Raspberry Pi 4 Model B", ["stories260K-Q8_0.gguf", "stories260K-Q4_0.gguf", "stories260K-Q4_K_M.gguf"],
            MosquittoBroker.FreePort(), adopt: false);
        var profilePath = Path.Combine(dir, "state", "profile.json");
        ConfigurationProfile first;
        using (var daemon = FleetHarness.StartDaemon(config))
        {
            // Kill as soon as the first configuration is checkpointed, while the second is being measured.
            var saved = await FleetHarness.EventuallyAsync(() => Task.FromResult(File.Exists(profilePath) ? ProfileJson.Load(profilePath) : null),
                p => p is { Configurations.Count: >= 1 }, Long, "the first configuration checkpointed");
            daemon.KillHard();
            Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(10)));
            Assert.True(saved!.Configurations.Count < 3, "profiling finished before the kill; the test needs a kill in the middle");
        }

        var intact = ProfileJson.Load(profilePath); // parses: written atomically
        first = intact.Configurations[0];
        // A kill can land inside a checkpoint's write (its temporary left beside the profile): the restart removes it.
        File.WriteAllText($"{profilePath}.{int.MaxValue}.tmp", "{\"torn");
        using (var restarted = FleetHarness.StartDaemon(config))
        {
            await restarted.WaitForOutputAsync("serving ", Long);
            // Only the running daemon's own temporaries (a write in progress) may be there; none of a dead writer's.
            var own = $".{restarted.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)}.tmp";
            Assert.DoesNotContain(Directory.GetFiles(Path.Combine(dir, "state"), "*.tmp"), f => !f.EndsWith(own, StringComparison.Ordinal));
            Assert.Contains("already in the profile, kept", restarted.Log, StringComparison.Ordinal);
            var done = ProfileJson.Load(profilePath);
            Assert.Equal(3, done.Configurations.Count);
            var again = done.Configurations.Single(c => c.Sha256 == first.Sha256);
            Assert.Equal(first.Rounds, again.Rounds);
            Assert.Equal(first.DraftTokensPerSecond, again.DraftTokensPerSecond);
            restarted.Terminate();
            Assert.True(restarted.WaitForExit(TimeSpan.FromSeconds(30)));
            Assert.Equal(0, restarted.ExitCode);
        }
    }

    [Fact]
    public async Task Metrics_written_while_the_broker_is_away_all_arrive_and_are_stored_once_across_an_aggregator_restart()
    {
        // A broker with persistence, as in production: the aggregator's session outlives the broker's restart, so what
        // the board sends before the aggregator is back is queued for it.
        using var broker = new MosquittoBroker(persistence: true, logConnections: true);
        void NothingLost() => Assert.DoesNotContain(broker.Log, l => l.Contains("Error", StringComparison.Ordinal)); // e.g. saving its state
        using var verifier = new VerifierProcess("outage-verifier", broker.Uri);
        await verifier.WaitForOutputAsync("serving target", TimeSpan.FromSeconds(60));
        var db = Path.Combine(TestEnvironment.NewTemporaryDirectory(), "fleet.db");
        var (aggregator, url) = await FleetHarness.StartAggregatorAsync(broker.Uri, db, "outage-aggregator");
        using var http = new HttpClient();
        var dir = TestEnvironment.NewTemporaryDirectory();
        using var daemon = FleetHarness.StartDaemon(FleetHarness.DaemonConfig(dir, "pi-outage", broker.Uri, "Raspberry Pi 4 Model B", ["stories260K-Q8_0.gguf"],
            MosquittoBroker.FreePort(), adopt: false, metricsInterval: 0.25));
        await daemon.WaitForOutputAsync("serving ", Long);
        await Task.Delay(1000);

        broker.Stop(graceful: true);
        await Task.Delay(3000); // about a dozen metrics messages wait in the outbox
        var pending = Directory.GetFiles(Path.Combine(dir, "state", "outbox"), "*.msg").Length;
        Assert.True(pending >= 5, $"only {pending} messages waited in the outbox");
        broker.Start();
        NothingLost();

        // Metrics keep flowing; every sequence number from the first stored to the last is there, each once.
        await FleetHarness.EventuallyAsync(() => Task.FromResult(Directory.GetFiles(Path.Combine(dir, "state", "outbox"), "*.msg").Length),
            n => n == 0, TimeSpan.FromSeconds(60), "the outbox drained");
        await Task.Delay(1000);
        await aggregator.StopAsync();
        await aggregator.DisposeAsync();

        var rows = MetricsSequence(db, "pi-outage").Rows;
        AssertContiguousOnce(db, "pi-outage");

        // While the aggregator is away the broker keeps its session and queues what the board publishes;
        // the restarted aggregator has everything it stored and receives what it missed.
        await Task.Delay(2000);
        (aggregator, url) = await FleetHarness.StartAggregatorAsync(broker.Uri, db, "outage-aggregator");
        await using (aggregator)
        {
            var devices = await FleetHarness.GetJsonAsync(http, url + "api/devices");
            Assert.Equal("pi-outage", devices.GetProperty("devices")[0].GetProperty("id").GetString());
            await FleetHarness.EventuallyAsync(() => Task.FromResult(MetricsSequence(db, "pi-outage").Rows), n => n > rows + 8, TimeSpan.FromSeconds(20), "new metrics after the restart");
            AssertContiguousOnce(db, "pi-outage");
            var health = await FleetHarness.GetJsonAsync(http, url + "api/health");
            Assert.Equal(0, health.GetProperty("rejected").GetInt64());
            await aggregator.StopAsync();
        }

        daemon.Terminate();
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task A_flood_of_malformed_messages_is_counted_and_the_good_ones_are_still_stored()
    {
        using var broker = new MosquittoBroker();
        var (aggregator, url) = await FleetHarness.StartAggregatorAsync(broker.Uri, Path.Combine(TestEnvironment.NewTemporaryDirectory(), "fleet.db"));
        await using var _ = aggregator;
        using var http = new HttpClient();
        await using var client = new MqttClient(new MqttClientOptions { Broker = broker.Uri });
        await client.ConnectAsync();
        await Task.Delay(500); // the aggregator's subscriptions are in place
        const int Bad = 3000;
        var t = DateTimeOffset.UtcNow;
        for (var i = 0; i < Bad; i++)
        {
            var device = $"d{i % 50}";
            var payload = (i % 4) switch
            {
                0 => "{{{" + i,
                1 => FleetMessages.Status("someone-else", i + 1, t, new StatusMessage(BoardState.Serving, "B", "h", "1", null, null)),
                2 => FleetMessages.Metrics(device, i + 1, t, new MetricsMessage(1, 1, 1, 1, 0.5, 1, 2, null, null, false)).Replace("\"version\":1", "\"version\":3", StringComparison.Ordinal),
                _ => FleetMessages.Metrics(device, i + 1, t, new MetricsMessage(1, 1, 1, 1, 0.5, 1, 2, null, null, false)).Replace("\"k\":2", "\"k\":-4", StringComparison.Ordinal),
            };
            await client.PublishAsync(i % 4 == 1 ? FleetTopics.Status(device) : FleetTopics.Metrics(device), Encoding.UTF8.GetBytes(payload), 0);
            if (i % 100 == 0)
            {
                await client.PublishAsync(FleetTopics.Status("good-" + i), FleetMessages.Status("good-" + i, 1, t, new StatusMessage(BoardState.Serving, "B", "h", "1", null, null)), 1);
            }
        }

        var health = await FleetHarness.EventuallyAsync(() => FleetHarness.GetJsonAsync(http, url + "api/health"),
            h => h.GetProperty("rejected").GetInt64() + h.GetProperty("stored").GetInt64() >= Bad + 30, TimeSpan.FromSeconds(60), "every message handled");
        Assert.Equal(Bad, health.GetProperty("rejected").GetInt64());
        var reasons = health.GetProperty("rejected_by_reason");
        Assert.Equal(Bad / 4, reasons.GetProperty("malformed_json").GetInt64());
        Assert.Equal(Bad / 4, reasons.GetProperty("device_mismatch").GetInt64());
        Assert.Equal(Bad / 4, reasons.GetProperty("unsupported_version").GetInt64());
        Assert.Equal(Bad / 4, reasons.GetProperty("invalid_field").GetInt64());
        var devices = await FleetHarness.GetJsonAsync(http, url + "api/devices");
        Assert.Equal(30, devices.GetProperty("devices").GetArrayLength());
        Assert.All(devices.GetProperty("devices").EnumerateArray(), d => Assert.StartsWith("good-", d.GetProperty("id").GetString(), StringComparison.Ordinal));
        await aggregator.StopAsync();
    }

    /// <summary>
    /// Metrics stored once each, and none missing: the board's sequence numbers are shared by every message it sends
    /// (a status or configuration can fall between two metrics), so each number between the first and the last
    /// metrics must be in the store's ledger under some kind.
    /// </summary>
    private static void AssertContiguousOnce(string db, string device)
    {
        var (seqs, _) = MetricsSequence(db, device);
        Assert.Equal(seqs.Distinct().Count(), seqs.Count);
        var seen = Ledger(db, device);
        var missing = Enumerable.Range((int)seqs.Min(), (int)(seqs.Max() - seqs.Min() + 1)).Select(i => (long)i).Where(s => !seen.Contains(s)).ToList();
        Assert.True(missing.Count == 0, $"sequence numbers {string.Join(", ", missing)} were never stored (metrics {seqs.Min()}..{seqs.Max()})");
    }

    private static HashSet<long> Ledger(string db, string device) => [.. Sequences(db, "seen", device)];

    internal static (List<long> Seqs, int Rows) MetricsSequence(string db, string device)
    {
        var list = Sequences(db, "metrics", device);
        return (list, list.Count);
    }

    /// <summary>The sequence numbers a store's table holds for a device (read-only, unpooled: the aggregator may still have it open).</summary>
    private static List<long> Sequences(string db, string table, string device)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT seq FROM {table} WHERE device_id = $d";
        cmd.Parameters.AddWithValue("$d", device);
        using var r = cmd.ExecuteReader();
        var list = new List<long>();
        while (r.Read())
        {
            list.Add(r.GetInt64(0));
        }

        return list;
    }
}

/// <summary>The daemon's schedule and its own verifier-in-process mode (lab use), with the broker it publishes to.</summary>
public sealed class DaemonLifecycleTests
{
    [Fact]
    public async Task A_daemon_that_cannot_go_on_says_why_publishes_error_and_exits_for_a_restart()
    {
        using var broker = new MosquittoBroker();
        var dir = TestEnvironment.NewTemporaryDirectory();
        var corrupt = Path.Combine(dir, "corrupt-target.gguf");
        await File.WriteAllBytesAsync(corrupt, [.. "GGUF"u8, 3, 0, 0, 0, 1, 2, 3]);
        var config = FleetHarness.DaemonConfig(dir, "pi-broken", broker.Uri, "Raspberry Pi 4 Model B", ["stories260K-Q8_0.gguf"], MosquittoBroker.FreePort(),
            adopt: false, verifier: $"\"target\": \"{corrupt}\"");
        using var daemon = FleetHarness.StartDaemon(config);
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(60)), daemon.Log);
        Assert.Equal(1, daemon.ExitCode);
        Assert.Contains("cannot go on", daemon.Log, StringComparison.Ordinal);
        Assert.Contains("corrupt-target.gguf", daemon.Log, StringComparison.Ordinal);
        var status = await FleetHarness.FirstMessageAsync(broker.Uri, FleetTopics.Status("pi-broken"), TimeSpan.FromSeconds(10));
        using var doc = JsonDocument.Parse(status.Payload);
        Assert.Equal("error", doc.RootElement.GetProperty("state").GetString());
        Assert.Contains("corrupt-target.gguf", doc.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_scheduled_reprofile_runs_and_serving_resumes_with_a_fresh_profile()
    {
        using var broker = new MosquittoBroker();
        var dir = TestEnvironment.NewTemporaryDirectory();
        var config = FleetHarness.DaemonConfig(dir, "pi-sched", broker.Uri, "Raspberry Pi 4 Model B", ["stories260K-Q8_0.gguf"], MosquittoBroker.FreePort(),
            adopt: false, verifier: $"\"target\": \"{TestEnvironment.Model("stories260K.gguf")}\"",
            profile: "\"max_rounds\": 12, \"min_rounds\": 6, \"timing_rounds\": 1, \"tokens_per_prompt\": 16, \"idle_baseline\": \"0s\", \"reprofile_hours\": 0.0015");
        using var daemon = FleetHarness.StartDaemon(config);
        await daemon.WaitForOutputAsync("serving ", TimeSpan.FromSeconds(120));
        var first = ProfileJson.Load(Path.Combine(dir, "state", "profile.json")).Updated;
        await daemon.WaitForOutputAsync("re-profiling (scheduled)", TimeSpan.FromSeconds(60));
        await FleetHarness.EventuallyAsync(() => Task.FromResult(ProfileJson.Load(Path.Combine(dir, "state", "profile.json")).Updated),
            t => t > first, TimeSpan.FromSeconds(60), "a newer profile");
        await FleetHarness.EventuallyAsync(() => Task.FromResult(daemon.Log.Split("serving stories260K").Length - 1), n => n >= 2, TimeSpan.FromSeconds(60), "serving again");
        daemon.Terminate();
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(30)));
    }
}

public sealed class AggregatorCliTests
{
    [Theory]
    [InlineData("--http", "ftp://127.0.0.1:1", "--http 'ftp://127.0.0.1:1'")]
    [InlineData("--broker", "http://127.0.0.1:1", "--broker")]
    [InlineData("--db", "Host=127.0.0.1;Port=1;Username=x;Database=y;Timeout=2", "--db PostgreSQL 127.0.0.1:1/y: cannot open the database")]
    public async Task Bad_settings_exit_2_with_one_line_naming_the_setting(string option, string value, string mentions)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var db = Path.Combine(TestEnvironment.NewTemporaryDirectory(), "fleet.db");
        string[] args = option == "--db" ? [option, value] : ["--db", db, option, value];
        var code = await ConfigSpec.Aggregator.AggregatorApp.RunAsync(args, output, error);
        Assert.Equal(2, code);
        var line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("configspec-aggregator: error: ", line, StringComparison.Ordinal);
        Assert.Contains(mentions, line, StringComparison.Ordinal);
    }
}
