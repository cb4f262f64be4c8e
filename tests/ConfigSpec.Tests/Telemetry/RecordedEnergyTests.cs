using System.Globalization;
using System.Text.Json;
using ConfigSpec.Tests.Cli;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Telemetry;

/// <summary>Recorded logs (tegrastats, replay) are reported on their own time line: the trapezoid over the log's timestamps.</summary>
public sealed class RecordedEnergyTests : IDisposable
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;
    private readonly string _dir = TestEnvironment.NewTemporaryDirectory();

    private static string OrinLine(DateTime t, int gpuSoc, int cpuCv) => string.Create(C,
        $"{t:MM-dd-yyyy HH:mm:ss} RAM 3311/62841MB (lfb 14x4MB) CPU [1%@729,0%@729] GR3D_FREQ 0% cpu@47.9C VDD_GPU_SOC {gpuSoc}mW/{gpuSoc}mW VDD_CPU_CV {cpuCv}mW/{cpuCv}mW VIN_SYS_5V0 4968mW/5048mW");

    private static async Task<JsonElement> PowerJson(string spec)
    {
        var (exit, output, error) = await EdgeCliTests.Run("power", "--source", spec, "--json");
        Assert.True(exit == 0, error);
        using var doc = JsonDocument.Parse(output);
        return doc.RootElement.Clone();
    }

    [Fact]
    public async Task A_twenty_line_orin_log_at_a_constant_16_w_on_two_rails_gives_16_w_over_its_19_s()
    {
        var t0 = new DateTime(2026, 12, 1, 10, 0, 0, DateTimeKind.Unspecified);
        var log = Path.Combine(_dir, "orin.log");
        await File.WriteAllLinesAsync(log, Enumerable.Range(0, 20).Select(i => OrinLine(t0.AddSeconds(i), 3000, 13000)));
        var r = await PowerJson($"tegrastats:file={log},rails=VDD_GPU_SOC+VDD_CPU_CV");
        Assert.True(r.GetProperty("recorded").GetBoolean());
        Assert.Equal(19.0, r.GetProperty("duration_s").GetDouble(), 9);
        Assert.Equal(20, r.GetProperty("samples").GetInt32());
        Assert.Equal(16.0, r.GetProperty("total_w").GetProperty("mean").GetDouble(), 9);
        Assert.InRange(r.GetProperty("energy_j").GetDouble(), 16 * 19 * 0.995, 16 * 19 * 1.005);
        Assert.Equal(1000, r.GetProperty("interval_ms").GetDouble(), 6);
    }

    [Fact]
    public async Task A_square_wave_gives_the_energy_of_the_log_time_line_and_every_mean_lies_within_its_range()
    {
        // Replay: 10 W and 30 W alternating every 0.5 s, sampled every 50 ms for 20 s.
        var csv = Path.Combine(_dir, "square.csv");
        var rows = Enumerable.Range(0, 401).Select(i => (Time: i * 0.05, Watts: (i / 10) % 2 == 0 ? 10.0 : 30.0)).ToList();
        await File.WriteAllLinesAsync(csv, rows.Select(r => string.Create(C, $"{r.Time:F2},{r.Watts}")).Prepend("time_s,watts"));
        var expected = rows.Zip(rows.Skip(1), (a, b) => (b.Time - a.Time) * (a.Watts + b.Watts) / 2).Sum();
        var r = await PowerJson($"replay:file={csv}");
        Assert.InRange(r.GetProperty("energy_j").GetDouble(), expected * 0.995, expected * 1.005);
        Assert.InRange(r.GetProperty("energy_j").GetDouble(), 20 * 20 * 0.98, 20 * 20 * 1.02); // ≈ the 20 W average over 20 s
        var total = r.GetProperty("total_w");
        Assert.InRange(total.GetProperty("mean").GetDouble(), total.GetProperty("min").GetDouble(), total.GetProperty("max").GetDouble());
        Assert.Equal(10, total.GetProperty("min").GetDouble());
        Assert.Equal(30, total.GetProperty("max").GetDouble());

        // tegrastats at 200 ms (five lines share each timestamp second), a square wave on one rail.
        var log = Path.Combine(_dir, "square.log");
        var t0 = new DateTime(2026, 12, 1, 10, 0, 0, DateTimeKind.Unspecified);
        await File.WriteAllLinesAsync(log, Enumerable.Range(0, 50).Select(i => OrinLine(t0.AddSeconds(i / 5), (i / 5) % 2 == 0 ? 2000 : 8000, 1000)));
        var t = await PowerJson($"tegrastats:file={log},rails=VDD_GPU_SOC");
        Assert.Equal(9.8, t.GetProperty("duration_s").GetDouble(), 9);
        Assert.Equal(200, t.GetProperty("interval_ms").GetDouble(), 6);
        foreach (var rail in t.GetProperty("rails").EnumerateArray().Append(t.GetProperty("total_w")))
        {
            Assert.InRange(rail.GetProperty("mean").GetDouble(), rail.GetProperty("min").GetDouble(), rail.GetProperty("max").GetDouble());
        }

        Assert.InRange(t.GetProperty("total_w").GetProperty("mean").GetDouble(), 4.6, 5.4); // half the time 2 W, half 8 W
    }

    [Fact]
    public async Task A_log_without_timestamps_takes_the_interval_and_one_that_goes_back_in_time_is_refused_naming_the_line()
    {
        var plain = Path.Combine(_dir, "plain.log");
        await File.WriteAllLinesAsync(plain, Enumerable.Repeat("VDD_IN 5000mW/5000mW VDD_SOC 1000mW/1000mW", 11));
        var r = await PowerJson($"tegrastats:file={plain},interval=500");
        Assert.Equal(5.0, r.GetProperty("duration_s").GetDouble(), 9);
        Assert.Equal(25.0, r.GetProperty("energy_j").GetDouble(), 9);

        var back = Path.Combine(_dir, "back.log");
        var t0 = new DateTime(2026, 12, 1, 10, 0, 0, DateTimeKind.Unspecified);
        await File.WriteAllLinesAsync(back, [OrinLine(t0, 1000, 1000), OrinLine(t0.AddSeconds(2), 1000, 1000), OrinLine(t0.AddSeconds(1), 1000, 1000)]);
        var (exit, _, error) = await EdgeCliTests.Run("power", "--source", $"tegrastats:file={back}", "--json");
        Assert.Equal(2, exit);
        Assert.Contains("line 3", error, StringComparison.Ordinal);
        Assert.Contains("goes back in time", error, StringComparison.Ordinal);

        var huge = Path.Combine(_dir, "huge.log");
        await File.WriteAllLinesAsync(huge, ["VDD_IN 99999999999999999999999mW/1mW", "VDD_IN 5000mW/5000mW"]);
        (exit, _, error) = await EdgeCliTests.Run("power", "--source", $"tegrastats:file={huge}", "--json");
        Assert.Equal(2, exit);
        Assert.Contains("line 1", error, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
