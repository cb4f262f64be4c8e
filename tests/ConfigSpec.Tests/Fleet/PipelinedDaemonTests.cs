using System.Net;
using System.Text.Json;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;

namespace ConfigSpec.Tests.Fleet;

/// <summary>
/// A board daemon serving pipelined speculation: the <c>pipeline</c> setting bounds what the selector may choose, the
/// choice travels in the published configuration, an <c>apply</c> command can set it, and generation with blocks in
/// flight gives the sequential output (greedy) through a real verifier and mosquitto.
/// </summary>
public sealed class PipelinedDaemonTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task The_daemon_publishes_its_pipeline_serves_with_it_and_applies_one_by_command()
    {
        using var broker = new MosquittoBroker();
        using var verifier = new VerifierProcess("pipeline-verifier", broker.Uri);
        await verifier.WaitForOutputAsync("serving target", TimeSpan.FromSeconds(60));
        var dir = TestEnvironment.NewTemporaryDirectory();
        var httpPort = MosquittoBroker.FreePort();
        var config = FleetHarness.DaemonConfig(dir, "pi-pipe", broker.Uri, "Raspberry Pi 5 Model B", ["stories260K-Q8_0.gguf"], httpPort, adopt: false,
            extra: ", \"pipeline\": 4");
        await using var client = new MqttClient(new MqttClientOptions { Broker = broker.Uri, ClientId = "pipe-operator" });
        await client.ConnectAsync();
        await client.SubscribeAsync(FleetTopics.Config("pi-pipe"), 1);
        await client.SubscribeAsync(FleetTopics.CommandResult("pi-pipe"), 1);
        using var daemon = FleetHarness.StartDaemon(config);
        await daemon.WaitForOutputAsync("serving ", Long);

        // The published configuration says the D chosen, within the setting's bound.
        var published = await NextAsync(client, FleetTopics.Config("pi-pipe"), _ => true);
        Assert.InRange(published.GetProperty("pipeline").GetInt32(), 1, 4);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        async Task<JsonElement> GenerateAsync()
        {
            using var response = await FleetHarness.PostJsonAsync(http, $"http://127.0.0.1:{httpPort}/v1/generate", """{"prompt": "Once upon a time", "max_tokens": 48}""");
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body);
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.Clone();
        }

        async Task<JsonElement> ApplyAsync(string id, int pipeline)
        {
            await client.PublishAsync(FleetTopics.Command("pi-pipe"),
                FleetMessages.Command(new CommandMessage(FleetCommand.Apply, id, null, "stories260K-Q8_0", 4, DateTimeOffset.UtcNow, Pipeline: pipeline)), 1);
            return await NextAsync(client, FleetTopics.CommandResult("pi-pipe"), r => r.GetProperty("id").GetString() == id);
        }

        var sequential = await ApplyAsync("seq", 1);
        Assert.True(sequential.GetProperty("ok").GetBoolean(), sequential.ToString());
        Assert.Equal(1, sequential.GetProperty("config").GetProperty("pipeline").GetInt32());
        var one = await GenerateAsync();
        Assert.Equal(1, one.GetProperty("pipeline").GetInt32());
        Assert.Equal(0, one.GetProperty("discarded_tokens").GetInt32());

        var piped = await ApplyAsync("piped", 3);
        Assert.True(piped.GetProperty("ok").GetBoolean(), piped.ToString());
        Assert.Equal(3, piped.GetProperty("config").GetProperty("pipeline").GetInt32());
        // The retained configuration says so (read afresh: the operator's client may have passed it while waiting for the result).
        var published3 = await FleetHarness.EventuallyAsync(() => RetainedAsync(broker.Uri, FleetTopics.Config("pi-pipe")),
            m => m.GetProperty("pipeline").GetInt32() == 3, TimeSpan.FromSeconds(30), "the retained configuration with pipeline 3");
        Assert.Equal("command", published3.GetProperty("source").GetString());
        var three = await GenerateAsync();
        Assert.Equal(one.GetProperty("text").GetString(), three.GetProperty("text").GetString());
        Assert.InRange(three.GetProperty("pipeline").GetInt32(), 2, 3);
        // Drafted counts every token the board drafted; acceptance is of the verified ones.
        var verified = three.GetProperty("drafted").GetInt32() - three.GetProperty("discarded_tokens").GetInt32();
        Assert.Equal(Math.Round(three.GetProperty("accepted").GetInt32() / (double)verified, 4), three.GetProperty("acceptance").GetDouble(), 6);

        // A depth outside 1..16 is refused, naming the field, and the board goes on with what it had.
        await client.PublishAsync(FleetTopics.Command("pi-pipe"), System.Text.Encoding.UTF8.GetBytes(
            FleetMessages.Command(new CommandMessage(FleetCommand.Apply, "deep", null, "stories260K-Q8_0", 4, DateTimeOffset.UtcNow, Pipeline: 3))
                .Replace("\"pipeline\":3", "\"pipeline\":17", StringComparison.Ordinal)), 1);
        var refused = await NextAsync(client, FleetTopics.CommandResult("pi-pipe"), r => r.GetProperty("ok").GetBoolean() == false);
        Assert.Contains("pipeline", refused.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Contains("1..16", refused.GetProperty("error").GetString(), StringComparison.Ordinal);
        var status = await FleetHarness.GetJsonAsync(http, $"http://127.0.0.1:{httpPort}/v1/status");
        Assert.Equal(3, status.GetProperty("config").GetProperty("pipeline").GetInt32());

        daemon.Terminate();
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(30)), daemon.Log);
    }

    private static async Task<JsonElement> RetainedAsync(Uri broker, string topic)
    {
        await using var reader = new MqttClient(new MqttClientOptions { Broker = broker, ClientId = "pipe-reader-" + Guid.NewGuid().ToString("N")[..6] });
        await reader.ConnectAsync();
        await reader.SubscribeAsync(topic, 1);
        return await NextAsync(reader, topic, _ => true);
    }

    private static async Task<JsonElement> NextAsync(MqttClient client, string topic, Func<JsonElement, bool> wanted)
    {
        using var cts = new CancellationTokenSource(Long);
        while (true)
        {
            var m = await client.Messages.ReadAsync(cts.Token);
            if (m.Topic != topic)
            {
                continue;
            }

            using var doc = JsonDocument.Parse(m.Payload);
            if (wanted(doc.RootElement))
            {
                return doc.RootElement.Clone();
            }
        }
    }
}
