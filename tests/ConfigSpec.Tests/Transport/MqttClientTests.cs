using System.Text;
using ConfigSpec.Interop;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;

namespace ConfigSpec.Tests.Transport;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class MqttClientTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly MosquittoBroker _broker = new();

    private async Task<MqttClient> Connect(string? id = null, MqttLastWill? will = null)
    {
        var client = new MqttClient(new MqttClientOptions
        {
            Broker = _broker.Uri,
            ClientId = id ?? "test-" + Guid.NewGuid().ToString("N")[..8],
            LastWill = will,
            ReconnectDelay = TimeSpan.FromSeconds(1),
            ReconnectDelayMax = TimeSpan.FromSeconds(2),
        });
        await client.ConnectAsync();
        return client;
    }

    private static async Task<MqttMessage> Next(MqttClient client) =>
        await client.Messages.ReadAsync().AsTask().WaitAsync(Wait);

    [Fact]
    public async Task Publishes_and_receives_at_qos_0_and_1()
    {
        await using var a = await Connect();
        await using var b = await Connect();
        await b.SubscribeAsync("t/+/x", qos: 1);
        await a.PublishAsync("t/1/x", "zero", qos: 0);
        await a.PublishAsync("t/2/x", "one", qos: 1);
        var first = await Next(b);
        var second = await Next(b);
        Assert.Equal(["zero", "one"], new[] { first, second }.Select(m => Encoding.UTF8.GetString(m.Payload)));
        Assert.Equal("t/2/x", second.Topic);
        Assert.Equal(1, second.Qos);
    }

    [Fact]
    public async Task Retained_message_reaches_a_later_subscriber()
    {
        await using var a = await Connect();
        await a.PublishAsync("status/replica", "online", qos: 1, retain: true);
        await using var late = await Connect();
        await late.SubscribeAsync("status/#");
        var message = await Next(late);
        Assert.True(message.Retain);
        Assert.Equal("online", Encoding.UTF8.GetString(message.Payload));
    }

    [Fact]
    public async Task Response_topic_and_correlation_data_travel_with_a_request()
    {
        await using var server = await Connect();
        await using var requester = await Connect();
        await server.SubscribeAsync("svc/request");
        await requester.SubscribeAsync("edge/me/reply");
        byte[] correlation = [1, 2, 3, 250];
        await requester.PublishAsync("svc/request", new byte[] { 42 }, 1, false, new MqttPublishProperties("edge/me/reply", correlation, 30));

        var request = await Next(server);
        Assert.Equal("edge/me/reply", request.ResponseTopic);
        Assert.Equal(correlation, request.CorrelationData);
        await server.PublishAsync(request.ResponseTopic!, new byte[] { 43 }, 1, false, new MqttPublishProperties(CorrelationData: request.CorrelationData));

        var reply = await Next(requester);
        Assert.Equal(correlation, reply.CorrelationData);
        Assert.Equal([43], reply.Payload);
    }

    [Fact]
    public async Task Shared_subscription_delivers_each_message_to_exactly_one_member()
    {
        await using var one = await Connect();
        await using var two = await Connect();
        await using var producer = await Connect();
        await one.SubscribeAsync("$share/workers/jobs", 1);
        await two.SubscribeAsync("$share/workers/jobs", 1);
        for (var i = 0; i < 40; i++)
        {
            await producer.PublishAsync("jobs", i.ToString(System.Globalization.CultureInfo.InvariantCulture), 1);
        }

        var seen = new List<int>();
        var perMember = new int[2];
        var deadline = DateTime.UtcNow + Wait;
        while (seen.Count < 40 && DateTime.UtcNow < deadline)
        {
            foreach (var (member, index) in new[] { (one, 0), (two, 1) })
            {
                while (member.Messages.TryRead(out var m))
                {
                    seen.Add(int.Parse(Encoding.UTF8.GetString(m.Payload), System.Globalization.CultureInfo.InvariantCulture));
                    perMember[index]++;
                }
            }

            await Task.Delay(10);
        }

        Assert.Equal(Enumerable.Range(0, 40), seen.Order());
        Assert.True(perMember[0] > 0 && perMember[1] > 0, $"split {perMember[0]}/{perMember[1]}");
    }

    [Fact]
    public async Task Reconnects_and_resubscribes_after_the_broker_restarts()
    {
        await using var subscriber = await Connect();
        await subscriber.SubscribeAsync("after/restart", 1);
        var changes = new List<bool>();
        subscriber.ConnectionChanged += up => { lock (changes) { changes.Add(up); } };

        _broker.Stop();
        var down = DateTime.UtcNow + Wait;
        while (subscriber.IsConnected && DateTime.UtcNow < down)
        {
            await Task.Delay(20);
        }

        Assert.False(subscriber.IsConnected);
        _broker.Start();
        await subscriber.WaitConnectedAsync(TimeSpan.FromSeconds(15));

        await using var publisher = await Connect();
        // The resubscription is sent right after CONNACK; give it a moment to be acknowledged.
        MqttMessage? received = null;
        for (var attempt = 0; attempt < 20 && received is null; attempt++)
        {
            await publisher.PublishAsync("after/restart", "hello again", 1);
            try
            {
                received = await subscriber.Messages.ReadAsync().AsTask().WaitAsync(TimeSpan.FromMilliseconds(250));
            }
            catch (TimeoutException)
            {
            }
        }

        Assert.NotNull(received);
        Assert.Equal("hello again", Encoding.UTF8.GetString(received.Payload));
        lock (changes)
        {
            Assert.Equal([false, true], changes.Take(2));
        }
    }

    [Fact]
    public async Task Publishing_while_disconnected_fails_with_the_broker_named()
    {
        var client = await Connect();
        _broker.Stop();
        var deadline = DateTime.UtcNow + Wait;
        while (client.IsConnected && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        var ex = await Assert.ThrowsAsync<MqttException>(() => client.PublishAsync("x", "y", 1));
        Assert.Contains("not connected to broker mqtt://127.0.0.1", ex.Message, StringComparison.Ordinal);
        await client.DisposeAsync();
    }

    [Fact]
    public async Task A_broker_that_is_not_there_gives_a_clear_timeout()
    {
        var options = new MqttClientOptions { Broker = new Uri($"mqtt://127.0.0.1:{MosquittoBroker.FreePort()}"), ConnectTimeout = TimeSpan.FromSeconds(1) };
        await using var client = new MqttClient(options);
        var ex = await Assert.ThrowsAsync<MqttException>(() => client.ConnectAsync());
        Assert.Contains("no connection to broker mqtt://127.0.0.1", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://host:1883")]
    [InlineData("mqtt://")]
    [InlineData("not a url")]
    public void Broker_addresses_other_than_mqtt_are_refused_with_the_setting_named(string value)
    {
        var ex = Assert.Throws<ConfigSpecException>(() => MqttClientOptions.ParseBroker(value, "--broker"));
        Assert.Contains($"--broker '{value}'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tls_settings_are_checked_before_connecting()
    {
        var certificate = Assert.Throws<ConfigSpecException>(() => new MqttClient(new MqttClientOptions
        {
            Broker = new Uri("mqtts://127.0.0.1:8883"), CertificateFile = "/etc/hostname",
        }));
        Assert.Contains("certificate and key must be given together", certificate.Message, StringComparison.Ordinal);
        var missing = Assert.Throws<ConfigSpecException>(() => new MqttClient(new MqttClientOptions
        {
            Broker = new Uri("mqtts://127.0.0.1:8883"), CaFile = "/nonexistent/ca.pem",
        }));
        Assert.Contains("'/nonexistent/ca.pem' does not exist", missing.Message, StringComparison.Ordinal);
        var plain = Assert.Throws<ConfigSpecException>(() => new MqttClient(new MqttClientOptions { Broker = _broker.Uri, CaFile = "/etc/hostname" }));
        Assert.Contains("is not mqtts://", plain.Message, StringComparison.Ordinal);

        // Without a CA file the system store is used; the default port for mqtts is 8883.
        await using var system = new MqttClient(new MqttClientOptions { Broker = new Uri("mqtts://127.0.0.1") });
        Assert.Equal(8883, new MqttClientOptions { Broker = new Uri("mqtts://127.0.0.1") }.Port);
    }

    [Fact]
    public async Task Username_and_password_are_presented_and_a_wrong_password_is_refused()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var passwords = Path.Combine(dir, "passwords");
        using (var tool = System.Diagnostics.Process.Start("mosquitto_passwd", ["-b", "-c", passwords, "board7", "s3cret"]))
        {
            await tool.WaitForExitAsync();
            Assert.Equal(0, tool.ExitCode);
        }

        File.SetUnixFileMode(passwords, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        using var secured = new MosquittoBroker($"password_file {passwords}", allowAnonymous: false);
        await using (var good = new MqttClient(new MqttClientOptions { Broker = secured.Uri, Username = "board7", Password = "s3cret" }))
        {
            await good.ConnectAsync();
            Assert.True(good.IsConnected);
        }

        await using var bad = new MqttClient(new MqttClientOptions { Broker = secured.Uri, Username = "board7", Password = "wrong", ConnectTimeout = TimeSpan.FromSeconds(3) });
        var ex = await Assert.ThrowsAsync<MqttException>(() => bad.ConnectAsync());
        Assert.Contains("refused the connection", ex.Message, StringComparison.Ordinal);
        Directory.Delete(dir, true);
    }

    public void Dispose() => _broker.Dispose();
}
