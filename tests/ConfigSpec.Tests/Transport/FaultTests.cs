using System.Text;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Sampling;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Protocol;
using ConfigSpec.Transport.Remote;

namespace ConfigSpec.Tests.Transport;

/// <summary>Faults a fleet produces: a replica killed mid-run, the broker restarted mid-run, a replica stopped by SIGTERM.</summary>
[Collection(ModelGroup.Name)]
public sealed class FaultTests(ModelFixture models) : IDisposable
{
    private readonly MosquittoBroker _broker = new();

    private async Task WaitOnline(params string[] instances)
    {
        await using var watcher = new MqttClient(new MqttClientOptions { Broker = _broker.Uri });
        await watcher.ConnectAsync();
        await watcher.SubscribeAsync(Topics.AllStatus);
        var waiting = new HashSet<string>(instances);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (waiting.Count > 0)
        {
            var message = await watcher.Messages.ReadAsync().AsTask().WaitAsync(deadline - DateTime.UtcNow);
            if (Encoding.UTF8.GetString(message.Payload).Contains("\"online\"", StringComparison.Ordinal))
            {
                waiting.Remove(Topics.InstanceOfStatus(message.Topic)!);
            }
        }
    }

    private async Task<GenerationResult[]> RunBoards(int maxTokens, Action<int> onRound)
    {
        var rounds = 0;
        var options = new GenerationOptions { DraftLength = 4, MaxTokens = maxTokens, ContextLength = 512 };
        var boards = DeterminismPrompts.All.Select((prompt, i) => Task.Run(async () =>
        {
            await using var client = await MqttVerifierClient.ConnectAsync(
                new MqttClientOptions { Broker = _broker.Uri, ReconnectDelay = TimeSpan.FromSeconds(1), ReconnectDelayMax = TimeSpan.FromSeconds(1) },
                new RemoteVerifierOptions { TargetId = "stories260K", DeviceId = $"board{i}", RequestTimeout = TimeSpan.FromSeconds(1), Attempts = 30 });
            var counting = new CountingVerifier(client, () => onRound(Interlocked.Increment(ref rounds)));
            return await new SpeculativeGenerator(counting, models.Drafts["stories260K-prune4-F32.gguf"])
                .GenerateAsync(models.Target.Tokenize(prompt), options with { DeviceId = $"board{i}" }, models.Target);
        })).ToArray();
        return await Task.WhenAll(boards).WaitAsync(TimeSpan.FromMinutes(3));
    }

    private async Task AssertIdenticalToLocal(GenerationResult[] results, int maxTokens)
    {
        for (var i = 0; i < DeterminismPrompts.All.Length; i++)
        {
            var local = await LocalGeneration.RunAsync(models.Target, null, models.Target.Tokenize(DeterminismPrompts.All[i]),
                new GenerationOptions { DraftLength = 0, MaxTokens = maxTokens, ContextLength = 512 });
            Assert.Equal(local.Tokens, results[i].Tokens);
        }
    }

    [Fact]
    public async Task Eight_boards_finish_identically_when_one_of_two_replicas_is_killed_mid_run()
    {
        using var a = new VerifierProcess("replica-a", _broker.Uri);
        using var b = new VerifierProcess("replica-b", _broker.Uri);
        await WaitOnline("replica-a", "replica-b");
        await using var watcher = new MqttClient(new MqttClientOptions { Broker = _broker.Uri });
        await watcher.ConnectAsync();
        await watcher.SubscribeAsync(Topics.Status("replica-a"));
        var killed = 0;
        var results = await RunBoards(300, round =>
        {
            if (round == 120 && Interlocked.Exchange(ref killed, 1) == 0)
            {
                a.KillHard();
            }
        });

        Assert.Equal(1, killed);
        Assert.True(a.HasExited);

        // The broker published replica-a's last will: retained online first, then offline.
        var states = new List<string>();
        while (watcher.Messages.TryRead(out var status))
        {
            states.Add(Encoding.UTF8.GetString(status.Payload));
        }

        Assert.Contains(states, s => s.Contains("\"offline\"", StringComparison.Ordinal));
        Assert.False(b.HasExited, b.Log);
        await AssertIdenticalToLocal(results, 300);
    }

    [Fact]
    public async Task Boards_and_replica_reconnect_and_finish_when_the_broker_restarts_mid_run()
    {
        await using var engine = new VerifierEngine(models.Target, new VerifierOptions
        {
            ContextLength = 512, MaxSessions = 8, BatchWindow = TimeSpan.FromMilliseconds(2), InstanceId = "replica-r",
        });
        await using var server = new MqttVerifierServer(engine,
            new MqttClientOptions { Broker = _broker.Uri, ReconnectDelay = TimeSpan.FromSeconds(1), ReconnectDelayMax = TimeSpan.FromSeconds(1) }, "stories260K");
        await server.StartAsync();
        Task? restart = null;
        var results = await RunBoards(200, round =>
        {
            if (round == 100)
            {
                restart = Task.Run(async () =>
                {
                    _broker.Stop();
                    await Task.Delay(300);
                    _broker.Start();
                });
            }
        });

        Assert.NotNull(restart);
        await restart;
        await AssertIdenticalToLocal(results, 200);
    }

    [Fact]
    public async Task Sigterm_publishes_offline_and_exits_cleanly()
    {
        using var replica = new VerifierProcess("replica-t", _broker.Uri);
        await WaitOnline("replica-t");
        await using var watcher = new MqttClient(new MqttClientOptions { Broker = _broker.Uri });
        await watcher.ConnectAsync();
        await watcher.SubscribeAsync(Topics.Status("replica-t"));
        _ = await watcher.Messages.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)); // retained online
        replica.Terminate();
        var offline = await watcher.Messages.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Contains("\"offline\"", Encoding.UTF8.GetString(offline.Payload), StringComparison.Ordinal);
        Assert.True(replica.WaitForExit(TimeSpan.FromSeconds(20)), replica.Log);
        Assert.Equal(0, replica.ExitCode);
    }

    [Fact]
    public async Task Verifier_refuses_a_bad_setting_with_one_line()
    {
        using var replica = new VerifierProcess("replica-x", _broker.Uri, "--max-sessions", "0");
        Assert.True(replica.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.Equal(2, replica.ExitCode);
        Assert.Contains("--max-sessions 0 is out of range", replica.Log, StringComparison.Ordinal);
    }

    public void Dispose() => _broker.Dispose();

    private sealed class CountingVerifier(IVerifier inner, Action onRound) : IVerifier
    {
        public ValueTask<SessionInfo> OpenAsync(OpenSessionRequest request, CancellationToken cancellationToken = default) => inner.OpenAsync(request, cancellationToken);

        public ValueTask<VerifyResult> VerifyAsync(VerifyRequest request, CancellationToken cancellationToken = default)
        {
            onRound();
            return inner.VerifyAsync(request, cancellationToken);
        }

        public ValueTask CloseAsync(string sessionId, CancellationToken cancellationToken = default) => inner.CloseAsync(sessionId, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
