using System.Text;
using System.Text.Json;
using ConfigSpec.Aggregator.Ingest;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Tests.Profiling;
using ConfigSpec.Transport.Mqtt;

namespace ConfigSpec.Tests.Fleet;

/// <summary>
/// Every fleet topic the aggregator subscribes to (status, profile, config, metrics) takes 1,000 generated payloads
/// through a real mosquitto into a real SQLite file; each is stored, a duplicate, or refused with its reason and
/// counted, and afterwards a good message is still stored and shown.
/// </summary>
public sealed class AggregatorIntakeFuzzTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int PerTopic = 1000;
    private const string Device = "pi-agg-fuzz";
    private static readonly DateTimeOffset T = DateTimeOffset.UtcNow;

    [Fact]
    public async Task Fuzzed_payloads_on_every_fleet_topic_are_refused_and_counted_and_the_aggregator_goes_on_storing()
    {
        using var broker = new MosquittoBroker();
        var (app, url) = await FleetHarness.StartAggregatorAsync(broker.Uri, Path.Combine(TestEnvironment.NewTemporaryDirectory(), "fleet.db"));
        await using var _ = app;
        await using var client = new MqttClient(new MqttClientOptions { Broker = broker.Uri, ClientId = "agg-fuzzer" });
        await client.ConnectAsync();

        var profile = ProfileFixtures.ThreeDrafts();
        profile = profile with { Device = profile.Device with { Id = Device } };
        var valid = new (string Topic, string Json)[]
        {
            (FleetTopics.Status(Device), FleetMessages.Status(Device, 1, T, new StatusMessage(BoardState.Serving, "Raspberry Pi 5", "pi", "0.14.0", "goodput", "K=4"))),
            (FleetTopics.Profile(Device), FleetMessages.Profile(Device, 2, T, profile)),
            (FleetTopics.Config(Device), FleetMessages.Config(Device, 3, T, new ServedConfig("goodput", "d", "Q8_0", new string('a', 64), 4, new PredictedFigures(40, null, null), "best", "profile"))),
            (FleetTopics.Metrics(Device), FleetMessages.Metrics(Device, 4, T, new MetricsMessage(30, 2, 100, 40, 0.7, 2.8, 4, 5.1, 0.02, true))),
        };

        var expected = new Dictionary<string, int>();
        var sent = 0;
        for (var t = 0; t < valid.Length; t++)
        {
            var (topic, json) = valid[t];
            var payloads = PayloadFuzzer.Generate(json, PerTopic, seed: 20 + t).Where(p => p.Length > 0).ToList(); // an empty payload clears a retained topic
            foreach (var p in payloads)
            {
                try
                {
                    MessageValidator.Validate(new MqttMessage(topic, p, 1, false));
                }
                catch (ContractException ex)
                {
                    var reason = ContractException.Name(ex.Fault);
                    expected[reason] = expected.GetValueOrDefault(reason) + 1;
                }

                await client.PublishAsync(topic, p, 1);
                sent++;
            }
        }

        var total = expected.Values.Sum();
        output.WriteLine($"sent {sent}, refused {total}: {string.Join(", ", expected.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}"))}");
        Assert.InRange(total, sent / 2, sent);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var health = await FleetHarness.EventuallyAsync(() => FleetHarness.GetJsonAsync(http, url + "api/health"),
            h => h.GetProperty("received").GetInt64() >= sent, TimeSpan.FromSeconds(120), "every fuzzed payload received");
        Assert.Equal(total, health.GetProperty("rejected").GetInt64());
        foreach (var (reason, n) in expected)
        {
            Assert.Equal(n, health.GetProperty("rejected_by_reason").GetProperty(reason).GetInt64());
        }

        Assert.Equal(0, health.GetProperty("failed").GetInt64());
        Assert.DoesNotContain(health.GetProperty("recent_rejections").EnumerateArray(), r => r.GetProperty("detail").GetString()!.StartsWith("unexpected", StringComparison.Ordinal));

        // Still storing: a good metrics message after all that is the device's latest.
        await client.PublishAsync(FleetTopics.Metrics(Device), Encoding.UTF8.GetBytes(FleetMessages.Metrics(Device, 10_000, DateTimeOffset.UtcNow,
            new MetricsMessage(30, 3, 4242, 41, 0.7, 2.8, 4, 5.1, 0.02, false))), 1);
        await FleetHarness.EventuallyAsync(() => FleetHarness.GetJsonAsync(http, url + "api/devices/" + Device),
            d => d.GetProperty("device").GetProperty("metrics") is { ValueKind: JsonValueKind.Object } m && m.GetProperty("tokens").GetInt32() == 4242,
            TimeSpan.FromSeconds(30), "the good message stored");
    }
}
