using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ConfigSpec.Interop;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Network;

namespace ConfigSpec.Tests.Transport;

public class DelayProxyTests
{
    private static async Task<(TcpListener Listener, Task Echo)> StartEcho()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var echo = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            client.NoDelay = true;
            var stream = client.GetStream();
            var buffer = new byte[65536];
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                await stream.WriteAsync(buffer.AsMemory(0, read));
            }
        });
        return (listener, echo);
    }

    private static DelayProxy Proxy(TcpListener upstream, int delayMs, int jitterMs = 0, string? trace = null) => new(new DelayProxyOptions
    {
        Listen = new IPEndPoint(IPAddress.Loopback, 0),
        Upstream = new DnsEndPoint("127.0.0.1", ((IPEndPoint)upstream.LocalEndpoint).Port),
        Delay = TimeSpan.FromMilliseconds(delayMs),
        Jitter = TimeSpan.FromMilliseconds(jitterMs),
        TraceFile = trace,
    });

    [Fact]
    public async Task Round_trip_through_the_proxy_takes_at_least_twice_the_delay()
    {
        var (listener, echo) = await StartEcho();
        var trace = Path.Combine(TestEnvironment.NewTemporaryDirectory(), "trace.csv");
        await using (var proxy = Proxy(listener, 60, trace: trace))
        {
            proxy.Start();
            using var client = new TcpClient { NoDelay = true };
            await client.ConnectAsync(proxy.LocalEndpoint);
            var stream = client.GetStream();
            var watch = Stopwatch.StartNew();
            await stream.WriteAsync("ping"u8.ToArray());
            var reply = new byte[4];
            await stream.ReadExactlyAsync(reply);
            watch.Stop();
            Assert.Equal("ping", Encoding.ASCII.GetString(reply));
            Assert.InRange(watch.ElapsedMilliseconds, 120, 10_000); // the lower bound is the point; a loaded machine may be slow
        }

        var lines = await File.ReadAllLinesAsync(trace);
        Assert.Equal("time_s,connection,direction,bytes,delay_ms", lines[0]);
        Assert.Contains(lines, l => l.EndsWith(",1,up,4,60", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.EndsWith(",1,down,4,60", StringComparison.Ordinal));
        listener.Stop();
        await echo.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_delay_schedule_changes_the_delay_over_time()
    {
        var (listener, echo) = await StartEcho();
        var dir = TestEnvironment.NewTemporaryDirectory();
        var schedule = Path.Combine(dir, "delay.csv");
        await File.WriteAllTextAsync(schedule, "time_s,delay_ms\n0,10\n1,60\n30,60\n");
        var trace = Path.Combine(dir, "trace.csv");
        await using (var proxy = new DelayProxy(new DelayProxyOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            Upstream = new DnsEndPoint("127.0.0.1", ((IPEndPoint)listener.LocalEndpoint).Port),
            Schedule = ConfigSpec.Speculative.Policies.DelayTrace.Parse(schedule),
            TraceFile = trace,
        }))
        {
            proxy.Start();
            using var client = new TcpClient { NoDelay = true };
            await client.ConnectAsync(proxy.LocalEndpoint);
            var stream = client.GetStream();
            var buffer = new byte[1];
            await stream.WriteAsync(new byte[] { 1 });
            await stream.ReadExactlyAsync(buffer);
            await Task.Delay(1500); // past the schedule's step at 1 s
            await stream.WriteAsync(new byte[] { 2 });
            await stream.ReadExactlyAsync(buffer);
        }

        // The proxy's own record of each chunk's delay: 10 ms before the step, 60 ms after.
        var delays = (await File.ReadAllLinesAsync(trace)).Skip(1).Select(l => l.Split(','))
            .Where(f => f[2] == "up").Select(f => double.Parse(f[4], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal([10.0, 60.0], delays);
        listener.Stop();
    }

    [Fact]
    public async Task Jitter_never_reorders_or_loses_bytes()
    {
        var (listener, echo) = await StartEcho();
        await using var proxy = Proxy(listener, 5, jitterMs: 5);
        proxy.Start();
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(proxy.LocalEndpoint);
        var stream = client.GetStream();
        var data = new byte[300_000];
        new Random(5).NextBytes(data);
        var send = Task.Run(async () =>
        {
            for (var i = 0; i < data.Length; i += 1000)
            {
                await stream.WriteAsync(data.AsMemory(i, 1000));
            }
        });
        var received = new byte[data.Length];
        await stream.ReadExactlyAsync(received).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        await send;
        Assert.Equal(data, received);
        listener.Stop();
    }

    [Fact]
    public async Task An_mqtt_client_works_through_the_proxy()
    {
        using var broker = new MosquittoBroker();
        await using var proxy = new DelayProxy(new DelayProxyOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0), Upstream = new DnsEndPoint("127.0.0.1", broker.Port), Delay = TimeSpan.FromMilliseconds(20),
        });
        proxy.Start();
        await using var client = new MqttClient(new MqttClientOptions { Broker = new Uri($"mqtt://127.0.0.1:{proxy.LocalEndpoint.Port}") });
        await client.ConnectAsync();
        await client.SubscribeAsync("loop");
        var watch = Stopwatch.StartNew();
        await client.PublishAsync("loop", "x", 1);
        var message = await client.Messages.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("x", Encoding.UTF8.GetString(message.Payload));
        Assert.True(watch.ElapsedMilliseconds >= 40, $"{watch.ElapsedMilliseconds} ms");
        Assert.True(proxy.ForwardedBytes > 0);
    }

    [Theory]
    [InlineData("localhost:80")]
    [InlineData("127.0.0.1")]
    public void Listen_address_must_be_ip_and_port(string value) =>
        Assert.StartsWith("--listen", Assert.Throws<SettingException>(() => DelayProxyOptions.ParseListen(value)).CommandLineMessage, StringComparison.Ordinal);

    [Fact]
    public void Upstream_needs_a_port() =>
        Assert.Contains("--upstream 'broker'", Assert.Throws<SettingException>(() => DelayProxyOptions.ParseUpstream("broker")).CommandLineMessage, StringComparison.Ordinal);
}
