using System.Collections.Concurrent;
using System.Text;
using ConfigSpec.Fleet.Outbox;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;

namespace ConfigSpec.Tests.Fleet;

public sealed class OutboxTests
{
    [Fact]
    public async Task Messages_survive_a_restart_and_sequence_numbers_keep_increasing()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        await using (var first = new Outbox(dir, (_, _) => throw new MqttException("broker away")))
        {
            Assert.Equal(1, first.Enqueue("t/a", false, seq => $"a{seq}"));
            Assert.Equal(2, first.Enqueue("t/b", false, seq => $"b{seq}"));
        }

        var sent = new List<OutboxMessage>();
        await using (var second = new Outbox(dir, (m, _) =>
        {
            lock (sent)
            {
                sent.Add(m);
            }

            return Task.CompletedTask;
        }))
        {
            Assert.Equal(2, second.Pending);
            Assert.Equal(3, second.Enqueue("t/c", false, seq => $"c{seq}"));
            second.Start();
            Assert.True(await second.DrainAsync(TimeSpan.FromSeconds(10)));
        }

        Assert.Equal(["a1", "b2", "c3"], sent.Select(m => Encoding.UTF8.GetString(m.Payload)));
        Assert.Equal([1L, 2, 3], sent.Select(m => m.Seq));
        await using var third = new Outbox(dir, (_, _) => Task.CompletedTask);
        Assert.Equal(0, third.Pending);
        Assert.Equal(4, third.Enqueue("t/d", false, _ => "d"));
    }

    [Fact]
    public async Task A_retained_message_replaces_an_unsent_older_one_on_the_same_topic()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        await using var outbox = new Outbox(dir, (_, _) => throw new MqttException("away"));
        outbox.Enqueue("s", true, _ => "starting");
        outbox.Enqueue("m", false, _ => "metrics 1");
        outbox.Enqueue("s", true, _ => "serving");
        outbox.Enqueue("m", false, _ => "metrics 2");
        Assert.Equal(3, outbox.Pending); // the first status is superseded; metrics are all kept
        Assert.Equal(3, Directory.GetFiles(dir, "*.msg").Length);
    }

    [Fact]
    public async Task A_message_the_broker_refuses_is_dropped_and_counted_not_retried_ahead_of_the_rest()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var sent = new ConcurrentQueue<string>();
        var attempts = 0;
        await using var outbox = new Outbox(dir, (m, _) =>
        {
            if (m.Topic == "not/mine")
            {
                Interlocked.Increment(ref attempts);
                throw new MqttRefusedException("broker mqtt://b refused the publish to 'not/mine': not authorized");
            }

            sent.Enqueue(m.Topic);
            return Task.CompletedTask;
        }, TimeSpan.FromSeconds(30));
        outbox.Enqueue("not/mine", false, _ => "x");
        outbox.Enqueue("mine/1", false, _ => "y");
        outbox.Enqueue("mine/2", false, _ => "z");
        outbox.Start();
        Assert.True(await outbox.DrainAsync(TimeSpan.FromSeconds(10))); // no 30 s retry wait: the refusal is final
        Assert.Equal(["mine/1", "mine/2"], sent);
        Assert.Equal(1, attempts);
        Assert.Equal(1, outbox.Refused);
        Assert.Contains("not authorized", outbox.LastRefusal, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(dir, "*.msg"));
    }

    [Fact]
    public async Task A_corrupt_entry_is_set_aside_not_sent_or_lost()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        await File.WriteAllTextAsync(Path.Combine(dir, "0000000000000000005.msg"), "no header");
        await using var outbox = new Outbox(dir, (_, _) => Task.CompletedTask);
        Assert.Equal(0, outbox.Pending);
        Assert.True(File.Exists(Path.Combine(dir, "0000000000000000005.msg.bad")));
        await File.WriteAllTextAsync(Path.Combine(dir, "seq"), "banana");
        Assert.Contains("seq", Assert.Throws<ConfigSpec.ConfigSpecException>(() => new Outbox(dir, (_, _) => Task.CompletedTask)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Nothing_is_lost_while_the_broker_is_away_and_order_is_kept()
    {
        using var broker = new MosquittoBroker();
        // The publisher comes back later than the subscriber, so the subscriber has re-subscribed before the outbox sends.
        await using var publisher = new MqttClient(new MqttClientOptions { Broker = broker.Uri, ReconnectDelay = TimeSpan.FromSeconds(3), ReconnectDelayMax = TimeSpan.FromSeconds(3) });
        await publisher.ConnectAsync();
        var dir = TestEnvironment.NewTemporaryDirectory();
        await using var outbox = new Outbox(dir, (m, ct) => publisher.PublishAsync(m.Topic, m.Payload, 1, m.Retain, null, ct), TimeSpan.FromMilliseconds(200));
        publisher.ConnectionChanged += up =>
        {
            if (up)
            {
                outbox.Wake();
            }
        };
        outbox.Start();

        await using var subscriber = new MqttClient(new MqttClientOptions { Broker = broker.Uri, ClientId = "outbox-sub", ReconnectDelay = TimeSpan.FromSeconds(1), ReconnectDelayMax = TimeSpan.FromSeconds(1) });
        await subscriber.ConnectAsync();
        await subscriber.SubscribeAsync("outbox/#", 1);
        var received = new ConcurrentQueue<string>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var reader = Task.Run(async () =>
        {
            await foreach (var m in subscriber.Messages.ReadAllAsync(cts.Token))
            {
                received.Enqueue(Encoding.UTF8.GetString(m.Payload));
            }
        });

        for (var i = 1; i <= 5; i++)
        {
            outbox.Enqueue("outbox/m", false, seq => seq.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        Assert.True(await outbox.DrainAsync(TimeSpan.FromSeconds(10)));
        broker.Stop();
        for (var i = 6; i <= 20; i++)
        {
            outbox.Enqueue("outbox/m", false, seq => seq.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        await Task.Delay(500);
        Assert.True(outbox.Pending >= 15 - 1, $"pending {outbox.Pending} while the broker is away");
        broker.Start();
        await subscriber.WaitConnectedAsync(TimeSpan.FromSeconds(20)); // it subscribes again on reconnect
        Assert.True(await outbox.DrainAsync(TimeSpan.FromSeconds(30)), $"outbox still holds {outbox.Pending}");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (received.Count < 20 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        await cts.CancelAsync();
        var got = received.Select(int.Parse).ToList();
        Assert.Equal(Enumerable.Range(1, 5), got.Take(5));
        // Messages written while the broker was away all arrive after it returns, in order (QoS 1 may repeat one).
        var after = got.Where(v => v > 5).Distinct().ToList();
        Assert.Equal(after.Order(), after);
        Assert.Equal(Enumerable.Range(6, 15), after);
        Assert.Equal(0, outbox.Pending);
    }
}
