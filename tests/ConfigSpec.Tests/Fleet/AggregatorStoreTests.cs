using System.Text;
using ConfigSpec.Aggregator.Ingest;
using ConfigSpec.Aggregator.Ranking;
using ConfigSpec.Aggregator.Storage;
using ConfigSpec.Fleet;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Tests.Profiling;
using ConfigSpec.Transport.Mqtt;
using Microsoft.Extensions.Logging.Abstractions;

namespace ConfigSpec.Tests.Fleet;

public sealed class AggregatorStoreTests
{
    private static readonly DateTimeOffset T = new(2026, 11, 22, 12, 0, 0, TimeSpan.Zero);

    private static MqttMessage Msg(string topic, string payload) => new(topic, Encoding.UTF8.GetBytes(payload), 1, false);

    private static BoardProfile ProfileOf(string device, string board, double speedScale = 1, bool power = true)
    {
        // Distinct file hashes (the fixture's are derived from a per-process string hash and may collide).
        var p = ProfileFixtures.Profile(
            ProfileFixtures.Configuration("qwen-0.5b", "Q8_0", [0.9, 0.88, 0.86, 0.85, 0.84, 0.83, 0.82, 0.8], 20 * speedScale, 0.05, watts: power ? 6 : null)
                with { Sha256 = new string('a', 64) },
            ProfileFixtures.Configuration("tiny-draft", "Q4_0", [0.5, 0.45, 0.4, 0.4, 0.35, 0.3, 0.3, 0.3], 120 * speedScale, 0.05, watts: power ? 4 : null)
                with { Sha256 = new string('b', 64) });
        return p with { Device = p.Device with { Id = device, Board = board } };
    }

    private static (FleetIngestor Ingestor, FleetStore Store, FleetState State, MqttClient Client) NewAggregator(string db, ListLogger? log = null)
    {
        var store = new FleetStore(db);
        var state = new FleetState();
        var client = new MqttClient(new MqttClientOptions { Broker = new Uri("mqtt://127.0.0.1:1") });
        return (new FleetIngestor(client, store, state, log is null ? NullLogger<FleetIngestor>.Instance : new TypedLogger(log)), store, state, client);
    }

    private sealed class TypedLogger(ListLogger inner) : Microsoft.Extensions.Logging.ILogger<FleetIngestor>
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception,
            Func<TState, Exception?, string> formatter) => inner.Log(logLevel, eventId, state, exception, formatter);
    }

    private static string NewSqlite() => Path.Combine(TestEnvironment.NewTemporaryDirectory(), "fleet.db");

    [Fact]
    public Task Each_message_is_stored_once_and_survives_a_restart() => StoredOnceAcrossRestart(NewSqlite());

    [Fact]
    public Task Older_messages_do_not_replace_newer_ones_and_the_last_will_marks_offline() => NewerWins(NewSqlite());

    [Fact]
    public Task Malformed_messages_are_counted_by_reason_and_never_stored() => MalformedCounted(NewSqlite());

    [Fact]
    public void A_database_from_a_newer_build_is_refused_and_a_bad_path_named()
    {
        var db = NewSqlite();
        using (var store = new FleetStore(db))
        {
            Assert.Equal(FleetStore.LatestSchemaVersion, store.SchemaVersion);
            Assert.Contains("SQLite", store.Description, StringComparison.Ordinal);
        }

        using (var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "INSERT INTO schema_version (version, applied) VALUES (99, 'later')";
            cmd.ExecuteNonQuery();
        }

        Assert.Contains("schema version 99", Assert.Throws<ConfigSpec.ConfigSpecException>(() => new FleetStore(db)).Message, StringComparison.Ordinal);
        var notADirectory = Path.Combine(NewSqlite(), "under-a-file.db");
        File.WriteAllText(Path.GetDirectoryName(notADirectory)!, "x");
        Assert.ThrowsAny<Exception>(() => new FleetStore(notADirectory));
    }

    [Fact]
    public async Task A_batch_the_database_refuses_for_a_while_is_retried_not_dropped()
    {
        var db = NewSqlite();
        var log = new ListLogger();
        var (ingestor, store, state, client) = NewAggregator(db, log);
        await using var _ = client;
        using var __ = store;
        var messages = Enumerable.Range(1, 20).Select(i => Msg(FleetTopics.Metrics("busy"),
            FleetMessages.Metrics("busy", i, T, new MetricsMessage(30, 1, 10, 5, 0.5, 1, 2, null, null, false)))).ToList();
        using (var locker = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db};Pooling=False"))
        {
            locker.Open();
            using var begin = locker.CreateCommand();
            begin.CommandText = "BEGIN EXCLUSIVE";
            begin.ExecuteNonQuery();
            // The writer's busy timeout is 5 s: the lock is held until the first attempt has failed (and said so), then a retry succeeds.
            // (Released on the log line, not after a fixed time: a loaded machine may start the attempt late.)
            var ingest = Task.Run(() => ingestor.ProcessWithRetryAsync(messages, CancellationToken.None));
            var until = DateTime.UtcNow.AddSeconds(60);
            while (!log.Entries.Any(e => e.Id.Id == 11) && DateTime.UtcNow < until)
            {
                await Task.Delay(50);
            }

            begin.CommandText = "ROLLBACK";
            begin.ExecuteNonQuery();
            await ingest;
        }

        Assert.Contains(log.Entries, e => e.Id.Id == 11); // the first attempt failed and was retried
        Assert.Equal(20, state.Stored);
        Assert.Equal(0, state.Failed);
        Assert.Equal(20, store.Metrics("busy").Count);
    }

    internal static async Task StoredOnceAcrossRestart(string db)
    {
        var (ingestor, store, state, client) = NewAggregator(db);
        var status = Msg(FleetTopics.Status("pi-a"), FleetMessages.Status("pi-a", 1, T, new StatusMessage(BoardState.Serving, "Raspberry Pi 5", "h", "1.0", "goodput", null)));
        var metrics = Msg(FleetTopics.Metrics("pi-a"), FleetMessages.Metrics("pi-a", 2, T, new MetricsMessage(30, 3, 90, 40, 0.8, 3, 4, 5, 0.02, false)));
        var profile = Msg(FleetTopics.Profile("pi-a"), FleetMessages.Profile("pi-a", 3, T, ProfileOf("pi-a", "Raspberry Pi 5")));
        ingestor.Process([status, metrics, profile]);
        ingestor.Process([metrics, profile]); // sent again after a crash: same sequence numbers
        Assert.Equal(3, state.Stored);
        Assert.Equal(2, state.Duplicates);
        var (tables, _, _) = store.Health();
        Assert.Equal(1, tables["metrics"]);
        Assert.Equal(1, tables["profiles"]);
        store.Dispose();
        await client.DisposeAsync();

        using var reopened = new FleetStore(db);
        Assert.Equal(FleetStore.LatestSchemaVersion, reopened.SchemaVersion);
        var device = Assert.Single(reopened.Devices());
        Assert.Equal(("pi-a", "serving", "Raspberry Pi 5"), (device.Id, device.State, device.Board));
        Assert.Single(reopened.Metrics("pi-a"));
        Assert.Equal("pi-a", Assert.Single(reopened.Profiles()).Profile.Device.Id);
    }

    internal static async Task NewerWins(string db)
    {
        var (ingestor, store, _, client) = NewAggregator(db);
        await using var _ = client;
        using var __ = store;
        ingestor.Process([Msg(FleetTopics.Status("d"), FleetMessages.Status("d", 5, T, new StatusMessage(BoardState.Serving, "B", "h", "1", null, "new")))]);
        ingestor.Process([Msg(FleetTopics.Status("d"), FleetMessages.Status("d", 4, T, new StatusMessage(BoardState.Profiling, "B", "h", "1", null, "old")))]);
        Assert.Equal("serving", store.Devices("d")[0].State);
        ingestor.Process([Msg(FleetTopics.Status("d"), FleetMessages.Status("d", 0, T, new StatusMessage(BoardState.Offline, "B", "h", "1", null, "connection lost")))]);
        Assert.Equal(("offline", "connection lost"), (store.Devices("d")[0].State, store.Devices("d")[0].Detail));
    }

    internal static async Task MalformedCounted(string db)
    {
        var (ingestor, store, state, client) = NewAggregator(db);
        await using var _ = client;
        using var __ = store;
        var good = Msg(FleetTopics.Status("ok"), FleetMessages.Status("ok", 1, T, new StatusMessage(BoardState.Serving, "B", "h", "1", null, null)));
        ingestor.Process([
            Msg(FleetTopics.Status("x"), "{oops"),
            Msg(FleetTopics.Status("x"), FleetMessages.Status("y", 1, T, new StatusMessage(BoardState.Serving, "B", "h", "1", null, null))),
            Msg(FleetTopics.Metrics("x"), FleetMessages.Status("x", 1, T, new StatusMessage(BoardState.Serving, "B", "h", "1", null, null))),
            Msg(FleetTopics.Status("x"), FleetMessages.Status("x", 1, T, new StatusMessage(BoardState.Serving, "B", "h", "1", null, null)).Replace("\"version\":1", "\"version\":9", StringComparison.Ordinal)),
            Msg(FleetTopics.Generate("x"), "{\"prompt\":\"hi\"}"),
            good,
        ]);
        Assert.Equal(4, state.Rejected);
        Assert.Equal(1, state.Ignored);
        var (tables, rejected, recent) = store.Health();
        Assert.Equal(1, rejected["malformed_json"]);
        Assert.Equal(1, rejected["device_mismatch"]);
        Assert.Equal(1, rejected["unknown_schema"]);
        Assert.Equal(1, rejected["unsupported_version"]);
        Assert.Equal(4, recent.Count);
        Assert.Equal("ok", Assert.Single(store.Devices()).Id);
        Assert.Equal(1, tables["devices"]);
    }

    [Fact]
    public void Rankings_take_the_median_over_devices_and_recommend_only_what_enough_devices_back()
    {
        var now = T;
        var profiles = new List<StoredProfile>
        {
            new("a", "Raspberry Pi 5", 1, ProfileOf("a", "Raspberry Pi 5", 1.0)),
            new("b", "Raspberry Pi 5", 1, ProfileOf("b", "Raspberry Pi 5", 1.2)),
            new("c", "Raspberry Pi 5", 1, ProfileOf("c", "Raspberry Pi 5", 5.0)), // an outlier: the median ignores it
            new("j", "Jetson Orin Nano", 1, ProfileOf("j", "Jetson Orin Nano", 3, power: false)),
        };
        var ranking = FleetRanker.Rank(profiles, now);
        var pi = ranking.Rows.Where(r => r.Board == "raspberry-pi-5" && r.Objective == "goodput").OrderBy(r => r.Rank).ToList();
        var top = pi[0];
        Assert.Equal(3, top.Devices);
        // The median of three devices is the middle one's own prediction.
        var middle = ConfigSpec.Profiling.Selection.Selector.Predict(profiles[1].Profile, new()).Single(c => c.Configuration.Sha256 == top.Sha256 && c.K == top.K);
        Assert.Equal(middle.Goodput, top.Value, 9);
        Assert.Equal(pi.Max(r => r.Value), top.Value);
        Assert.All(pi, r => Assert.True(r.Backed));
        var rec = ranking.Recommendations["raspberry-pi-5"];
        Assert.Equal((top.Sha256, top.K), (rec.Objectives["goodput"].Sha256, rec.Objectives["goodput"].K));
        Assert.True(rec.Objectives.ContainsKey("energy"));
        // No power on the Jetson: ranked for goodput and cost, never for energy.
        Assert.DoesNotContain(ranking.Rows, r => r.Board == "jetson-orin-nano" && r.Objective == "energy");
        Assert.False(ranking.Recommendations["jetson-orin-nano"].Objectives.ContainsKey("energy"));
        // The front is not empty and every goodput winner is on it.
        Assert.True(top.Pareto);
    }

    [Fact]
    public void A_configuration_only_one_device_of_many_has_is_ranked_but_not_recommended()
    {
        var odd = ProfileOf("d", "B");
        odd = odd with { Configurations = [odd.Configurations[0] with { Sha256 = new string('f', 64), Draft = "odd", DraftTokensPerSecond = new(1000, 990, 1010, 100) }] };
        var profiles = new List<StoredProfile> { new("a", "B", 1, ProfileOf("a", "B")), new("b", "B", 1, ProfileOf("b", "B")), new("c", "B", 1, ProfileOf("c", "B")), new("d", "B", 1, odd) };
        var ranking = FleetRanker.Rank(profiles, T);
        var oddRows = ranking.Rows.Where(r => r.Draft == "odd" && r.Objective == "goodput").ToList();
        Assert.NotEmpty(oddRows);
        Assert.All(oddRows, r => Assert.False(r.Backed));
        Assert.NotEqual("odd", ranking.Recommendations["b"].Objectives["goodput"].Draft);
    }
}
