using ConfigSpec.Telemetry;
using ConfigSpec.Telemetry.Sources;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Telemetry;

public sealed class SourceParserTests : IDisposable
{
    private readonly string _root = TestEnvironment.NewTemporaryDirectory();

    private void Fixture(string device, string name, params (string File, string Value)[] files)
    {
        var dir = Path.Combine(_root, device);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "name"), name + "\n");
        foreach (var (file, value) in files)
        {
            File.WriteAllText(Path.Combine(dir, file), value + "\n");
        }
    }

    [Fact]
    public void Hwmon_reads_the_kernel_ina219_driver()
    {
        Fixture("hwmon0", "cpu_thermal", ("temp1_input", "47000"));
        Fixture("hwmon1", "ina219", ("in0_input", "120"), ("in1_input", "5100"), ("curr1_input", "1200"), ("power1_input", "6120000"), ("shunt_resistor", "100000"));
        using var source = new HwmonSource("hwmon", _root);
        Assert.Equal("ina219", source.DeviceName);
        var reading = source.Read();
        Assert.Equal(6.12, reading.TotalWatts, 6);
        Assert.Equal("power1", Assert.Single(reading.Rails).Rail);
    }

    [Fact]
    public void Hwmon_reads_a_labelled_three_channel_ina3221()
    {
        Fixture("hwmon2", "ina3221",
            ("in1_label", "VDD_IN"), ("in1_input", "5000"), ("curr1_input", "1600"),
            ("in2_label", "VDD_CPU_GPU_CV"), ("in2_input", "4990"), ("curr2_input", "400"),
            ("in3_label", "VDD_SOC"), ("in3_input", "4995"), ("curr3_input", "300"),
            ("in4_input", "1600"), ("in5_input", "400"), ("in6_input", "300"));
        using var source = new HwmonSource("hwmon:device=ina3221", _root, "ina3221");
        var reading = source.Read();
        Assert.Equal(["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"], reading.Rails.Select(r => r.Rail));
        Assert.Equal(8.0, reading.TotalWatts, 6); // the input rail, not the sum
        Assert.Equal(1.996, reading.Rails[1].Watts, 6);

        using var one = new HwmonSource("hwmon:channel=3", _root, "ina3221", 3);
        Assert.Equal(4.995 * 0.3, one.Read().TotalWatts, 6);
    }

    [Fact]
    public void Hwmon_errors_name_the_source_and_the_file()
    {
        Assert.Contains("does not exist", Assert.Throws<PowerSourceException>(() => new HwmonSource("hwmon", Path.Combine(_root, "nope"))).Message, StringComparison.Ordinal);
        Fixture("hwmon0", "cpu_thermal", ("temp1_input", "47000"));
        Assert.Contains("no hwmon device", Assert.Throws<PowerSourceException>(() => new HwmonSource("hwmon", _root)).Message, StringComparison.Ordinal);
        Fixture("hwmon1", "ina226", ("power1_input", "garbage"));
        using var source = new HwmonSource("hwmon:device=ina226", _root, "ina226");
        var ex = Assert.Throws<PowerSourceException>(source.Read);
        Assert.Contains("hwmon:device=ina226", ex.Message, StringComparison.Ordinal);
        Assert.Contains("power1_input' holds 'garbage'", ex.Message, StringComparison.Ordinal);
    }

    // Captured lines of several Jetson generations and JetPack releases.
    [Theory]
    [InlineData("RAM 2214/7764MB (lfb 1095x4MB) SWAP 0/3882MB (cached 0MB) CPU [2%@1190,1%@1190,off,off] EMC_FREQ 0% GR3D_FREQ 0% cpu@36.5C VDD_IN 4571mW/4571mW VDD_CPU_GPU_CV 504mW/504mW VDD_SOC 1361mW/1361mW",
        "VDD_IN,VDD_CPU_GPU_CV,VDD_SOC", 4.571)] // Orin Nano / NX
    [InlineData("11-22-2026 10:01:02 RAM 3311/62841MB (lfb 14x4MB) CPU [1%@729,0%@729] GR3D_FREQ 0% cpu@47.9C VDD_GPU_SOC 3150mW/2971mW VDD_CPU_CV 14312mW/12415mW VIN_SYS_5V0 4968mW/5048mW NC 0mW/0mW VDDQ_VDD2_1V8AO 502mW/498mW",
        "VDD_GPU_SOC,VDD_CPU_CV,VIN_SYS_5V0,VDDQ_VDD2_1V8AO", 22.932)] // AGX Orin: no single input rail, so the sum
    [InlineData("RAM 1862/3956MB (lfb 75x4MB) SWAP 0/1978MB CPU [5%@1479,2%@1479,0%@1479,1%@1479] EMC_FREQ 3%@1600 GR3D_FREQ 0%@76 APE 25 PLL@32C CPU@35C POM_5V_IN 2392/2392 POM_5V_GPU 0/0 POM_5V_CPU 402/402",
        "POM_5V_IN,POM_5V_GPU,POM_5V_CPU", 2.392)] // Jetson Nano (JetPack 4, no unit)
    [InlineData("RAM 4505/31920MB (lfb 5591x4MB) CPU [9%@1190,6%@1190] GPU 1234/1200/1400 CPU 2100mW/2000mW/2500mW SOC 1500mW/1450mW/1600mW VDDRQ 400/400/450 SYS5V 3000/2990/3100",
        "GPU,CPU,SOC,VDDRQ,SYS5V", 8.234)] // Xavier style cur/avg/max
    public void Tegrastats_lines_of_several_generations_parse(string line, string rails, double total)
    {
        var parsed = TegrastatsParser.Parse(line);
        Assert.Equal(rails.Split(','), parsed.Select(r => r.Rail));
        Assert.Equal(total, TegrastatsParser.Total(parsed), 6);
    }

    [Fact]
    public void Tegrastats_chosen_rails_are_summed_and_an_absent_rail_is_named()
    {
        var parsed = TegrastatsParser.Parse("VDD_GPU_SOC 3150mW/2971mW VDD_CPU_CV 14312mW/12415mW VIN_SYS_5V0 4968mW/5048mW");
        Assert.Equal(17.462, TegrastatsParser.Total(parsed, ["VDD_GPU_SOC", "VDD_CPU_CV"]), 6);
        var ex = Assert.Throws<PowerSourceException>(() => TegrastatsParser.Total(parsed, ["VDD_IN"]));
        Assert.Contains("rail 'VDD_IN' is not in the output", ex.Message, StringComparison.Ordinal);
        Assert.Empty(TegrastatsParser.Parse("garbage line 12/34MB cpu@40C"));
    }

    [Fact]
    public void Pmic_rails_are_paired_by_name_and_voltage_only_rails_left_out()
    {
        const string output = """
               3V7_WL_SW_A current(0)=0.00000000A
             VDD_CORE_A current(7)=1.11625000A
                   EXT5V_V volt(24)=5.12862000V
             3V7_WL_SW_V volt(8)=3.72315600V
             VDD_CORE_V volt(15)=0.72000000V
                   BATT_V volt(25)=0.00000000V
            """;
        var rails = PmicParser.Parse(output);
        Assert.Equal(["3V7_WL_SW", "VDD_CORE"], rails.Select(r => r.Rail));
        Assert.Equal(1.11625 * 0.72, rails[1].Watts, 9);
        var ex = Assert.Throws<PowerSourceException>(() => PmicParser.Parse("VDD_CORE_A current(7)=1.1A\nhello world", "pmic:file=x"));
        Assert.Contains("pmic:file=x: unexpected line 'hello world'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rapl_counter_wrap_around_adds_the_range()
    {
        var rapl = new RaplCounter(maxEnergyRangeMicrojoules: 262_143_328_850);
        Assert.Null(rapl.Add(0.0, 262_143_000_000));
        var watts = rapl.Add(1.0, 1_000_000); // wrapped: 328,850 µJ to the top of the range, then 1,000,000 after it
        Assert.Equal((262_143_328_850 - 262_143_000_000 + 1_000_000) * 1e-6, watts!.Value, 6);
        Assert.Equal(5.0, rapl.Add(2.0, 6_000_000)!.Value, 6);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
