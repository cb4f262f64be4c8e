using System.Text;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;

namespace ConfigSpec.Tests.Fleet;

/// <summary>The aggregator's <c>GET /metrics</c>: Prometheus text that promtool accepts, with the intake's counts.</summary>
public sealed class AggregatorMetricsTests
{
    [Fact]
    public async Task Metrics_are_prometheus_text_that_promtool_accepts_and_count_what_came_in()
    {
        using var broker = new MosquittoBroker();
        var (app, url) = await FleetHarness.StartAggregatorAsync(broker.Uri, Path.Combine(TestEnvironment.NewTemporaryDirectory(), "fleet.db"));
        await using var _ = app;
        await using var client = new MqttClient(new MqttClientOptions { Broker = broker.Uri, ClientId = "metrics-board" });
        await client.ConnectAsync();
        await client.PublishAsync(FleetTopics.Metrics("pi-metrics"), Encoding.UTF8.GetBytes(FleetMessages.Metrics("pi-metrics", 1, DateTimeOffset.UtcNow,
            new MetricsMessage(30, 1, 10, 5, 0.5, 1, 2, null, null, false))), 1, retain: true);
        // Retained, on two topics: the aggregator may subscribe after these are published.
        await client.PublishAsync(FleetTopics.Metrics("pi-metrics-bad"), "{not json"u8.ToArray(), 1, retain: true);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        await FleetHarness.EventuallyAsync(() => FleetHarness.GetJsonAsync(http, url + "api/health"), h => h.GetProperty("received").GetInt64() >= 2,
            TimeSpan.FromSeconds(30), "both messages received");
        using var response = await http.GetAsync(url + "metrics");
        Assert.True(response.IsSuccessStatusCode, response.StatusCode.ToString());
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("# TYPE configspec_aggregator_messages_received_total counter", text, StringComparison.Ordinal);
        Assert.Matches(@"configspec_aggregator_messages_refused_total\{[^}]*reason=""malformed_json""[^}]*\} [1-9]", text);
        Assert.Matches(@"configspec_aggregator_messages_stored_total\{[^}]*\} [1-9]", text);
        Assert.Contains("configspec_aggregator_ingest_lag_seconds_bucket", text, StringComparison.Ordinal);

        await PrometheusScrape.AssertAcceptedAsync(text);
    }
}
