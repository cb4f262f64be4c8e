using ConfigSpec.Telemetry;
using ConfigSpec.Telemetry.Sources;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Telemetry;

public sealed class PowerSourcesTests : IDisposable
{
    private readonly string _dir = TestEnvironment.NewTemporaryDirectory();

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    [Theory]
    [InlineData("thermocouple", "unknown power source 'thermocouple'")]
    [InlineData("ina219:bus=1,addr=0x70", "addr=0x70 is not an INA219 address")]
    [InlineData("ina219:bus=x", "bus=x is not a whole number")]
    [InlineData("ina219:shunt=abc", "shunt=abc is not a number")]
    [InlineData("ina219:colour=blue", "unknown option 'colour' for ina219")]
    [InlineData("hwmon:channel", "option 'channel' is not key=value")]
    [InlineData("estimate", "estimate needs board=NAME")]
    [InlineData("estimate:board=toaster", "unknown board 'toaster'")]
    [InlineData("replay", "replay needs file=PATH")]
    public void Bad_specifications_give_one_message_naming_the_source_and_the_cause(string spec, string message)
    {
        var ex = Assert.Throws<PowerSourceException>(() => PowerSources.Create(spec, new SourceEnvironment { SysRoot = _dir, ProcRoot = _dir, DevRoot = _dir }));
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Replay_returns_recorded_samples_and_names_a_bad_line()
    {
        var file = Write("run.csv", "time_s,watts\n0.00,4.5\n0.02,4.7\n0.04,5.1\n");
        using var source = PowerSources.Create($"replay:file={file}");
        Assert.Equal([4.5, 4.7, 5.1], new[] { source.Read(), source.Read(), source.Read() }.Select(r => r.TotalWatts));
        Assert.Contains("exhausted", Assert.Throws<PowerSourceException>(source.Read).Message, StringComparison.Ordinal);

        var bad = Write("bad.csv", "0.0,4.5\n0.1,four\n");
        var ex = Assert.Throws<PowerSourceException>(() => PowerSources.Create($"replay:file={bad}"));
        Assert.Contains("line 2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Estimate_scales_idle_to_peak_by_cpu_utilisation_and_is_labelled()
    {
        Write("stat", "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\n");
        using var source = PowerSources.Create("estimate:board=rpi4b", new SourceEnvironment { ProcRoot = _dir });
        Write("stat", "cpu  150 0 150 900 0 0 0 0 0 0\n"); // 100 busy of 200: 50 %
        var reading = source.Read();
        Assert.True(source.IsEstimate);
        Assert.Equal(PowerScope.Estimated, source.Scope);
        Assert.Equal(2.7 + (0.5 * (6.4 - 2.7)), reading.TotalWatts, 9);
    }

    [Fact]
    public void Tegrastats_log_is_read_line_by_line_and_a_garbage_line_is_reported()
    {
        var log = Write("tegrastats.log", "VDD_IN 4571mW/4571mW VDD_SOC 1361mW/1361mW\nthis is not tegrastats\n");
        using var source = PowerSources.Create($"tegrastats:file={log}");
        Assert.Equal(4.571, source.Read().TotalWatts, 6);
        var ex = Assert.Throws<PowerSourceException>(source.Read);
        Assert.Contains("no power rails in the tegrastats line 'this is not tegrastats'", ex.Message, StringComparison.Ordinal);

        using var chosen = PowerSources.Create($"tegrastats:file={log},rails=VDD_SOC");
        Assert.Equal(1.361, chosen.Read().TotalWatts, 6);
    }

    [Fact]
    public void A_missing_binary_is_named()
    {
        var ex = Assert.Throws<PowerSourceException>(() => new TegrastatsSource("tegrastats", null, [], 100, "configspec-no-such-tegrastats"));
        Assert.Contains("cannot be run", ex.Message, StringComparison.Ordinal);
        using var pmic = new PmicSource("pmic", null, "configspec-no-such-vcgencmd");
        Assert.Contains("Raspberry Pi OS only", Assert.Throws<PowerSourceException>(pmic.Read).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pmic_file_gives_soc_rail_power_labelled_as_such()
    {
        var file = Write("pmic.txt", "VDD_CORE_A current(7)=2.00000000A\nVDD_CORE_V volt(15)=0.80000000V\nEXT5V_V volt(24)=5.1V\n");
        using var source = PowerSources.Create($"pmic:file={file}");
        Assert.Equal(PowerScope.SocRails, source.Scope);
        Assert.Equal(1.6, source.Read().TotalWatts, 9);
    }

    [Fact]
    public void Rapl_reads_package_domains_from_a_fixture_tree()
    {
        Write("class/powercap/intel-rapl:0/name", "package-0\n");
        Write("class/powercap/intel-rapl:0/energy_uj", "1000000\n");
        Write("class/powercap/intel-rapl:0/max_energy_range_uj", "262143328850\n");
        Write("class/powercap/intel-rapl:0:0/energy_uj", "5\n"); // a sub-domain, not counted
        using var source = PowerSources.Create("rapl", new SourceEnvironment { SysRoot = _dir });
        Write("class/powercap/intel-rapl:0/energy_uj", "3000000\n");
        var reading = source.Read();
        Assert.Equal("package-0", Assert.Single(reading.Rails).Rail);
        Assert.True(reading.TotalWatts > 0);
    }

    [Fact]
    public void Detect_lists_every_source_with_why_it_is_or_is_not_there()
    {
        Write("class/hwmon/hwmon0/name", "ina226\n");
        Write("class/hwmon/hwmon0/power1_input", "5000000\n");
        var found = PowerSources.Detect(new SourceEnvironment { SysRoot = _dir, DevRoot = Path.Combine(_dir, "dev"), FindExecutable = _ => null });
        Assert.Equal(["ina219", "hwmon", "tegrastats", "pmic", "rapl", "mqtt:broker=…,topic=…,path=ENERGY.Power", "estimate:board=…"], found.Select(f => f.Spec));
        Assert.False(found[0].Available);
        Assert.Contains("i2c", found[0].Detail, StringComparison.Ordinal);
        Assert.True(found[1].Available);
        Assert.Contains("ina226", found[1].Detail, StringComparison.Ordinal);
        Assert.Contains("Jetson only", found[2].Detail, StringComparison.Ordinal);
        Assert.False(found[4].Available);
        Assert.False(found[5].Available); // no MQTT factory in this environment
        Assert.True(found[6].Available);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
