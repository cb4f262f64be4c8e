using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using ConfigSpec.Fleet;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;
using Microsoft.AspNetCore.Builder;

namespace ConfigSpec.Tests.Fleet;

/// <summary>
/// A whole fleet on loopback: a real mosquitto, a real configspec-verifier with stories260K, the aggregator, and two
/// configspec-edge daemons standing for two boards of one model. Board A profiles; board B adopts the fleet's choice.
/// </summary>
public sealed class FleetFixture : IAsyncLifetime, IDisposable
{
    public const string Board = "Raspberry Pi 5 Model B";

    private NotifyListener? _notify;

    public MosquittoBroker Broker { get; } = new();

    public VerifierProcess? Verifier { get; private set; }

    public WebApplication? Aggregator { get; private set; }

    public string AggregatorUrl { get; private set; } = "";

    public ProductProcess? DaemonA { get; private set; }

    public ProductProcess? DaemonB { get; private set; }

    public string DirA { get; } = TestEnvironment.NewTemporaryDirectory();

    public string DirB { get; } = TestEnvironment.NewTemporaryDirectory();

    public int HttpA { get; } = MosquittoBroker.FreePort();

    public int HttpB { get; } = MosquittoBroker.FreePort();

    public ConcurrentQueue<string> Notifications => _notify!.Notes;

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    public async Task InitializeAsync()
    {
        Verifier = new VerifierProcess("fleet-verifier", Broker.Uri);
        await Verifier.WaitForOutputAsync("serving target", TimeSpan.FromSeconds(60));
        (Aggregator, AggregatorUrl) = await FleetHarness.StartAggregatorAsync(Broker.Uri, Path.Combine(TestEnvironment.NewTemporaryDirectory(), "fleet.db"));

        _notify = new NotifyListener(Path.Combine(TestEnvironment.NewTemporaryDirectory(), "notify.sock"));

        DaemonA = FleetHarness.StartDaemon(FleetHarness.DaemonConfig(DirA, "pi5-a", Broker.Uri, Board, ["stories260K-Q8_0.gguf", "stories260K-Q4_0.gguf"], HttpA,
            """, "home_assistant": true""", adopt: false), new Dictionary<string, string> { ["NOTIFY_SOCKET"] = _notify.Path, ["WATCHDOG_USEC"] = "2000000" });
        await WaitServingAsync("pi5-a", TimeSpan.FromSeconds(180));
        await FleetHarness.EventuallyAsync(() => FleetHarness.GetJsonAsync(Http, AggregatorUrl + "api/rankings"),
            r => r.GetProperty("boards").GetArrayLength() == 1 && r.GetProperty("boards")[0].GetProperty("recommendation").ValueKind == JsonValueKind.Object,
            TimeSpan.FromSeconds(30), "a fleet recommendation");
        DaemonB = FleetHarness.StartDaemon(FleetHarness.DaemonConfig(DirB, "pi5-b", Broker.Uri, Board, ["stories260K-Q8_0.gguf", "stories260K-Q4_0.gguf"], HttpB,
            """, "k_policy": "ucb-specstop" """));
        await WaitServingAsync("pi5-b", TimeSpan.FromSeconds(120));
    }

    public async Task<JsonElement> DeviceAsync(string id) =>
        (await FleetHarness.GetJsonAsync(Http, AggregatorUrl + "api/devices/" + id)).GetProperty("device");

    private Task<bool> WaitServingAsync(string id, TimeSpan timeout) => FleetHarness.EventuallyAsync(async () =>
    {
        var devices = await FleetHarness.GetJsonAsync(Http, AggregatorUrl + "api/devices");
        var d = devices.GetProperty("devices").EnumerateArray().FirstOrDefault(x => x.GetProperty("id").GetString() == id);
        var daemon = id == "pi5-a" ? DaemonA : DaemonB;
        if (daemon!.HasExited)
        {
            throw new InvalidOperationException($"{id} exited: {daemon.Log}");
        }

        return d.ValueKind == JsonValueKind.Object && d.GetProperty("state").GetString() == "serving" && d.GetProperty("config").ValueKind == JsonValueKind.Object;
    }, ok => ok, timeout, $"{id} serving");

    public async Task DisposeAsync()
    {
        if (_notify is not null)
        {
            await _notify.DisposeAsync();
        }

        DaemonA?.Dispose();
        DaemonB?.Dispose();
        if (Aggregator is not null)
        {
            await Aggregator.StopAsync();
            await Aggregator.DisposeAsync();
        }

        Verifier?.Dispose();
        Broker.Dispose();
        Dispose();
    }

    public void Dispose() => Http.Dispose();
}

public sealed class FleetEndToEndTests(FleetFixture fleet) : IClassFixture<FleetFixture>
{
    private string Daemon(string id) => $"http://127.0.0.1:{(id == "pi5-a" ? fleet.HttpA : fleet.HttpB)}/";

    [Fact]
    public async Task A_board_profiles_selects_and_publishes_and_the_aggregator_ranks_and_recommends()
    {
        var a = await fleet.DeviceAsync("pi5-a");
        var config = a.GetProperty("config");
        Assert.Equal("profile", config.GetProperty("source").GetString());
        Assert.Equal("goodput", config.GetProperty("objective").GetString());
        Assert.InRange(config.GetProperty("k").GetInt32(), 1, 4);
        Assert.True(File.Exists(Path.Combine(fleet.DirA, "state", "profile.json")));

        var detail = await FleetHarness.GetJsonAsync(fleet.Http, fleet.AggregatorUrl + "api/devices/pi5-a");
        Assert.Equal(2, detail.GetProperty("curves").GetArrayLength());
        Assert.All(detail.GetProperty("curves").EnumerateArray(), c => Assert.Equal(4, c.GetProperty("points").GetArrayLength()));
        Assert.True(detail.GetProperty("profile").GetProperty("power_estimated").GetBoolean());

        var rankings = await FleetHarness.GetJsonAsync(fleet.Http, fleet.AggregatorUrl + "api/rankings?objective=goodput");
        var board = rankings.GetProperty("boards")[0];
        Assert.Equal(FleetTopics.BoardKey(FleetFixture.Board), board.GetProperty("board").GetString());
        var best = board.GetProperty("rows")[0];
        Assert.Equal(8, board.GetProperty("rows").GetArrayLength()); // 2 drafts × K 1..4
        var rec = board.GetProperty("recommendation");
        Assert.Equal(best.GetProperty("sha256").GetString(), rec.GetProperty("sha256").GetString());
        // The board chose what the fleet ranks first (one profile: the same prediction).
        Assert.Equal(config.GetProperty("sha256").GetString(), rec.GetProperty("sha256").GetString());
        Assert.Equal(config.GetProperty("k").GetInt32(), rec.GetProperty("k").GetInt32());

        // The recommendation is retained on the broker for boards that start later.
        var retained = await FleetHarness.FirstMessageAsync(fleet.Broker.Uri, FleetTopics.Recommendation(FleetFixture.Board), TimeSpan.FromSeconds(10));
        Assert.True(retained.Retain);
        Assert.Equal(rec.GetProperty("k").GetInt32(), FleetMessages.ReadRecommendation(retained.Payload).Objectives["goodput"].K);

        var bad = await fleet.Http.GetAsync(new Uri(fleet.AggregatorUrl + "api/rankings?objective=speed"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("speed", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await fleet.Http.GetAsync(new Uri(fleet.AggregatorUrl + "api/devices/nobody"))).StatusCode);
    }

    [Fact]
    public async Task The_daemon_tells_systemd_it_is_ready_and_keeps_the_watchdog_fed()
    {
        var notes = await FleetHarness.EventuallyAsync(() => Task.FromResult(fleet.Notifications.ToArray()),
            n => n.Any(x => x.StartsWith("READY=1", StringComparison.Ordinal)) && n.Count(x => x == "WATCHDOG=1") >= 2, TimeSpan.FromSeconds(10), "READY and watchdog pings");
        Assert.Contains(notes, n => n.StartsWith("STATUS=serving", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_second_board_of_the_same_model_adopts_the_fleet_recommendation_without_profiling()
    {
        var b = await fleet.DeviceAsync("pi5-b");
        var config = b.GetProperty("config");
        Assert.Equal("fleet", config.GetProperty("source").GetString());
        var rec = (await FleetHarness.GetJsonAsync(fleet.Http, fleet.AggregatorUrl + "api/rankings")).GetProperty("boards")[0].GetProperty("recommendation");
        Assert.Equal(rec.GetProperty("sha256").GetString(), config.GetProperty("sha256").GetString());
        Assert.Equal(rec.GetProperty("k").GetInt32(), config.GetProperty("k").GetInt32());
        Assert.False(File.Exists(Path.Combine(fleet.DirB, "state", "profile.json")));
        Assert.DoesNotContain("profile needed: no profile yet\n[1/", fleet.DaemonB!.Log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Generation_over_http_streams_tokens_and_reports_acceptance()
    {
        using var plain = await FleetHarness.PostJsonAsync(fleet.Http, Daemon("pi5-a") + "v1/generate", """{"prompt": "Once upon a time", "max_tokens": 24}""");
        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        using var doc = JsonDocument.Parse(await plain.Content.ReadAsStringAsync());
        var r = doc.RootElement;
        Assert.Equal(24, r.GetProperty("tokens").GetInt32());
        Assert.False(string.IsNullOrWhiteSpace(r.GetProperty("text").GetString()));
        Assert.InRange(r.GetProperty("acceptance").GetDouble(), 0, 1);
        Assert.True(r.GetProperty("draft_joules").GetDouble() > 0);
        Assert.True(r.GetProperty("power_estimated").GetBoolean());
        Assert.Equal(JsonValueKind.Null, r.GetProperty("k_policy").ValueKind); // board A serves its selected K every round

        using var streamed = await FleetHarness.PostJsonAsync(fleet.Http, Daemon("pi5-a") + "v1/generate", """{"prompt": "Once upon a time", "max_tokens": 24, "stream": true}""");
        Assert.Equal("application/x-ndjson", streamed.Content.Headers.ContentType?.MediaType);
        var lines = (await streamed.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length >= 2);
        var text = string.Concat(lines[..^1].Select(l => JsonDocument.Parse(l).RootElement.GetProperty("token").GetString()));
        using var last = JsonDocument.Parse(lines[^1]);
        Assert.True(last.RootElement.GetProperty("done").GetBoolean());
        Assert.Equal(last.RootElement.GetProperty("text").GetString(), text);
        // Greedy speculative decoding is lossless: the same prompt gives the same text either way.
        Assert.Equal(r.GetProperty("text").GetString(), text);

        using var bad = await FleetHarness.PostJsonAsync(fleet.Http, Daemon("pi5-a") + "v1/generate", """{"max_tokens": 5}""");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("'prompt'", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var tooMany = await FleetHarness.PostJsonAsync(fleet.Http, Daemon("pi5-a") + "v1/generate", """{"prompt": "x", "max_tokens": 100000}""");
        Assert.Contains("max_tokens", await tooMany.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // The requests show in the next metrics the aggregator stores.
        await FleetHarness.EventuallyAsync(() => FleetHarness.GetJsonAsync(fleet.Http, fleet.AggregatorUrl + "api/devices/pi5-a"),
            d => d.GetProperty("metrics").EnumerateArray().Any(m => m.GetProperty("tokens").GetInt32() >= 24 && m.GetProperty("goodput").ValueKind == JsonValueKind.Number),
            TimeSpan.FromSeconds(20), "metrics with the served tokens");
    }

    [Fact]
    public async Task The_daemons_metrics_count_a_generation_and_a_refused_request_and_promtool_accepts_them()
    {
        var url = Daemon("pi5-a") + "metrics";
        var before = await fleet.Http.GetStringAsync(url);
        // A counter nothing has added to yet is not in the scrape: it counts as 0.
        double Before(string name, string? label = null) => PrometheusScrape.Sample(before, name, label) is var b && double.IsNaN(b) ? 0 : b;
        double Delta(string after, string name, string? label = null) => PrometheusScrape.Sample(after, name, label) - Before(name, label);

        using var reply = await FleetHarness.PostJsonAsync(fleet.Http, Daemon("pi5-a") + "v1/generate", """{"prompt": "The cat", "max_tokens": 20}""");
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        var summary = ConfigSpec.Contracts.Contract.Read<ConfigSpec.Contracts.GenerationSummary>(await reply.Content.ReadAsByteArrayAsync());
        using var bad = await FleetHarness.PostJsonAsync(fleet.Http, Daemon("pi5-a") + "v1/generate", """{"prompt": 7}""");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);

        var after = await FleetHarness.EventuallyAsync(() => fleet.Http.GetStringAsync(url),
            t => PrometheusScrape.Sample(t, "configspec_edge_generated_tokens_total") >= Before("configspec_edge_generated_tokens_total") + 20,
            TimeSpan.FromSeconds(10), "the generation counted");
        Assert.Equal(1, Delta(after, "configspec_edge_generations_total"));
        Assert.Equal(summary.Tokens, Delta(after, "configspec_edge_generated_tokens_total"));
        Assert.Equal(summary.Rounds, Delta(after, "configspec_edge_rounds_total"));
        Assert.Equal(summary.Drafted, Delta(after, "configspec_edge_drafted_tokens_total"));
        Assert.Equal(summary.Accepted, Delta(after, "configspec_edge_accepted_tokens_total"));
        Assert.Equal(summary.Rounds, Delta(after, "configspec_edge_verify_round_trip_seconds_count"));
        Assert.Equal(1, Delta(after, "configspec_edge_inputs_refused_total", "input=\"http_generate\""));
        Assert.True(Delta(after, "configspec_edge_draft_energy_joules_total", "estimated=\"true\"") > 0, after); // the fleet's boards have no sensor
        Assert.Equal(1, PrometheusScrape.Sample(after, "configspec_edge_serving"));
        Assert.Equal(1, PrometheusScrape.Sample(after, "configspec_edge_broker_connected"));
        Assert.Equal(summary.K, PrometheusScrape.Sample(after, "configspec_edge_draft_length"));
        Assert.True(PrometheusScrape.Sample(after, "configspec_edge_power_watts", "estimated=\"true\"") > 0, after);
        await PrometheusScrape.AssertAcceptedAsync(after);
    }

    [Fact]
    public async Task Generation_over_mqtt_streams_to_the_response_topic_with_correlation_data()
    {
        await using var client = new MqttClient(new MqttClientOptions { Broker = fleet.Broker.Uri });
        await client.ConnectAsync();
        await client.SubscribeAsync("test/replies/#", 1);
        var correlation = Encoding.UTF8.GetBytes("req-42");
        await client.PublishAsync(FleetTopics.Generate("pi5-b"), Encoding.UTF8.GetBytes("""{"prompt": "The dog", "max_tokens": 16}"""), 1, false,
            new MqttPublishProperties("test/replies/1", correlation));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var tokens = new StringBuilder();
        while (true)
        {
            var m = await client.Messages.ReadAsync(cts.Token);
            Assert.Equal(correlation, m.CorrelationData);
            using var doc = JsonDocument.Parse(m.Payload);
            var type = doc.RootElement.GetProperty("type").GetString();
            if (type == "token")
            {
                tokens.Append(doc.RootElement.GetProperty("text").GetString());
                continue;
            }

            Assert.Equal("done", type);
            Assert.Equal(doc.RootElement.GetProperty("text").GetString(), tokens.ToString());
            Assert.Equal(16, doc.RootElement.GetProperty("tokens").GetInt32());
            Assert.Equal("fleet", doc.RootElement.GetProperty("config_source").GetString());
            // Board B chooses K per round with the bandit (its first block drafts K_max = 4).
            Assert.Equal("ucb-specstop", doc.RootElement.GetProperty("k_policy").GetString());
            Assert.InRange(doc.RootElement.GetProperty("mean_k").GetDouble(), 1, 4);
            break;
        }

        await client.PublishAsync(FleetTopics.Generate("pi5-b"), Encoding.UTF8.GetBytes("""{"prompt": 7}"""), 1, false, new MqttPublishProperties("test/replies/2", correlation));
        var error = await client.Messages.ReadAsync(cts.Token);
        Assert.Contains("'prompt'", Encoding.UTF8.GetString(error.Payload), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Commands_change_the_configuration_and_malformed_ones_are_refused()
    {
        await using var client = new MqttClient(new MqttClientOptions { Broker = fleet.Broker.Uri });
        await client.ConnectAsync();
        await client.SubscribeAsync(FleetTopics.CommandResult("pi5-a"), 1);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));

        async Task<JsonElement> SendAsync(string json)
        {
            await client.PublishAsync(FleetTopics.Command("pi5-a"), json, 1);
            var m = await client.Messages.ReadAsync(cts.Token);
            using var doc = JsonDocument.Parse(m.Payload);
            return doc.RootElement.Clone();
        }

        var refused = await SendAsync("""{"command": "apply", "draft": "stories260K-Q4_0"}""");
        Assert.False(refused.GetProperty("ok").GetBoolean());
        Assert.Contains("'k'", refused.GetProperty("error").GetString(), StringComparison.Ordinal);
        var unknownDraft = await SendAsync("""{"command": "apply", "draft": "no-such-draft", "k": 2}""");
        Assert.Contains("no-such-draft", unknownDraft.GetProperty("error").GetString(), StringComparison.Ordinal);

        var applied = await SendAsync("""{"command": "apply", "draft": "stories260K-Q4_0", "k": 2, "id": "c1"}""");
        Assert.True(applied.GetProperty("ok").GetBoolean(), applied.ToString());
        Assert.Equal("c1", applied.GetProperty("id").GetString());
        await FleetHarness.EventuallyAsync(() => fleet.DeviceAsync("pi5-a"),
            d => d.GetProperty("config").GetProperty("source").GetString() == "command" && d.GetProperty("config").GetProperty("k").GetInt32() == 2
                && d.GetProperty("config").GetProperty("quant").GetString() == "Q4_0",
            TimeSpan.FromSeconds(20), "the applied configuration published");

        var cost = await SendAsync("""{"command": "set-objective", "objective": "cost"}""");
        Assert.True(cost.GetProperty("ok").GetBoolean(), cost.ToString());
        var device = await FleetHarness.EventuallyAsync(() => fleet.DeviceAsync("pi5-a"),
            d => d.GetProperty("config").GetProperty("objective").GetString() == "cost", TimeSpan.FromSeconds(20), "the cost configuration published");
        Assert.Equal("profile", device.GetProperty("config").GetProperty("source").GetString());
        Assert.Equal(1, device.GetProperty("config").GetProperty("k").GetInt32()); // the bonus token makes K=1 cheapest per verified token

        var back = await SendAsync("""{"command": "set-objective", "objective": "goodput"}""");
        Assert.True(back.GetProperty("ok").GetBoolean());
    }

    [Fact]
    public async Task Home_assistant_discovery_is_published_for_the_board()
    {
        var m = await FleetHarness.FirstMessageAsync(fleet.Broker.Uri, "homeassistant/sensor/configspec_pi5_a_goodput/config", TimeSpan.FromSeconds(10));
        Assert.True(m.Retain);
        using var doc = JsonDocument.Parse(m.Payload);
        Assert.Equal(FleetTopics.Metrics("pi5-a"), doc.RootElement.GetProperty("state_topic").GetString());
        Assert.Equal("{{ value_json.goodput }}", doc.RootElement.GetProperty("value_template").GetString());
    }

    [Fact]
    public async Task The_dashboard_renders_the_fleet_the_boards_published()
    {
        // A generation, so that board A's live figures have a point.
        using var generated = await FleetHarness.PostJsonAsync(fleet.Http, Daemon("pi5-a") + "v1/generate", """{"prompt": "Once upon a time", "max_tokens": 24}""");
        Assert.Equal(HttpStatusCode.OK, generated.StatusCode);
        await FleetHarness.EventuallyAsync(() => FleetHarness.GetJsonAsync(fleet.Http, fleet.AggregatorUrl + "api/devices/pi5-a"),
            d => d.GetProperty("metrics").EnumerateArray().Any(m => m.GetProperty("goodput").ValueKind == JsonValueKind.Number), TimeSpan.FromSeconds(20), "metrics with goodput");

        await using var browser = await HeadlessChromium.OpenAsync(fleet.AggregatorUrl, width: 1280);
        await FleetHarness.EventuallyAsync(() => browser.EvaluateAsync("document.querySelectorAll('svg.device-chart').length"),
            v => v == "2", TimeSpan.FromSeconds(30), "two device charts");
        Assert.Equal("pi5-a,pi5-b", await browser.EvaluateAsync("[...document.querySelectorAll('#fleet tbody tr')].map(r => r.dataset.device).join(',')"));
        // The state column says the state and nothing else; the configuration is in its own column.
        Assert.Equal("serving,serving", await browser.EvaluateAsync("[...document.querySelectorAll('#fleet tbody tr td:nth-child(3)')].map(t => t.textContent).join(',')"));
        Assert.Matches(@"^stories260K-\S+ \(Q\w+\) K=\d+", await browser.EvaluateAsync("document.querySelector('#fleet tbody tr td:nth-child(4)').textContent"));
        // Live figures as small time series: board A has at least one goodput point and shows its latest value.
        Assert.NotEqual("0", await browser.EvaluateAsync("document.querySelector('#fleet tbody tr[data-device=\"pi5-a\"] td:nth-child(6)').dataset.points"));
        Assert.Matches(@"^\d", await browser.EvaluateAsync("document.querySelector('#fleet tbody tr[data-device=\"pi5-a\"] td:nth-child(6)').textContent"));
        // Board A has a profile: one goodput-against-K curve per draft, each with a legend swatch; board B adopted the fleet's choice and has none.
        Assert.Equal("2", await browser.EvaluateAsync("document.querySelectorAll('svg.device-chart[data-device=\"pi5-a\"] path.curve').length"));
        Assert.Equal("2", await browser.EvaluateAsync("document.querySelector('svg.device-chart[data-device=\"pi5-a\"]').parentElement.querySelectorAll('.legend .swatch').length"));
        Assert.Equal("0", await browser.EvaluateAsync("document.querySelectorAll('svg.device-chart[data-device=\"pi5-b\"] path.curve').length"));
        // K ticks are whole numbers from 1; every axis says what it measures and in which unit.
        var kTicks = await browser.EvaluateAsync("[...document.querySelectorAll('svg.device-chart[data-device=\"pi5-a\"] text.tick.x')].map(t => t.textContent).join(',')");
        Assert.Matches(@"^1(,\d+)+$", kTicks);
        Assert.True(kTicks!.Split(',').Length >= 4, kTicks);
        Assert.Equal("K (drafts per round)|goodput (tokens/s)", await browser.EvaluateAsync("[...document.querySelectorAll('svg.device-chart[data-device=\"pi5-a\"] text.axis-label')].map(t => t.textContent).join('|')"));
        Assert.Equal("cost efficiency (tokens per USD)|goodput (tokens/s)", await browser.EvaluateAsync("[...document.querySelectorAll('#pareto text.axis-label')].map(t => t.textContent).join('|')"));
        Assert.True(int.Parse(await browser.EvaluateAsync("document.querySelectorAll('#pareto text.tick.y').length") ?? "0", System.Globalization.CultureInfo.InvariantCulture) >= 3);
        Assert.Equal("8", await browser.EvaluateAsync("document.querySelectorAll('#pareto circle.point').length"));
        Assert.NotEqual("0", await browser.EvaluateAsync("document.querySelectorAll('#pareto circle.front').length"));
        // The Pareto legend is beside the chart, not in it, with a swatch per board model and the two point kinds.
        Assert.Equal("3", await browser.EvaluateAsync("document.querySelectorAll('#pareto-legend .swatch').length"));
        Assert.Equal("0", await browser.EvaluateAsync("document.querySelectorAll('#pareto text:not(.tick):not(.axis-label)').length"));
        var rankingRows = await browser.EvaluateAsync("document.querySelectorAll('table.ranking tr[data-rank]').length");
        Assert.Equal("8", rankingRows);
        var width = double.Parse(await browser.EvaluateAsync("document.querySelector('svg.device-chart').getBoundingClientRect().width") ?? "0", System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(width >= 300);

        // Nothing overflows a 1280 px window: the whole page's screenshot is as wide as the window, and no element reaches past it.
        var (png, pngWidth, _) = await browser.ScreenshotAsync();
        var results = Path.Combine(TestEnvironment.RepositoryRoot, "out", "test-results");
        await File.WriteAllBytesAsync(Path.Combine(Directory.Exists(results) ? results : TestEnvironment.NewTemporaryDirectory(), "dashboard-1280.png"), png);
        Assert.Equal(1280, pngWidth);
        Assert.Equal("", await browser.EvaluateAsync("[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5).map(e => e.tagName + (e.id ? '#' + e.id : '')).join(',')"));

        // Live updates: switching the objective re-renders the ranking for cost, in figures a person reads.
        await browser.EvaluateAsync("(() => { const s = document.getElementById('objective'); s.value = 'cost'; s.dispatchEvent(new Event('change')); })()");
        var cost = await FleetHarness.EventuallyAsync(() => browser.EvaluateAsync("document.querySelector('table.ranking tr[data-rank=\"1\"] td:nth-child(5)').textContent"),
            v => v?.Contains("tokens/USD", StringComparison.Ordinal) == true, TimeSpan.FromSeconds(10), "the cost ranking");
        Assert.Matches(@"^\d+(\.\d)? [kMG] tokens/USD$", cost);
    }
}
