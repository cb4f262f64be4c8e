using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Sampling;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Tests.Fleet;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Protocol;
using ConfigSpec.Transport.Remote;

namespace ConfigSpec.Tests.Transport;

/// <summary>
/// The verifier's request topic takes 1,200 generated payloads through a real mosquitto: random bytes, and valid
/// open-session and verify frames with bytes flipped, cut short, extended, or with tokens, rounds and positions out of
/// range. Each is answered exactly once (an error naming its code, or a real reply), every error is counted by kind,
/// none is an internal error, and afterwards a board still generates the target's own tokens.
/// </summary>
[Collection(ModelGroup.Name)]
public sealed class VerifierIntakeFuzzTests(ModelFixture models, Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Count = 1200;

    [Fact]
    public async Task Fuzzed_requests_are_each_answered_and_counted_and_the_verifier_goes_on_verifying()
    {
        using var broker = new MosquittoBroker();
        MqttClientOptions Options(string id) => new() { Broker = broker.Uri, ClientId = id };
        await using var engine = new VerifierEngine(models.Target, new VerifierOptions { ContextLength = 256, MaxSessions = 16, BatchWindow = TimeSpan.FromMilliseconds(1), InstanceId = "fuzz-replica" });
        await using var server = new MqttVerifierServer(engine, Options("fuzz-verifier"), "stories260K");
        await server.StartAsync();
        await using var raw = new MqttClient(Options("fuzz-sender"));
        await raw.ConnectAsync();
        await raw.SubscribeAsync("test/fuzz/verifier", 1);

        var prompt = models.Target.Tokenize("Once upon a time");
        var open = ProtocolCodec.Encode(new OpenSessionMessage("stories260K", "fuzz", string.Empty, SamplingSettings.Greedy, prompt));
        var random = new Random(11);
        var payloads = new List<byte[]>(Count);
        string? session = null;
        while (payloads.Count < Count)
        {
            if (session is null || random.Next(40) == 0)
            {
                // A real session to aim verify frames at (and a fresh one now and then: mutations may end one).
                var correlation = Guid.NewGuid().ToByteArray();
                await raw.PublishAsync(Topics.Pool("stories260K"), open, 1, false, new MqttPublishProperties("test/fuzz/verifier", correlation));
                session = Assert.IsType<SessionOpenedMessage>(ProtocolCodec.Decode((await NextReply(raw, correlation)).Payload)).SessionId;
            }

            var vocabulary = models.Target.VocabularySize;
            int[] tokens = random.Next(4) switch
            {
                0 => [-1],
                1 => [vocabulary, 5],
                2 => [int.MaxValue],
                _ => [.. Enumerable.Range(0, random.Next(1, 40)).Select(_ => random.Next(vocabulary))],
            };
            var verify = ProtocolCodec.Encode(new VerifyMessage(session, random.Next(-2, 4), random.Next(-5, prompt.Length + 3), tokens, null));
            var baseFrame = random.Next(3) == 0 ? open : verify;
            payloads.Add(random.Next(6) switch
            {
                0 => PayloadFuzzer.RandomBytes(random, random.Next(0, 200)),
                1 => baseFrame[..random.Next(0, baseFrame.Length)],
                2 => [.. baseFrame, .. PayloadFuzzer.RandomBytes(random, random.Next(1, 30))],
                3 => Flip(baseFrame, random),
                _ => baseFrame,
            });
        }

        var correlations = new List<byte[]>();
        foreach (var payload in payloads)
        {
            var correlation = Guid.NewGuid().ToByteArray();
            correlations.Add(correlation);
            await raw.PublishAsync(Topics.Instance("fuzz-replica"), payload, 1, false, new MqttPublishProperties("test/fuzz/verifier", correlation));
        }

        var pending = correlations.Select(Convert.ToHexString).ToHashSet();
        var errors = new Dictionary<ProtocolErrorCode, int>();
        var replies = 0;
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120)))
        {
            while (pending.Count > 0)
            {
                var m = await raw.Messages.ReadAsync(cts.Token);
                Assert.True(m.CorrelationData is not null && pending.Remove(Convert.ToHexString(m.CorrelationData)), "a reply that answers no request, or a second answer");
                replies++;
                if (ProtocolCodec.Decode(m.Payload) is ErrorMessage e)
                {
                    errors[e.Code] = errors.GetValueOrDefault(e.Code) + 1;
                    Assert.False(string.IsNullOrWhiteSpace(e.Message));
                }
            }
        }

        output.WriteLine($"{replies} answered; errors: {string.Join(", ", errors.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}"))}");
        Assert.Equal(Count, replies);
        Assert.DoesNotContain(ProtocolErrorCode.Internal, errors.Keys);
        Assert.True(errors.GetValueOrDefault(ProtocolErrorCode.Malformed) > 0 && errors.GetValueOrDefault(ProtocolErrorCode.InvalidToken) > 0 && errors.GetValueOrDefault(ProtocolErrorCode.BadRound) > 0);
        // The server counted every refusal it answered (plus none it did not).
        foreach (var (code, n) in errors)
        {
            Assert.Equal(n, server.ErrorCounts[code]);
        }

        // Still verifying: a board over the same broker gets exactly the target's own tokens.
        await using var mqtt = new MqttClient(Options("fuzz-board"));
        await using var verifier = new MqttVerifierClient(mqtt, new RemoteVerifierOptions { TargetId = "stories260K", DeviceId = "fuzz-board", RequestTimeout = TimeSpan.FromSeconds(5) });
        await verifier.StartAsync();
        var options = new GenerationOptions { DraftLength = 4, MaxTokens = 40, ContextLength = 256 };
        var result = await new SpeculativeGenerator(verifier, models.Drafts["stories260K-Q8_0.gguf"]).GenerateAsync(prompt, options, models.Target);
        var local = await LocalGeneration.RunAsync(models.Target, null, prompt, options with { DraftLength = 0 });
        Assert.Equal(local.Tokens, result.Tokens);
    }

    /// <summary>
    /// A board's own subscriptions (its reply topic and the replicas' status topics) take 1,200 junk messages each while it
    /// generates: frames with foreign, probe-like or no correlation data, and statuses that are not the schema. The
    /// generation gives the target's own tokens, unreadable statuses are counted, and the board still verifies after.
    /// </summary>
    [Fact]
    public async Task Junk_on_a_boards_reply_and_status_topics_is_ignored_or_counted_and_generation_is_exact()
    {
        using var broker = new MosquittoBroker();
        MqttClientOptions Options(string id) => new() { Broker = broker.Uri, ClientId = id };
        await using var engine = new VerifierEngine(models.Target, new VerifierOptions { ContextLength = 256, MaxSessions = 4, InstanceId = "board-fuzz-replica" });
        await using var server = new MqttVerifierServer(engine, Options("board-fuzz-verifier"), "stories260K");
        await server.StartAsync();
        await using var mqtt = new MqttClient(Options("fuzz-board-2"));
        await using var verifier = new MqttVerifierClient(mqtt, new RemoteVerifierOptions { TargetId = "stories260K", DeviceId = "fuzz-board-2", RequestTimeout = TimeSpan.FromSeconds(5) });
        await verifier.StartAsync();
        await using var junk = new MqttClient(Options("junk-sender"));
        await junk.ConnectAsync();

        var random = new Random(12);
        var statuses = PayloadFuzzer.Generate(ConfigSpec.Contracts.Contract.Write(new ConfigSpec.Contracts.VerifierStatus("online", "ghost", "stories260K", DateTimeOffset.UtcNow)), Count, seed: 13);
        var expectedRefused = statuses.Count(p =>
        {
            if (p.Length == 0)
            {
                return false;
            }

            try
            {
                _ = ConfigSpec.Contracts.Contract.Read<ConfigSpec.Contracts.VerifierStatus>(p);
                return false;
            }
            catch (ConfigSpecException)
            {
                return true;
            }
        });
        var prompt = models.Target.Tokenize("Once upon a time");
        var options = new GenerationOptions { DraftLength = 4, MaxTokens = 60, ContextLength = 256 };
        var generation = new SpeculativeGenerator(verifier, models.Drafts["stories260K-Q8_0.gguf"]).GenerateAsync(prompt, options, models.Target);
        for (var i = 0; i < Count; i++)
        {
            byte[]? correlation = random.Next(4) switch
            {
                0 => null,
                1 => System.Text.Encoding.ASCII.GetBytes("probe-" + random.Next(-5, 1000)),
                2 => PayloadFuzzer.RandomBytes(random, random.Next(0, 40)),
                _ => System.Text.Encoding.ASCII.GetBytes(Guid.NewGuid().ToString("N")),
            };
            await junk.PublishAsync(Topics.Reply("fuzz-board-2"), PayloadFuzzer.RandomBytes(random, random.Next(0, 120)), 1, false, new MqttPublishProperties(CorrelationData: correlation));
            await junk.PublishAsync(Topics.Status("ghost-" + (i % 7)), statuses[i], 1);
        }

        var result = await generation;
        var local = await LocalGeneration.RunAsync(models.Target, null, prompt, options with { DraftLength = 0 });
        Assert.Equal(local.Tokens, result.Tokens);
        await FleetHarnessWait(() => verifier.RefusedMessages == expectedRefused, TimeSpan.FromSeconds(30));
        output.WriteLine($"statuses refused {verifier.RefusedMessages} of {statuses.Count}");
        Assert.True(expectedRefused > statuses.Count / 3);
        var again = await new SpeculativeGenerator(verifier, models.Drafts["stories260K-Q4_0.gguf"]).GenerateAsync(prompt, options, models.Target);
        Assert.Equal(local.Tokens, again.Tokens);
    }

    private static async Task FleetHarnessWait(Func<bool> condition, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, "timed out");
            await Task.Delay(50);
        }
    }

    private static async Task<MqttMessage> NextReply(MqttClient client, byte[] correlation)
    {
        while (true)
        {
            var m = await client.Messages.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            if (m.CorrelationData is not null && m.CorrelationData.AsSpan().SequenceEqual(correlation))
            {
                return m;
            }
        }
    }

    private static byte[] Flip(byte[] frame, Random random)
    {
        var copy = (byte[])frame.Clone();
        for (var i = random.Next(1, 4); i > 0; i--)
        {
            copy[random.Next(copy.Length)] ^= (byte)(1 << random.Next(8));
        }

        return copy;
    }
}
