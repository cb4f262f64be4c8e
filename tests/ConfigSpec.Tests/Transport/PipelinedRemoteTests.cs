using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Sampling;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Remote;

namespace ConfigSpec.Tests.Transport;

/// <summary>Pipelined speculation (several blocks in flight per session) through a real mosquitto and the MQTT verifier.</summary>
[Collection(ModelGroup.Name)]
public sealed class PipelinedRemoteTests(ModelFixture models) : IDisposable
{
    private readonly MosquittoBroker _broker = new();
    private readonly ListLogger _log = new();

    private MqttClientOptions Broker(string id) => new() { Broker = _broker.Uri, ClientId = id };

    private async Task<(VerifierEngine Engine, MqttVerifierServer Server)> StartReplica(string instance, int maxPipeline = 8, byte protocol = 2)
    {
        var engine = new VerifierEngine(models.Target, new VerifierOptions
        {
            ContextLength = 256, MaxSessions = 8, BatchWindow = TimeSpan.FromMilliseconds(2), InstanceId = instance, MaxPipeline = maxPipeline,
        });
        var server = new MqttVerifierServer(engine, Broker(instance), "stories260K", _log) { ProtocolVersion = protocol };
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

    private static GenerationOptions Options(int k, int d, SamplingSettings? sampling = null) =>
        new() { DraftLength = k, MaxTokens = 120, ContextLength = 256, Pipeline = d, Sampling = sampling ?? SamplingSettings.Greedy };

    /// <summary>
    /// Verdicts delayed at random (0–25 ms each, so they complete out of the order they were sent in) over the real broker:
    /// greedy output equals sequential decoding, sampled output with D = 2 equals the same seed in process, several blocks
    /// really were in flight, and blocks after cuts were discarded.
    /// </summary>
    [Fact]
    public async Task Pipelined_rounds_through_the_broker_with_slow_out_of_order_verdicts_give_the_sequential_output()
    {
        var (engine, server) = await StartReplica("pipe-a");
        var (mqtt, verifier) = await StartBoard("pipe-board");
        var draft = models.Drafts["stories260K-Q4_0.gguf"];
        var prompt = models.Target.Tokenize("Once upon a time");
        var slow = new JitterVerifier(verifier, 25);
        foreach (var (k, d) in new[] { (1, 3), (4, 2), (4, 3), (8, 3) })
        {
            var sequential = await LocalGeneration.RunAsync(models.Target, draft, prompt, Options(k, 1));
            var pipelined = await new SpeculativeGenerator(slow, draft).GenerateAsync(prompt, Options(k, d), models.Target);
            Assert.Equal(sequential.Tokens, pipelined.Tokens);
            Assert.Equal(d, pipelined.Pipeline);
            Assert.True(pipelined.DiscardedTokens > 0, $"K={k} D={d}: no block was discarded, so no cut happened with blocks in flight");
            Assert.Null(pipelined.PipelineNote);
        }

        Assert.True(slow.OutOfOrder > 0, "no verdict completed before an earlier one: the jitter did not reorder anything");
        var sampling = new SamplingSettings(0.9f, 30, 5);
        var local = await LocalGeneration.RunAsync(models.Target, draft, prompt, Options(4, 2, sampling));
        var remote = await new SpeculativeGenerator(slow, draft).GenerateAsync(prompt, Options(4, 2, sampling), models.Target);
        Assert.Equal(local.Tokens, remote.Tokens);
        Assert.Equal(0, verifier.Reopened);
        Assert.True(server.ErrorCounts.GetValueOrDefault(ConfigSpec.Transport.Protocol.ProtocolErrorCode.Superseded) > 0, "no chained block was dropped by the verifier");

        await verifier.DisposeAsync();
        await mqtt.DisposeAsync();
        await server.DisposeAsync();
        await engine.DisposeAsync();
    }

    /// <summary>A replica stopped with blocks in flight: the board re-opens on the other one with its committed context and the output is unchanged.</summary>
    [Fact]
    public async Task A_replica_stopped_with_blocks_in_flight_is_replaced_and_output_is_unchanged()
    {
        var (engineA, serverA) = await StartReplica("pipe-kill-a");
        var (mqtt, verifier) = await StartBoard("pipe-kill-board");
        var draft = models.Drafts["stories260K-Q8_0.gguf"];
        var prompt = models.Target.Tokenize("Once upon a time");
        var expected = await LocalGeneration.RunAsync(models.Target, draft, prompt, Options(4, 1));
        var slow = new JitterVerifier(verifier, 10);
        var produced = 0;
        var stopped = new TaskCompletionSource();
        var options = Options(4, 3) with
        {
            OnTokens = t =>
            {
                if ((produced += t.Count) >= 30)
                {
                    stopped.TrySetResult();
                }
            },
        };
        var generator = new SpeculativeGenerator(slow, draft);
        var generation = generator.GenerateAsync(prompt, options, models.Target);
        await stopped.Task.WaitAsync(TimeSpan.FromSeconds(60));
        var (engineB, serverB) = await StartReplica("pipe-kill-b");
        await serverA.StopAsync();
        var result = await generation.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(expected.Tokens, result.Tokens);
        Assert.True(engineB.Usage["pipe-kill-board"].Rounds > 0, "the second replica verified nothing");
        Assert.True(generator.Reopened >= 1, "the board never re-opened its session");

        await verifier.DisposeAsync();
        await mqtt.DisposeAsync();
        await serverA.DisposeAsync();
        await serverB.DisposeAsync();
        await engineA.DisposeAsync();
        await engineB.DisposeAsync();
    }

    /// <summary>
    /// The board's session is evicted (another board takes the verifier's only slot) while it has blocks in flight: every
    /// block in flight is refused, the board re-opens with its committed context and the output is unchanged.
    /// </summary>
    [Fact]
    public async Task A_session_evicted_with_blocks_in_flight_is_reopened_and_output_is_unchanged()
    {
        var engine = new VerifierEngine(models.Target, new VerifierOptions
        {
            ContextLength = 256, MaxSessions = 1, BatchWindow = TimeSpan.FromMilliseconds(2), InstanceId = "pipe-evict", MaxPipeline = 8,
        });
        var server = new MqttVerifierServer(engine, Broker("pipe-evict"), "stories260K", _log);
        await server.StartAsync();
        var (mqtt, verifier) = await StartBoard("pipe-evict-board");
        var (otherMqtt, other) = await StartBoard("pipe-evict-other");
        var draft = models.Drafts["stories260K-Q8_0.gguf"];
        var prompt = models.Target.Tokenize("Once upon a time");
        var expected = await LocalGeneration.RunAsync(models.Target, draft, prompt, Options(4, 1));
        var slow = new JitterVerifier(verifier, 10);
        var produced = 0;
        var halfway = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var options = Options(4, 3) with
        {
            OnTokens = t =>
            {
                if ((produced += t.Count) >= 30)
                {
                    halfway.TrySetResult();
                }
            },
        };
        var generator = new SpeculativeGenerator(slow, draft);
        var generation = generator.GenerateAsync(prompt, options, models.Target);
        await halfway.Task.WaitAsync(TimeSpan.FromSeconds(60));
        // Take the slot while blocks are in flight (there almost always are; between a cut and the next block there may be none).
        for (var i = 0; i < 500 && slow.Pending == 0; i++)
        {
            await Task.Delay(1);
        }

        await other.OpenAsync(new OpenSessionRequest(models.Target.Tokenize("The little dog"), SamplingSettings.Greedy, null, DeviceId: "pipe-evict-other"));
        var result = await generation.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(expected.Tokens, result.Tokens);
        // A block refused as evicted was in flight when the slot was taken (or sent before the board heard of it).
        Assert.True(server.ErrorCounts.GetValueOrDefault(ConfigSpec.Transport.Protocol.ProtocolErrorCode.SessionEvicted) >= 1, "no block was refused as evicted");
        Assert.True(generator.Reopened >= 1, "the board never re-opened its session");
        Assert.Equal(3, result.Pipeline);

        await other.DisposeAsync();
        await otherMqtt.DisposeAsync();
        await verifier.DisposeAsync();
        await mqtt.DisposeAsync();
        await server.DisposeAsync();
        await engine.DisposeAsync();
    }

    /// <summary>
    /// Verdicts that come back for blocks the board has already discarded (it applied a cut and started a new chain before
    /// they arrived: the verifier's refusals of dropped blocks, held here so they arrive late) change nothing.
    /// </summary>
    [Fact]
    public async Task Verdicts_for_blocks_the_board_already_discarded_are_ignored()
    {
        var (engine, server) = await StartReplica("pipe-late");
        var (mqtt, verifier) = await StartBoard("pipe-late-board");
        var draft = models.Drafts["stories260K-Q4_0.gguf"];
        var prompt = models.Target.Tokenize("Once upon a time");
        var late = new LateChainVerifier(verifier, TimeSpan.FromMilliseconds(40));
        foreach (var (k, d) in new[] { (2, 4), (4, 3) })
        {
            var sequential = await LocalGeneration.RunAsync(models.Target, draft, prompt, Options(k, 1));
            var pipelined = await new SpeculativeGenerator(late, draft).GenerateAsync(prompt, Options(k, d), models.Target);
            Assert.Equal(sequential.Tokens, pipelined.Tokens);
        }

        Assert.True(late.ForDiscarded > 0, "no verdict arrived after the board had discarded its block");
        Assert.Equal(0, verifier.Reopened);

        await verifier.DisposeAsync();
        await mqtt.DisposeAsync();
        await server.DisposeAsync();
        await engine.DisposeAsync();
    }

    /// <summary>A verifier allowing fewer blocks than asked grants what it allows and says so; one of protocol version 1 gets sequential rounds.</summary>
    [Theory]
    [InlineData(2, 2, "the verifier allows 2 blocks in flight, not 5; using 2")]
    [InlineData(1, 2, "the verifier allows 1 block in flight, not 5; using 1")]
    [InlineData(8, 1, "the verifier allows 1 block in flight, not 5; using 1")]
    public async Task A_pipeline_deeper_than_the_verifier_allows_falls_back_with_a_reason(int maxPipeline, byte protocol, string note)
    {
        var (engine, server) = await StartReplica($"pipe-limit-{maxPipeline}-{protocol}", maxPipeline, protocol);
        var (mqtt, verifier) = await StartBoard($"pipe-limit-board-{maxPipeline}-{protocol}");
        var draft = models.Drafts["stories260K-Q4_0.gguf"];
        var prompt = models.Target.Tokenize("Once upon a time");
        var expected = await LocalGeneration.RunAsync(models.Target, draft, prompt, Options(4, 1));
        var result = await new SpeculativeGenerator(new JitterVerifier(verifier, 5), draft).GenerateAsync(prompt, Options(4, 5), models.Target);
        Assert.Equal(expected.Tokens, result.Tokens);
        Assert.Equal(note, result.PipelineNote);
        Assert.InRange(result.Pipeline, 1, Math.Min(maxPipeline, protocol == 1 ? 1 : 8));
        if (protocol == 1)
        {
            Assert.True(server.ErrorCounts.GetValueOrDefault(ConfigSpec.Transport.Protocol.ProtocolErrorCode.UnsupportedVersion) >= 1, "the version 1 verifier never saw a version 2 open");
        }

        await verifier.DisposeAsync();
        await mqtt.DisposeAsync();
        await server.DisposeAsync();
        await engine.DisposeAsync();
    }

    public void Dispose() => _broker.Dispose();

    /// <summary>
    /// Holds the verdicts of chained blocks for a while, so a cut of the block before is applied first; counts the verdicts
    /// that complete after the board started a new chain below their round (it had discarded them).
    /// </summary>
    private sealed class LateChainVerifier(IVerifier inner, TimeSpan hold) : IVerifier
    {
        private readonly Lock _gate = new();
        private readonly HashSet<int> _pending = [];
        private readonly HashSet<int> _discarded = [];
        private int _forDiscarded;

        public int ForDiscarded => Volatile.Read(ref _forDiscarded);

        public ValueTask<SessionInfo> OpenAsync(OpenSessionRequest request, CancellationToken cancellationToken = default) => inner.OpenAsync(request, cancellationToken);

        public async ValueTask<VerifyResult> VerifyAsync(VerifyRequest request, CancellationToken cancellationToken = default)
        {
            lock (_gate)
            {
                if (request.Round == 1)
                {
                    _pending.Clear();
                    _discarded.Clear();
                }

                if (!request.Chained)
                {
                    // A new chain from the last verified round: every block still pending above it was discarded.
                    _discarded.UnionWith(_pending.Where(r => r > request.Base));
                }

                _pending.Add(request.Round);
            }

            try
            {
                return await inner.VerifyAsync(request, cancellationToken);
            }
            finally
            {
                if (request.Chained)
                {
                    await Task.Delay(hold, CancellationToken.None);
                }

                lock (_gate)
                {
                    _pending.Remove(request.Round);
                    if (_discarded.Remove(request.Round))
                    {
                        _forDiscarded++;
                    }
                }
            }
        }

        public ValueTask CloseAsync(string sessionId, CancellationToken cancellationToken = default) => inner.CloseAsync(sessionId, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>Holds each verdict for a random time, so later blocks' verdicts often complete before earlier ones.</summary>
    private sealed class JitterVerifier(IVerifier inner, int maxMilliseconds) : IVerifier
    {
        private readonly Random _random = new(17);
        private long _lastRound;
        private int _pending;

        public int OutOfOrder { get; private set; }

        /// <summary>Verdicts asked for and not yet returned: blocks in flight.</summary>
        public int Pending => Volatile.Read(ref _pending);

        public ValueTask<SessionInfo> OpenAsync(OpenSessionRequest request, CancellationToken cancellationToken = default) => inner.OpenAsync(request, cancellationToken);

        public async ValueTask<VerifyResult> VerifyAsync(VerifyRequest request, CancellationToken cancellationToken = default)
        {
            int delay;
            lock (_random)
            {
                delay = _random.Next(0, maxMilliseconds + 1);
            }

            Interlocked.Increment(ref _pending);
            VerifyResult result;
            try
            {
                result = await inner.VerifyAsync(request, cancellationToken);
                await Task.Delay(delay, cancellationToken);
            }
            finally
            {
                Interlocked.Decrement(ref _pending);
            }

            lock (_random)
            {
                if (request.Round < _lastRound)
                {
                    OutOfOrder++;
                }

                _lastRound = request.Round;
            }

            return result;
        }

        public ValueTask CloseAsync(string sessionId, CancellationToken cancellationToken = default) => inner.CloseAsync(sessionId, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
