using System.Text;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Sampling;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Protocol;
using ConfigSpec.Transport.Remote;

namespace ConfigSpec.Tests.Transport;

[Collection(ModelGroup.Name)]
public sealed class RemoteVerificationTests(ModelFixture models) : IDisposable
{
    private readonly MosquittoBroker _broker = new();

    private MqttClientOptions Broker(string? id = null) => new() { Broker = _broker.Uri, ClientId = id ?? "c-" + Guid.NewGuid().ToString("N")[..10] };

    private readonly ListLogger _log = new();

    private async Task<(VerifierEngine Engine, MqttVerifierServer Server)> StartReplica(string instance, int maxSessions = 8)
    {
        var engine = new VerifierEngine(models.Target, new VerifierOptions
        {
            ContextLength = 256, MaxSessions = maxSessions, BatchWindow = TimeSpan.FromMilliseconds(2), InstanceId = instance,
        });
        var server = new MqttVerifierServer(engine, Broker(), "stories260K", _log);
        await server.StartAsync();
        return (engine, server);
    }

    private async Task<(MqttClient Mqtt, MqttVerifierClient Verifier)> StartBoard(string device)
    {
        var mqtt = new MqttClient(Broker(device));
        var verifier = new MqttVerifierClient(mqtt, new RemoteVerifierOptions { TargetId = "stories260K", DeviceId = device, RequestTimeout = TimeSpan.FromSeconds(1) });
        await verifier.StartAsync();
        return (mqtt, verifier);
    }

    [Fact]
    public async Task Generation_over_mqtt_gives_exactly_the_tokens_of_the_in_process_verifier()
    {
        var (engine, server) = await StartReplica("replica-a");
        var (mqtt, verifier) = await StartBoard("board-1");
        var prompt = models.Target.Tokenize("Once upon a time");
        foreach (var k in new[] { 1, 4, 8 })
        {
            var options = new GenerationOptions { DraftLength = k, MaxTokens = 120, ContextLength = 256 };
            var local = await LocalGeneration.RunAsync(models.Target, models.Drafts["stories260K-Q4_0.gguf"], prompt, options);
            var remote = await new SpeculativeGenerator(verifier, models.Drafts["stories260K-Q4_0.gguf"]).GenerateAsync(prompt, options, models.Target);
            Assert.Equal(local.Tokens, remote.Tokens);
            Assert.Equal(local.Rounds.Select(r => r.Accepted), remote.Rounds.Select(r => r.Accepted));
        }

        var sampled = new GenerationOptions { DraftLength = 4, MaxTokens = 60, ContextLength = 256, Sampling = new SamplingSettings(0.9f, 30, 5) };
        var localSampled = await LocalGeneration.RunAsync(models.Target, models.Drafts["stories260K-Q4_0.gguf"], prompt, sampled);
        var remoteSampled = await new SpeculativeGenerator(verifier, models.Drafts["stories260K-Q4_0.gguf"]).GenerateAsync(prompt, sampled, models.Target);
        Assert.Equal(localSampled.Tokens, remoteSampled.Tokens);
        Assert.Equal(0, verifier.Reopened);
        Assert.True(engine.Usage["board-1"].Rounds > 0);

        await verifier.DisposeAsync();
        await mqtt.DisposeAsync();
        await server.DisposeAsync();
        await engine.DisposeAsync();
    }

    [Fact]
    public async Task A_link_probe_measures_the_boards_link_during_drafting_and_output_is_unchanged()
    {
        // The board reaches the broker through a delay proxy (25 ms each way); the verifier does not.
        var (engine, server) = await StartReplica("replica-probe");
        await using var proxy = new ConfigSpec.Transport.Network.DelayProxy(new ConfigSpec.Transport.Network.DelayProxyOptions
        {
            Listen = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0),
            Upstream = new System.Net.DnsEndPoint("127.0.0.1", _broker.Port),
            Delay = TimeSpan.FromMilliseconds(25),
        });
        proxy.Start();
        await using var mqtt = new MqttClient(new MqttClientOptions { Broker = new Uri($"mqtt://127.0.0.1:{proxy.LocalEndpoint.Port}"), ClientId = "board-probe" });
        await using var verifier = new MqttVerifierClient(mqtt, new RemoteVerifierOptions { TargetId = "stories260K", DeviceId = "board-probe" });
        await verifier.StartAsync();
        Assert.Null(verifier.ProbeRoundTripSeconds);
        var prompt = models.Target.Tokenize("Once upon a time");
        var options = new GenerationOptions { DraftLength = 8, MaxTokens = 80, ContextLength = 256 };
        var local = await LocalGeneration.RunAsync(models.Target, models.Drafts["stories260K-Q4_0.gguf"], prompt, options);
        var policy = new ConfigSpec.Speculative.Policies.UcbSpecStopPolicy(8, probe: true);
        var remote = await new SpeculativeGenerator(verifier, models.Drafts["stories260K-Q4_0.gguf"]).GenerateAsync(prompt, options with { Policy = policy }, models.Target);
        Assert.Equal(local.Tokens, remote.Tokens);
        // The last round's probe came back over the delayed link: at least the 50 ms round trip, less than the verdict's wait.
        var rtt = Assert.NotNull(verifier.ProbeRoundTripSeconds);
        Assert.InRange(rtt, 0.050, 0.5);
        Assert.InRange(policy.ProbeOffsetSeconds, 0, 0.05);
        Assert.Equal(0, verifier.ProbesFailed);
        // A plain policy sends no probes: its rounds leave the last probe's figure untouched.
        var before = verifier.ProbeRoundTripSeconds;
        await new SpeculativeGenerator(verifier, models.Drafts["stories260K-Q4_0.gguf"]).GenerateAsync(prompt, options with { Policy = new ConfigSpec.Speculative.Policies.UcbSpecStopPolicy(8) }, models.Target);
        Assert.Equal(before, verifier.ProbeRoundTripSeconds);
        await server.DisposeAsync();
        await engine.DisposeAsync();
    }

    [Fact]
    public async Task Bad_payloads_are_answered_with_errors_counted_by_kind_and_service_continues()
    {
        var (engine, server) = await StartReplica("replica-b");
        await using var raw = new MqttClient(Broker());
        await raw.ConnectAsync();
        await raw.SubscribeAsync("test/reply", 1);
        var pool = Topics.Pool("stories260K");
        var instance = Topics.Instance("replica-b");

        async Task<ProtocolMessage> Request(string topic, byte[] payload)
        {
            var correlation = Guid.NewGuid().ToByteArray();
            await raw.PublishAsync(topic, payload, 1, false, new MqttPublishProperties("test/reply", correlation));
            while (true)
            {
                var reply = await raw.Messages.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
                if (reply.CorrelationData is not null && reply.CorrelationData.SequenceEqual(correlation))
                {
                    return ProtocolCodec.Decode(reply.Payload);
                }
            }
        }

        async Task<ErrorMessage> Send(string topic, byte[] payload) => Assert.IsType<ErrorMessage>(await Request(topic, payload));

        var prompt = models.Target.Tokenize("Once upon a time");
        var random = new byte[64];
        new Random(3).NextBytes(random);
        Assert.Equal(ProtocolErrorCode.Malformed, (await Send(pool, random)).Code);
        var wrongVersion = ProtocolCodec.Encode(new CloseSessionMessage("x"));
        wrongVersion[2] = 7;
        Assert.Equal(ProtocolErrorCode.UnsupportedVersion, (await Send(instance, wrongVersion)).Code);
        var open = ProtocolCodec.Encode(new OpenSessionMessage("stories260K", "raw", string.Empty, SamplingSettings.Greedy, prompt));
        Assert.Equal(ProtocolErrorCode.Malformed, (await Send(pool, open[..(open.Length - 2)])).Code);
        Assert.Equal(ProtocolErrorCode.Oversize, (await Send(pool, new byte[ProtocolCodec.MaxPayloadBytes + 10])).Code);
        Assert.Equal(ProtocolErrorCode.UnknownTarget,
            (await Send(pool, ProtocolCodec.Encode(new OpenSessionMessage("llama-70b", "raw", string.Empty, SamplingSettings.Greedy, prompt)))).Code);
        var badToken = await Send(instance, ProtocolCodec.Encode(new VerifyMessage("nope", 1, 5, [-4], null)));
        Assert.Equal(ProtocolErrorCode.UnknownSession, badToken.Code);
        Assert.Equal(ProtocolErrorCode.VocabularyMismatch,
            (await Send(pool, ProtocolCodec.Encode(new OpenSessionMessage("stories260K", "raw", new string('0', 64), SamplingSettings.Greedy, prompt)))).Code);

        // A real session: negative and out-of-range tokens, skipped rounds and long drafts are refused by code.
        var opened = Assert.IsType<SessionOpenedMessage>(await Request(pool, open));
        Assert.Equal("replica-b", opened.InstanceId);
        var s = opened.SessionId;
        Assert.Equal(ProtocolErrorCode.InvalidToken, (await Send(instance, ProtocolCodec.Encode(new VerifyMessage(s, 1, prompt.Length, [-4], null)))).Code);
        Assert.Equal(ProtocolErrorCode.InvalidToken, (await Send(instance, ProtocolCodec.Encode(new VerifyMessage(s, 1, prompt.Length, [512], null)))).Code);
        Assert.Equal(ProtocolErrorCode.BadRound, (await Send(instance, ProtocolCodec.Encode(new VerifyMessage(s, 2, prompt.Length, [5], null)))).Code);
        Assert.Equal(ProtocolErrorCode.BadRound, (await Send(instance, ProtocolCodec.Encode(new VerifyMessage(s, 0, prompt.Length, [5], null)))).Code);
        Assert.Equal(ProtocolErrorCode.DraftTooLong, (await Send(instance, ProtocolCodec.Encode(new VerifyMessage(s, 1, prompt.Length, new int[40], null)))).Code);

        Assert.Equal(2, server.ErrorCounts[ProtocolErrorCode.Malformed]);
        Assert.Equal(2, server.ErrorCounts[ProtocolErrorCode.InvalidToken]);
        Assert.Equal(2, server.ErrorCounts[ProtocolErrorCode.BadRound]);
        // Logged once per kind, counted every time.
        var refusals = _log.Entries.Where(e => e.Id.Id == 110).ToList();
        Assert.Equal(server.ErrorCounts.Count, refusals.Count);
        Assert.Single(refusals, r => r.Message.Contains("(InvalidToken)", StringComparison.Ordinal));

        // Everyone else is still served.
        var (mqtt, verifier) = await StartBoard("board-after-junk");
        var options = new GenerationOptions { DraftLength = 4, MaxTokens = 40, ContextLength = 256 };
        var result = await new SpeculativeGenerator(verifier, models.Drafts["stories260K-Q8_0.gguf"]).GenerateAsync(prompt, options, models.Target);
        var local = await LocalGeneration.RunAsync(models.Target, null, prompt, options with { DraftLength = 0 });
        Assert.Equal(local.Tokens, result.Tokens);

        await verifier.DisposeAsync();
        await mqtt.DisposeAsync();
        await server.DisposeAsync();
        await engine.DisposeAsync();
    }

    [Fact]
    public async Task Boards_whose_sessions_are_evicted_reopen_transparently_over_mqtt()
    {
        var (engine, server) = await StartReplica("replica-e", maxSessions: 1);
        var options = new GenerationOptions { DraftLength = 4, MaxTokens = 60, ContextLength = 256 };
        var bothOpen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var opened = 0;
        var boards = await Task.WhenAll(new[] { "Once upon a time", "The little dog" }.Select((prompt, i) => Task.Run(async () =>
        {
            var (mqtt, verifier) = await StartBoard($"evict-board{i}");
            // Neither board verifies before both have opened, so the second open evicts the first for certain.
            var gated = new OpenBarrier(verifier, () =>
            {
                if (Interlocked.Increment(ref opened) == 2)
                {
                    bothOpen.TrySetResult();
                }

                return bothOpen.Task;
            });
            var result = await new SpeculativeGenerator(gated, models.Drafts["stories260K-Q8_0.gguf"]).GenerateAsync(models.Target.Tokenize(prompt), options, models.Target);
            var reopened = verifier.Reopened;
            await verifier.DisposeAsync();
            await mqtt.DisposeAsync();
            return (prompt, result, reopened);
        })));

        foreach (var (prompt, result, _) in boards)
        {
            var local = await LocalGeneration.RunAsync(models.Target, null, models.Target.Tokenize(prompt), options with { DraftLength = 0 });
            Assert.Equal(local.Tokens, result.Tokens);
        }

        Assert.True(boards.Sum(b => b.reopened) > 0, "two boards on one session slot never evicted each other");
        await server.DisposeAsync();
        await engine.DisposeAsync();
    }

    [Fact]
    public async Task Status_is_retained_online_and_offline_after_a_clean_stop()
    {
        var (engine, server) = await StartReplica("replica-c");
        await using var watcher = new MqttClient(Broker());
        await watcher.ConnectAsync();
        await watcher.SubscribeAsync(Topics.Status("replica-c"));
        var online = await watcher.Messages.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("\"online\"", Encoding.UTF8.GetString(online.Payload), StringComparison.Ordinal);
        await server.DisposeAsync();
        var offline = await watcher.Messages.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("\"offline\"", Encoding.UTF8.GetString(offline.Payload), StringComparison.Ordinal);
        await engine.DisposeAsync();
    }

    public void Dispose() => _broker.Dispose();

    private sealed class OpenBarrier(IVerifier inner, Func<Task> afterFirstOpen) : IVerifier
    {
        private bool _opened;

        public async ValueTask<SessionInfo> OpenAsync(OpenSessionRequest request, CancellationToken cancellationToken = default)
        {
            var info = await inner.OpenAsync(request, cancellationToken);
            if (!_opened)
            {
                _opened = true;
                await afterFirstOpen();
            }

            return info;
        }

        public ValueTask<VerifyResult> VerifyAsync(VerifyRequest request, CancellationToken cancellationToken = default) => inner.VerifyAsync(request, cancellationToken);

        public ValueTask CloseAsync(string sessionId, CancellationToken cancellationToken = default) => inner.CloseAsync(sessionId, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

[Collection(ModelGroup.Name)]
public sealed class EdgeRemoteCliTests(ModelFixture models) : IDisposable
{
    private readonly MosquittoBroker _broker = new();

    [Fact]
    public async Task Generate_with_verifier_prints_the_tokens_of_local_verification()
    {
        await using var engine = new VerifierEngine(models.Target, new VerifierOptions { ContextLength = 512, MaxSessions = 2, InstanceId = "cli-replica" });
        await using var server = new MqttVerifierServer(engine, new MqttClientOptions { Broker = _broker.Uri }, "stories260K");
        await server.StartAsync();

        async Task<System.Text.Json.JsonElement> Run(params string[] args)
        {
            using var output = new StringWriter();
            using var error = new StringWriter();
            var exit = await ConfigSpec.Edge.Cli.EdgeCli.RunAsync(args, output, error);
            Assert.True(exit == 0, error.ToString());
            return System.Text.Json.JsonDocument.Parse(output.ToString()).RootElement.Clone();
        }

        string[] common = ["generate", "--draft", TestEnvironment.Model("stories260K-Q4_K_M.gguf"), "--k", "4", "--max-tokens", "80", "--prompt", "Once upon a time", "--json"];
        var remote = await Run([.. common, "--verifier", _broker.Uri.ToString(), "--target-id", "stories260K", "--device-id", "cli-board"]);
        var local = await Run([.. common, "--target", TestEnvironment.Model("stories260K.gguf")]);
        Assert.Equal(local.GetProperty("text").GetString(), remote.GetProperty("text").GetString());
        Assert.Equal(local.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()), remote.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()));
        Assert.True(engine.Usage.ContainsKey("cli-board"));

        using var error = new StringWriter();
        var bad = await ConfigSpec.Edge.Cli.EdgeCli.RunAsync([.. common, "--verifier", _broker.Uri.ToString()], TextWriter.Null, error);
        Assert.Equal(2, bad);
        Assert.Contains("--verifier needs --target-id", error.ToString(), StringComparison.Ordinal);
    }

    public void Dispose() => _broker.Dispose();
}
