using System.Diagnostics;
using System.Globalization;
using System.Text;
using ConfigSpec.Fleet;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;

namespace ConfigSpec.Tests.Fleet;

/// <summary>The shipped broker set-up (hw/mosquitto): TLS, a password per board, and an ACL keeping each board to its own topics.</summary>
public sealed class BrokerAclTests : IDisposable
{
    private readonly string _dir = TestEnvironment.NewTemporaryDirectory();
    private readonly int _port = MosquittoBroker.FreePort();
    private readonly Process _broker;

    public BrokerAclTests()
    {
        var setup = Process.Start(new ProcessStartInfo("bash")
        {
            ArgumentList =
            {
                Path.Combine(TestEnvironment.RepositoryRoot, "hw", "mosquitto", "setup-broker.sh"), _dir, "--port", _port.ToString(CultureInfo.InvariantCulture),
                "--bind", "127.0.0.1", "--user", "pi-a:secret-a", "--user", "pi-b:secret-b", "--user", "aggregator:secret-agg",
            },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        setup.WaitForExit();
        Assert.True(setup.ExitCode == 0, setup.StandardError.ReadToEnd());
        _broker = Process.Start(new ProcessStartInfo(File.Exists("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : "mosquitto")
        {
            ArgumentList = { "-c", Path.Combine(_dir, "mosquitto.conf"), "-v" },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        _broker.ErrorDataReceived += (_, e) => Log(e.Data);
        _broker.OutputDataReceived += (_, e) => Log(e.Data);
        _broker.BeginErrorReadLine();
        _broker.BeginOutputReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var probe = new System.Net.Sockets.TcpClient();
                probe.Connect(System.Net.IPAddress.Loopback, _port);
                return;
            }
            catch (System.Net.Sockets.SocketException)
            {
                Assert.False(_broker.HasExited, "mosquitto exited: " + BrokerLog);
                Thread.Sleep(50);
            }
        }
    }

    private readonly StringBuilder _log = new();

    private string BrokerLog
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    private void Log(string? line)
    {
        lock (_log)
        {
            _log.AppendLine(line);
        }
    }

    private MqttClient Client(string? user, string? password) => new(new MqttClientOptions
    {
        Broker = new Uri($"mqtts://127.0.0.1:{_port}"),
        CaFile = Path.Combine(_dir, "ca.crt"),
        Username = user,
        Password = password,
        ClientId = (user ?? "anon") + "-" + Guid.NewGuid().ToString("N")[..6],
        ConnectTimeout = TimeSpan.FromSeconds(5),
    });

    [Fact]
    public async Task Each_board_reaches_only_its_own_topics()
    {
        await using var aggregator = Client("aggregator", "secret-agg");
        await ConnectWithRetryAsync(aggregator);
        await aggregator.SubscribeAsync(FleetTopics.AggregatorSubscriptions[0], 1); // +/status
        await using var a = Client("pi-a", "secret-a");
        await ConnectWithRetryAsync(a);
        await a.SubscribeAsync(FleetTopics.Command("pi-a"), 1);
        await a.SubscribeAsync(FleetTopics.Command("pi-b"), 1); // refused by the ACL: nothing arrives

        // MQTT 5 tells the publisher: the broker's PUBACK says "not authorized".
        var refused = await Assert.ThrowsAsync<MqttRefusedException>(() => a.PublishAsync(FleetTopics.Status("pi-b"), Encoding.UTF8.GetBytes("forged"), 1));
        Assert.Contains("refused the publish to 'configspec/v1/edge/pi-b/status': not authorized", refused.Message, StringComparison.Ordinal);
        await a.PublishAsync(FleetTopics.Status("pi-a"), Encoding.UTF8.GetBytes("own"), 1);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var received = await aggregator.Messages.ReadAsync(cts.Token);
        Assert.Equal((FleetTopics.Status("pi-a"), "own"), (received.Topic, Encoding.UTF8.GetString(received.Payload)));

        await aggregator.PublishAsync(FleetTopics.Command("pi-b"), "{\"command\":\"reprofile\"}", 1);
        await aggregator.PublishAsync(FleetTopics.Command("pi-a"), "{\"command\":\"reprofile\"}", 1);
        var command = await a.Messages.ReadAsync(cts.Token);
        Assert.Equal(FleetTopics.Command("pi-a"), command.Topic);
        await Task.Delay(500);
        Assert.False(a.Messages.TryRead(out var extra), $"pi-a also received {extra?.Topic}");
        Assert.False(aggregator.Messages.TryRead(out var forged), $"the forged status reached the aggregator: {forged?.Topic}");
    }

    [Fact]
    public async Task Anonymous_clients_and_wrong_passwords_are_refused()
    {
        await using (var probe = Client("aggregator", "secret-agg"))
        {
            await ConnectWithRetryAsync(probe);
        }

        await using var anonymous = Client(null, null);
        await Assert.ThrowsAsync<MqttException>(() => anonymous.ConnectAsync());
        await using var wrong = Client("pi-a", "secret-b");
        await Assert.ThrowsAsync<MqttException>(() => wrong.ConnectAsync());
    }

    private async Task ConnectWithRetryAsync(MqttClient client)
    {
        try
        {
            await client.ConnectAsync();
        }
        catch (MqttException ex)
        {
            throw new InvalidOperationException($"{ex.Message}; broker log:\n{BrokerLog}", ex);
        }
    }

    public void Dispose()
    {
        if (!_broker.HasExited)
        {
            _broker.Kill();
            _broker.WaitForExit();
        }

        _broker.Dispose();
    }
}
