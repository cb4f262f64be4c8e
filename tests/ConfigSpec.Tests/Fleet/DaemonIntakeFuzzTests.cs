using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ConfigSpec.Edge.Daemon;
using ConfigSpec.Fleet;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Interop;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;

namespace ConfigSpec.Tests.Fleet;

/// <summary>
/// Seeded payload generation for intake tests: random bytes, and type-confused mutations of one valid message for
/// every field it has (a fraction, a numeric string, null, an array, an object, 2^63, 1e308, true, a huge string,
/// deep nesting, the field removed), plus an unknown extra field and an unpaired surrogate escape.
/// </summary>
public static class PayloadFuzzer
{
    private static readonly Func<JsonNode?>[] Replacements =
    [
        () => JsonValue.Create(1.5), () => JsonValue.Create("12"), () => null, () => new JsonArray(1, 2), () => new JsonObject { ["a"] = 1 },
        () => JsonNode.Parse("9223372036854775808"), () => JsonNode.Parse("1e308"), () => JsonValue.Create(true), () => JsonValue.Create(-1),
        () => JsonValue.Create(new string('x', 70_000)), () => JsonValue.Create(0),
    ];

    public static List<byte[]> Generate(string validJson, int count, int seed)
    {
        var random = new Random(seed);
        var paths = Paths(JsonNode.Parse(validJson)!, string.Empty).ToList();
        var payloads = new List<byte[]>();
        while (payloads.Count < count)
        {
            switch (random.Next(8))
            {
                case 0:
                    payloads.Add(RandomBytes(random, random.Next(0, 300)));
                    break;
                case 1:
                    payloads.Add(Encoding.UTF8.GetBytes(Nest(random.Next(20, 400)) + (random.Next(2) == 0 ? string.Empty : validJson)));
                    break;
                case 2:
                    var surrogate = JsonNode.Parse(validJson)!.AsObject();
                    var first = paths[random.Next(paths.Count)];
                    payloads.Add(Encoding.UTF8.GetBytes(Set(surrogate, first, JsonValue.Create("PLACEHOLDER")).ToJsonString().Replace("PLACEHOLDER", "\\ud800", StringComparison.Ordinal)));
                    break;
                default:
                    var node = JsonNode.Parse(validJson)!.AsObject();
                    var path = paths[random.Next(paths.Count)];
                    var choice = random.Next(Replacements.Length + 2);
                    if (choice == Replacements.Length)
                    {
                        Remove(node, path);
                    }
                    else if (choice == Replacements.Length + 1)
                    {
                        node["unexpected_" + random.Next(1000).ToString(CultureInfo.InvariantCulture)] = new JsonArray("extra");
                    }
                    else
                    {
                        Set(node, path, Replacements[choice]());
                    }

                    payloads.Add(Encoding.UTF8.GetBytes(node.ToJsonString()));
                    break;
            }
        }

        return payloads;
    }

    /// <summary><paramref name="count"/> random bytes from <paramref name="random"/>.</summary>
    public static byte[] RandomBytes(Random random, int count)
    {
        ArgumentNullException.ThrowIfNull(random);
        var bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }

    private static string Nest(int depth) => new string('[', depth) + new string(']', depth);

    /// <summary>Every member's path ("a/b", array elements by index: "configurations/0/k"), objects and arrays descended.</summary>
    private static IEnumerable<string> Paths(JsonNode node, string prefix)
    {
        IEnumerable<(string Name, JsonNode? Child)> children = node switch
        {
            JsonObject o => o.Select(p => (p.Key, p.Value)),
            JsonArray a => a.Select((c, i) => (i.ToString(CultureInfo.InvariantCulture), c)),
            _ => [],
        };
        foreach (var (name, child) in children)
        {
            var path = prefix.Length == 0 ? name : prefix + "/" + name;
            yield return path;
            if (child is JsonObject or JsonArray)
            {
                foreach (var inner in Paths(child, path))
                {
                    yield return inner;
                }
            }
        }
    }

    private static JsonNode Parent(JsonObject root, string[] parts)
    {
        JsonNode parent = root;
        foreach (var part in parts[..^1])
        {
            parent = parent is JsonArray a ? a[int.Parse(part, CultureInfo.InvariantCulture)]! : parent[part]!;
        }

        return parent;
    }

    private static JsonObject Set(JsonObject root, string path, JsonNode? value)
    {
        var parts = path.Split('/');
        var parent = Parent(root, parts);
        if (parent is JsonArray array)
        {
            array[int.Parse(parts[^1], CultureInfo.InvariantCulture)] = value;
        }
        else
        {
            parent[parts[^1]] = value;
        }

        return root;
    }

    private static void Remove(JsonObject root, string path)
    {
        var parts = path.Split('/');
        var parent = Parent(root, parts);
        if (parent is JsonArray array)
        {
            array.RemoveAt(int.Parse(parts[^1], CultureInfo.InvariantCulture));
        }
        else
        {
            parent.AsObject().Remove(parts[^1]);
        }
    }
}

/// <summary>
/// Every topic the board daemon subscribes to (commands, generation requests, the fleet recommendation) takes 1,000+
/// generated payloads through a real mosquitto; each is refused with a reason and counted (or, when it happens to be
/// valid, applied), and afterwards the daemon still applies a command, serves a generation and feeds the watchdog.
/// </summary>
public sealed class DaemonIntakeFuzzTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int PerTopic = 1200;

    [Fact]
    public async Task Fuzzed_payloads_on_every_daemon_topic_are_refused_and_counted_and_the_daemon_goes_on_serving()
    {
        using var broker = new MosquittoBroker();
        var dir = TestEnvironment.NewTemporaryDirectory();
        var httpPort = MosquittoBroker.FreePort();
        const string board = "Raspberry Pi 5 Model B";
        var config = FleetHarness.DaemonConfig(dir, "pi-fuzz", broker.Uri, board, ["stories260K-Q8_0.gguf", "stories260K-Q4_0.gguf"], httpPort,
            adopt: false, verifier: $"\"target\": \"{TestEnvironment.Model("stories260K.gguf")}\"",
            profile: "\"max_rounds\": 12, \"min_rounds\": 6, \"timing_rounds\": 1, \"tokens_per_prompt\": 16, \"idle_baseline\": \"0s\"");
        await using var notify = new NotifyListener(Path.Combine(dir, "notify.sock"));
        using var daemon = FleetHarness.StartDaemon(config, new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path, ["WATCHDOG_USEC"] = "2000000" });
        await daemon.WaitForOutputAsync("serving ", TimeSpan.FromSeconds(120));

        await using var client = new MqttClient(new MqttClientOptions { Broker = broker.Uri, ClientId = "fuzzer" });
        await client.ConnectAsync();
        await client.SubscribeAsync(FleetTopics.CommandResult("pi-fuzz"), 1);
        await client.SubscribeAsync("test/fuzz/replies", 1);

        // The expected refusals come from the product's own readers, which must be total: only their own exception type.
        static bool Refused(Action read)
        {
            try
            {
                read();
                return false;
            }
            catch (ConfigSpecException)
            {
                return true;
            }
        }

        var now = DateTimeOffset.UtcNow;
        var command = FleetMessages.Command(new CommandMessage(FleetCommand.Apply, "fuzz", null, "stories260K-Q8_0", 2, now));
        var commands = PayloadFuzzer.Generate(command, PerTopic, seed: 1);
        var recommendation = FleetMessages.Recommendation(new RecommendationMessage(board, now, new Dictionary<string, RecommendedConfig>(StringComparer.Ordinal)
        {
            ["goodput"] = new("stories260K-Q4_0", "Q4_0", new string('a', 64), 2, 900.5, "tokens/s", 2, 10),
        }));
        var recommendations = PayloadFuzzer.Generate(recommendation, PerTopic, seed: 2).Where(p => p.Length > 0).ToList();
        var generations = PayloadFuzzer.Generate("""{"prompt": "Once", "max_tokens": 1, "stream": false}""", PerTopic, seed: 3);
        var expectedCommands = commands.Count(p => Refused(() => FleetMessages.ReadCommand(p)));
        var expectedRecommendations = recommendations.Count(p => Refused(() => FleetMessages.ReadRecommendation(p)));
        var expectedGenerations = generations.Count(p => Refused(() => ConfigSpec.Edge.Daemon.GenerationMessages.Parse(p)));
        output.WriteLine($"refused of {PerTopic}: cmd {expectedCommands}, recommendation {expectedRecommendations} (of {recommendations.Count}), generate {expectedGenerations}");
        Assert.InRange(expectedCommands, PerTopic / 2, PerTopic); // most are refused, some mutations stay valid
        Assert.InRange(expectedGenerations, PerTopic / 2, PerTopic);

        var recommendationTopic = FleetTopics.Recommendation(board);
        for (var i = 0; i < PerTopic; i++)
        {
            await client.PublishAsync(FleetTopics.Command("pi-fuzz"), commands[i], 1);
            if (i < recommendations.Count)
            {
                await client.PublishAsync(recommendationTopic, recommendations[i], 1);
            }

            await client.PublishAsync(FleetTopics.Generate("pi-fuzz"), generations[i], 1, false, new MqttPublishProperties(ResponseTopic: "test/fuzz/replies"));
            if (i % 50 == 0)
            {
                await Task.Delay(20); // QoS 0 generation requests are not queued by the broker without bound
            }
        }

        // Every command is answered (refused as malformed, refused at apply time, or applied), each once.
        var answered = 0;
        var malformedAnswers = 0;
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(180)))
        {
            while (answered < PerTopic)
            {
                var m = await client.Messages.ReadAsync(cts.Token);
                if (m.Topic == FleetTopics.CommandResult("pi-fuzz"))
                {
                    answered++;
                    using var doc = JsonDocument.Parse(m.Payload);
                    malformedAnswers += doc.RootElement.GetProperty("command").GetString() == "(malformed)" ? 1 : 0;
                }
            }
        }

        Assert.Equal(expectedCommands, malformedAnswers);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        var status = await FleetHarness.EventuallyAsync(() => FleetHarness.GetJsonAsync(http, $"http://127.0.0.1:{httpPort}/v1/status"),
            s => Count(s, "recommendation") == expectedRecommendations && Count(s, "cmd") == expectedCommands && Count(s, "generate") == expectedGenerations,
            TimeSpan.FromSeconds(120), "every fuzzed payload counted");
        Assert.True(Count(status, "cmd") > 0 && Count(status, "generate") > 0 && Count(status, "recommendation") > 0);
        var reasons = status.GetProperty("intake_refused").GetProperty("cmd").GetProperty("by_reason");
        Assert.True(reasons.GetProperty("malformed_json").GetInt64() > 0, reasons.ToString());
        Assert.True(reasons.GetProperty("invalid_field").GetInt64() > 0, reasons.ToString());
        Assert.DoesNotContain(reasons.EnumerateObject(), r => r.Name.StartsWith("unexpected_", StringComparison.Ordinal));

        // Still alive and doing its job: a command is applied and answered, a generation served, the watchdog fed.
        await client.PublishAsync(FleetTopics.Command("pi-fuzz"), FleetMessages.Command(new CommandMessage(FleetCommand.Apply, "after-fuzz", null, "stories260K-Q4_0", 3, DateTimeOffset.UtcNow)), 1);
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            while (true)
            {
                var m = await client.Messages.ReadAsync(cts.Token);
                if (m.Topic != FleetTopics.CommandResult("pi-fuzz"))
                {
                    continue;
                }

                using var doc = JsonDocument.Parse(m.Payload);
                if (doc.RootElement.GetProperty("id").GetString() == "after-fuzz")
                {
                    Assert.True(doc.RootElement.GetProperty("ok").GetBoolean(), doc.RootElement.ToString());
                    Assert.Equal(3, doc.RootElement.GetProperty("config").GetProperty("k").GetInt32());
                    break;
                }
            }
        }

        using var response = await FleetHarness.PostJsonAsync(http, $"http://127.0.0.1:{httpPort}/v1/generate", """{"prompt": "Once upon a time", "max_tokens": 8}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var pings = notify.Notes.Count(n => n == "WATCHDOG=1");
        await Task.Delay(2500);
        Assert.True(notify.Notes.Count(n => n == "WATCHDOG=1") > pings, "the watchdog is still fed after the fuzzing");
        Assert.False(daemon.HasExited, daemon.Log);
        // Each kind of refusal is logged once, not once per message.
        var logged = daemon.Log.Split('\n').Count(l => l.Contains("refused a message on cmd (malformed_json)", StringComparison.Ordinal));
        Assert.Equal(1, logged);
        daemon.Terminate();
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(30)), daemon.Log);
    }

    private static long Count(JsonElement status, string input) =>
        status.GetProperty("intake_refused").TryGetProperty(input, out var i) ? i.GetProperty("total").GetInt64() : 0;
}
