using System.Net;
using System.Text.Json;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Protocol;
using ConfigSpec.Transport.Remote;

namespace ConfigSpec.Tests.Transport;

/// <summary><c>configspec-verifier --http</c>: <c>/metrics</c> that promtool accepts and that counts what two boards did, and <c>/healthz</c>.</summary>
[Collection(ModelGroup.Name)]
public sealed class VerifierMetricsTests(ModelFixture models) : IDisposable
{
    private readonly MosquittoBroker _broker = new();

    [Fact]
    public async Task Metrics_count_each_boards_rounds_and_tokens_and_refusals_by_code_and_promtool_accepts_them()
    {
        var port = MosquittoBroker.FreePort();
        var url = $"http://127.0.0.1:{port}/";
        using var verifier = new VerifierProcess("metrics-verifier", _broker.Uri, "--http", url.TrimEnd('/'));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        await FleetHarness.EventuallyAsync(async () =>
        {
            try
            {
                return await FleetHarness.GetJsonAsync(http, url + "healthz");
            }
            catch (HttpRequestException)
            {
                return default;
            }
        }, h => h.ValueKind == JsonValueKind.Object && h.GetProperty("state").GetString() == "ok", TimeSpan.FromSeconds(60), "the verifier healthy: " + verifier.Log);

        var rounds = new Dictionary<string, int>();
        var verified = new Dictionary<string, int>();
        var accepted = new Dictionary<string, int>();
        foreach (var board in new[] { "metrics-board-a", "metrics-board-b" })
        {
            await using var client = await MqttVerifierClient.ConnectAsync(new MqttClientOptions { Broker = _broker.Uri },
                new RemoteVerifierOptions { TargetId = "stories260K", DeviceId = board, RequestTimeout = TimeSpan.FromSeconds(10) });
            var result = await new SpeculativeGenerator(client, models.Drafts["stories260K-Q4_0.gguf"]).GenerateAsync(
                models.Target.Tokenize("Once upon a time"), new GenerationOptions { DraftLength = 4, MaxTokens = board.EndsWith('a') ? 40 : 24, ContextLength = 512, DeviceId = board },
                models.Target);
            rounds[board] = result.Rounds.Count;
            verified[board] = result.DraftedTokens;
            accepted[board] = result.Rounds.Sum(r => r.Accepted);
        }

        // A request that is not the protocol, with somewhere to answer: refused as malformed and counted by its code.
        await using (var junk = new MqttClient(new MqttClientOptions { Broker = _broker.Uri }))
        {
            await junk.ConnectAsync();
            await junk.PublishAsync(Topics.Pool("stories260K"), "not a protocol frame"u8.ToArray(), 1, false,
                new MqttPublishProperties(ResponseTopic: Topics.Reply("metrics-junk")));
        }

        var text = await FleetHarness.EventuallyAsync(() => http.GetStringAsync(url + "metrics"),
            t => PrometheusScrape.Sample(t, "configspec_verifier_rounds_total", "board=\"metrics-board-b\"") == rounds["metrics-board-b"]
                && PrometheusScrape.Sample(t, "configspec_verifier_errors_total", "code=\"malformed\"") >= 1,
            TimeSpan.FromSeconds(30), "both boards' rounds and the refusal scraped");
        foreach (var board in rounds.Keys)
        {
            Assert.Equal(rounds[board], PrometheusScrape.Sample(text, "configspec_verifier_rounds_total", $"board=\"{board}\""));
            Assert.Equal(verified[board], PrometheusScrape.Sample(text, "configspec_verifier_verified_tokens_total", $"board=\"{board}\""));
            Assert.Equal(accepted[board], PrometheusScrape.Sample(text, "configspec_verifier_accepted_tokens_total", $"board=\"{board}\""));
            // The target decodes each round's drafts plus at least the committed token fed with them.
            Assert.True(PrometheusScrape.Sample(text, "configspec_verifier_billed_tokens_total", $"board=\"{board}\"") >= verified[board] + rounds[board], text);
        }

        var total = rounds.Values.Sum();
        Assert.Equal(total, PrometheusScrape.Sample(text, "configspec_verifier_batch_rounds_sum"));
        Assert.True(PrometheusScrape.Sample(text, "configspec_verifier_decode_duration_seconds_count") is var decodes && decodes >= 1 && decodes <= total, text);
        Assert.Equal(2, PrometheusScrape.Sample(text, "configspec_verifier_sessions_opened_total"));
        Assert.Equal(0, PrometheusScrape.Sample(text, "configspec_verifier_sessions_open")); // both boards closed theirs
        Assert.Contains("# TYPE configspec_verifier_decode_duration_seconds histogram", text, StringComparison.Ordinal);
        await PrometheusScrape.AssertAcceptedAsync(text);

        var health = await FleetHarness.GetJsonAsync(http, url + "healthz");
        Assert.Equal("metrics-verifier", health.GetProperty("instance").GetString());
        Assert.Equal("stories260K", health.GetProperty("target").GetString());
        Assert.True(health.GetProperty("decode_calls").GetInt64() >= decodes);
    }

    [Fact]
    public async Task Health_says_503_while_the_broker_is_away()
    {
        var port = MosquittoBroker.FreePort();
        var url = $"http://127.0.0.1:{port}/healthz";
        using var verifier = new VerifierProcess("health-verifier", _broker.Uri, "--http", $"http://127.0.0.1:{port}");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        async Task<HttpStatusCode> Probe()
        {
            try
            {
                using var response = await http.GetAsync(url);
                return response.StatusCode;
            }
            catch (HttpRequestException)
            {
                return 0;
            }
        }

        await FleetHarness.EventuallyAsync(Probe, s => s == HttpStatusCode.OK, TimeSpan.FromSeconds(60), "healthy: " + verifier.Log);
        _broker.Stop();
        await FleetHarness.EventuallyAsync(Probe, s => s == HttpStatusCode.ServiceUnavailable, TimeSpan.FromSeconds(30), "unhealthy without its broker");
        _broker.Start();
        await FleetHarness.EventuallyAsync(Probe, s => s == HttpStatusCode.OK, TimeSpan.FromSeconds(60), "healthy again: " + verifier.Log);
        Assert.False(verifier.HasExited, verifier.Log);
    }

    [Theory]
    [InlineData("127.0.0.1:9464")]
    [InlineData("https://127.0.0.1:9464")]
    public void A_bad_http_address_is_refused_with_one_line(string address)
    {
        using var verifier = new VerifierProcess("bad-http-verifier", _broker.Uri, "--http", address);
        Assert.True(verifier.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.Equal(2, verifier.ExitCode);
        Assert.Contains($"--http '{address}' must be http://HOST:PORT", verifier.Log, StringComparison.Ordinal);
    }

    public void Dispose() => _broker.Dispose();
}
