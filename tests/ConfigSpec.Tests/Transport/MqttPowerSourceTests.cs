using System.Text;
using ConfigSpec.Telemetry;
using ConfigSpec.Telemetry.Sources;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Telemetry;

namespace ConfigSpec.Tests.Transport;

public sealed class MqttPowerSourceTests : IDisposable
{
    private readonly MosquittoBroker _broker = new();

    private static readonly SourceEnvironment Environment = new() { Mqtt = MqttPowerSource.Create };

    private static async Task<PowerReading> ReadWhenAvailable(IPowerSource source)
    {
        for (var i = 0; ; i++)
        {
            try
            {
                return source.Read();
            }
            catch (PowerSourceException) when (i < 100)
            {
                await Task.Delay(20);
            }
        }
    }

    [Fact]
    public async Task A_tasmota_plug_reading_is_taken_from_its_telemetry_topic()
    {
        using var source = PowerSources.Create($"mqtt:broker={_broker.Uri},topic=tele/plug1/SENSOR,path=ENERGY.Power", Environment);
        Assert.Equal(PowerScope.Wall, source.Scope);
        var ex = Assert.Throws<PowerSourceException>(source.Read);
        Assert.Contains("no power reading on 'tele/plug1/SENSOR' yet", ex.Message, StringComparison.Ordinal);

        await using var plug = new MqttClient(new MqttClientOptions { Broker = _broker.Uri });
        await plug.ConnectAsync();
        await plug.PublishAsync("tele/plug1/SENSOR", """{"Time":"2026-11-22T10:00:00","ENERGY":{"Total":1.2,"Power":5.2,"Voltage":231}}""", 1);
        Assert.Equal(5.2, (await ReadWhenAvailable(source)).TotalWatts, 9);

        // Garbage and a missing field are counted; the last good value stays until it goes stale.
        await plug.PublishAsync("tele/plug1/SENSOR", "not json", 1);
        await plug.PublishAsync("tele/plug1/SENSOR", """{"ENERGY":{"Voltage":231}}""", 1);
        var plugSource = (MqttPowerSource)source;
        for (var i = 0; i < 100 && plugSource.BadMessages < 2; i++)
        {
            await Task.Delay(20);
        }

        Assert.Equal(2, plugSource.BadMessages);
        Assert.Equal(5.2, source.Read().TotalWatts, 9);
    }

    /// <summary>The plug's topic takes 1,000 generated payloads: each is read or counted as bad, none ends the loop, and a good reading still arrives.</summary>
    [Fact]
    public async Task Fuzzed_plug_payloads_are_counted_and_the_reading_goes_on()
    {
        using var source = PowerSources.Create($"mqtt:broker={_broker.Uri},topic=tele/plug2/SENSOR,path=ENERGY.Power", Environment);
        var plugSource = (MqttPowerSource)source;
        await using var plug = new MqttClient(new MqttClientOptions { Broker = _broker.Uri });
        await plug.ConnectAsync();
        var payloads = ConfigSpec.Tests.Fleet.PayloadFuzzer.Generate("""{"Time":"2026-11-22T10:00:00","ENERGY":{"Total":1.2,"Power":5.2,"Voltage":231}}""", 1000, seed: 51);
        foreach (var p in payloads)
        {
            await plug.PublishAsync("tele/plug2/SENSOR", p, 1);
        }

        await plug.PublishAsync("tele/plug2/SENSOR", """{"ENERGY":{"Power":7.25}}""", 1);
        for (var i = 0; i < 500 && plugSource.Received < payloads.Count + 1; i++)
        {
            await Task.Delay(20);
        }

        Assert.Equal(payloads.Count + 1, plugSource.Received);
        Assert.InRange(plugSource.BadMessages, payloads.Count / 3, payloads.Count); // mutations of the other members stay readable
        Assert.Equal(7.25, source.Read().TotalWatts, 9);
    }

    [Fact]
    public async Task A_stale_reading_is_refused()
    {
        using var source = PowerSources.Create($"mqtt:broker={_broker.Uri},topic=tele/plug2/SENSOR,stale=0.2", Environment);
        await using var plug = new MqttClient(new MqttClientOptions { Broker = _broker.Uri });
        await plug.ConnectAsync();
        await plug.PublishAsync("tele/plug2/SENSOR", Encoding.UTF8.GetBytes("""{"ENERGY":{"Power":7}}"""), 1);
        Assert.Equal(7, (await ReadWhenAvailable(source)).TotalWatts, 9);
        await Task.Delay(400);
        Assert.Contains("old (stale after", Assert.Throws<PowerSourceException>(source.Read).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("mqtt:topic=x", "mqtt needs broker=")]
    [InlineData("mqtt:broker=mqtt://127.0.0.1:1", "mqtt needs topic=")]
    [InlineData("mqtt:broker=http://x,topic=t", "is not a broker address")]
    [InlineData("mqtt:broker=mqtt://127.0.0.1:1,topic=t,stale=-1", "stale=-1")]
    public void Bad_mqtt_specifications_are_named(string spec, string message) =>
        Assert.Contains(message, Assert.Throws<PowerSourceException>(() => PowerSources.Create(spec, Environment)).Message, StringComparison.Ordinal);

    public void Dispose() => _broker.Dispose();
}
