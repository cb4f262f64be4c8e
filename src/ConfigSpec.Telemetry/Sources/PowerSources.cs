using System.Device.I2c;
using System.Globalization;
using ConfigSpec.Telemetry.I2c;
using ConfigSpec.Telemetry.Ina219;

namespace ConfigSpec.Telemetry.Sources;

/// <summary>Where the system files live (a fixture tree in tests).</summary>
public sealed record SourceEnvironment
{
    public string SysRoot { get; init; } = "/sys";

    public string ProcRoot { get; init; } = "/proc";

    public string DevRoot { get; init; } = "/dev";

    /// <summary>Creates the MQTT smart-plug source (it lives with the MQTT client); null where MQTT is not available.</summary>
    public Func<string, IReadOnlyDictionary<string, string>, IPowerSource>? Mqtt { get; init; }

    /// <summary>Finds an executable on PATH (null when absent).</summary>
    public Func<string, string?> FindExecutable { get; init; } = DefaultFindExecutable;

    private static string? DefaultFindExecutable(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);
}

/// <summary>A source found (or not) by <see cref="PowerSources.Detect"/>, with the reason.</summary>
public sealed record DetectedSource(string Spec, bool Available, string Detail);

/// <summary>
/// Creates power sources from their specifications, <c>name[:key=value,...]</c>:
/// <c>ina219:bus=1,addr=0x40,shunt=0.1,max-current=3.2</c>, <c>hwmon[:root=DIR,device=NAME,channel=N]</c>,
/// <c>tegrastats[:file=PATH,rails=A+B,interval=MS]</c>, <c>pmic[:file=PATH]</c>, <c>rapl[:root=DIR]</c>,
/// <c>mqtt:broker=URL,topic=T,path=ENERGY.Power[,stale=S]</c>,
/// <c>replay:file=PATH</c>, <c>estimate:board=rpi4b|rpi5|orin-nano|orin-nx|orin-agx|x86</c>.
/// </summary>
public static class PowerSources
{
    public static readonly string[] Names = ["ina219", "hwmon", "tegrastats", "pmic", "rapl", "mqtt", "replay", "estimate"];

    /// <summary>
    /// <c>auto</c>: the first on-board source that gives a reading (hwmon, RAPL, tegrastats, Pi 5 PMIC), otherwise
    /// the estimate for <paramref name="board"/> (a device-tree or DMI model string) — labelled estimated everywhere.
    /// </summary>
    public static string ResolveAuto(string board, SourceEnvironment? environment = null)
    {
        environment ??= new SourceEnvironment();
        var detected = Detect(environment);
        foreach (var name in new[] { "hwmon", "rapl", "tegrastats", "pmic" })
        {
            if (detected.FirstOrDefault(d => d.Spec == name) is not { Available: true })
            {
                continue;
            }

            try
            {
                using var source = Create(name, environment);
                _ = source.Read();
                return name;
            }
            catch (PowerSourceException)
            {
                // Present but not readable (permissions, counters still zero): try the next one.
            }
        }

        return "estimate:board=" + EstimateBoard(board);
    }

    /// <summary>The estimate table's board nearest to a board model string.</summary>
    public static string EstimateBoard(string? board)
    {
        var b = (board ?? string.Empty).ToUpperInvariant();
        return b switch
        {
            _ when b.Contains("RASPBERRY PI 5", StringComparison.Ordinal) => "rpi5",
            _ when b.Contains("RASPBERRY PI 4", StringComparison.Ordinal) => "rpi4b",
            _ when b.Contains("ORIN NANO", StringComparison.Ordinal) => "orin-nano",
            _ when b.Contains("ORIN NX", StringComparison.Ordinal) => "orin-nx",
            _ when b.Contains("ORIN", StringComparison.Ordinal) => "orin-agx",
            _ => System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture is System.Runtime.InteropServices.Architecture.Arm64 ? "rpi5" : "x86",
        };
    }

    public static IPowerSource Create(string spec, SourceEnvironment? environment = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        environment ??= new SourceEnvironment();
        var (name, options) = Parse(spec);
        string? Get(string key) => options.GetValueOrDefault(key);
        return name switch
        {
            "ina219" => CreateIna219(spec, options, environment),
            "hwmon" => new HwmonSource(spec, Get("root") ?? Path.Combine(environment.SysRoot, "class", "hwmon"), Get("device"),
                Get("channel") is { } channel ? Integer(spec, "channel", channel, 1, 8) : null),
            "tegrastats" => new TegrastatsSource(spec, Get("file"),
                Get("rails")?.Split('+', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [],
                Get("interval") is { } interval ? Integer(spec, "interval", interval, 10, 60_000) : 100),
            "pmic" => new PmicSource(spec, Get("file")),
            "rapl" => new RaplSource(spec, Get("root") ?? Path.Combine(environment.SysRoot, "class", "powercap")),
            "mqtt" => environment.Mqtt is { } mqtt ? mqtt(spec, options) : throw new PowerSourceException($"{spec}: MQTT sources are not available in this program"),
            "replay" => new ReplaySource(spec, Get("file") ?? throw new PowerSourceException($"{spec}: replay needs file=PATH")),
            "estimate" => new EstimateSource(spec, Get("board") ?? throw new PowerSourceException(
                $"{spec}: estimate needs board=NAME (one of {string.Join(", ", EstimateSource.Boards.Keys)})"), environment.ProcRoot),
            _ => throw new PowerSourceException($"unknown power source '{name}' in '{spec}' (known: {string.Join(", ", Names)})"),
        };
    }

    /// <summary>Splits <c>name:key=value,...</c>; keys are checked by each source.</summary>
    public static (string Name, IReadOnlyDictionary<string, string> Options) Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var colon = spec.IndexOf(':', StringComparison.Ordinal);
        var name = (colon < 0 ? spec : spec[..colon]).Trim().ToLowerInvariant();
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        if (colon >= 0)
        {
            foreach (var part in spec[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var eq = part.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    throw new PowerSourceException($"{spec}: option '{part}' is not key=value");
                }

                options[part[..eq]] = part[(eq + 1)..];
            }
        }

        var allowed = name switch
        {
            "ina219" => new[] { "bus", "addr", "shunt", "max-current" },
            "hwmon" => ["root", "device", "channel"],
            "tegrastats" => ["file", "rails", "interval"],
            "pmic" => ["file"],
            "rapl" => ["root"],
            "mqtt" => ["broker", "topic", "path", "stale"],
            "replay" => ["file"],
            "estimate" => ["board"],
            _ => null,
        };
        if (allowed is not null && options.Keys.FirstOrDefault(k => !allowed.Contains(k)) is { } unknown)
        {
            throw new PowerSourceException($"{spec}: unknown option '{unknown}' for {name} (allowed: {string.Join(", ", allowed)})");
        }

        return (name, options);
    }

    /// <summary>Every source this machine could offer, and why the others are not there.</summary>
    public static IReadOnlyList<DetectedSource> Detect(SourceEnvironment? environment = null)
    {
        environment ??= new SourceEnvironment();
        var found = new List<DetectedSource>();
        var i2c = Directory.Exists(environment.DevRoot) ? Directory.GetFiles(environment.DevRoot, "i2c-*").Order(StringComparer.Ordinal).ToArray() : [];
        found.Add(i2c.Length > 0
            ? new DetectedSource("ina219:bus=" + i2c[0][(i2c[0].LastIndexOf('-') + 1)..] + ",addr=0x40", true, $"I2C buses: {string.Join(", ", i2c.Select(Path.GetFileName))} (probe with `power --source`)")
            : new DetectedSource("ina219", false, $"no {environment.DevRoot}/i2c-* (enable I2C: dtparam=i2c_arm=on)"));
        found.Add(Try("hwmon", () => new HwmonSource("hwmon", Path.Combine(environment.SysRoot, "class", "hwmon")),
            s => $"device {((HwmonSource)s).DeviceName}, rails {string.Join(", ", ((HwmonSource)s).Rails)}"));
        found.Add(environment.FindExecutable("tegrastats") is { } tegrastats
            ? new DetectedSource("tegrastats", true, tegrastats)
            : new DetectedSource("tegrastats", false, "tegrastats is not on PATH (NVIDIA Jetson only)"));
        found.Add(environment.FindExecutable("vcgencmd") is { } vcgencmd
            ? new DetectedSource("pmic", true, $"{vcgencmd} (Raspberry Pi 5 SoC rails, not whole-board power)")
            : new DetectedSource("pmic", false, "vcgencmd is not on PATH (Raspberry Pi OS only)"));
        found.Add(Try("rapl", () => new RaplSource("rapl", Path.Combine(environment.SysRoot, "class", "powercap")), _ => "package energy counters"));
        found.Add(new DetectedSource("mqtt:broker=…,topic=…,path=ENERGY.Power", environment.Mqtt is not null,
            environment.Mqtt is not null ? "a smart plug's wall power over MQTT: give its broker and telemetry topic" : "MQTT is not available in this program"));
        found.Add(new DetectedSource("estimate:board=…", true, "always available; labelled estimated in every output"));
        return found;
    }

    private static DetectedSource Try(string spec, Func<IPowerSource> create, Func<IPowerSource, string> describe)
    {
        try
        {
            using var source = create();
            return new DetectedSource(spec, true, describe(source));
        }
        catch (PowerSourceException ex)
        {
            return new DetectedSource(spec, false, ex.Message);
        }
    }

    private static Ina219Source CreateIna219(string spec, IReadOnlyDictionary<string, string> options, SourceEnvironment environment)
    {
        var bus = Integer(spec, "bus", options.GetValueOrDefault("bus") ?? "1", 0, 255);
        var addressText = options.GetValueOrDefault("addr") ?? "0x40";
        var address = addressText.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            && int.TryParse(addressText[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var hex) ? hex
            : int.TryParse(addressText, NumberStyles.None, CultureInfo.InvariantCulture, out var dec) ? dec : -1;
        if (address is < 0x40 or > 0x4F)
        {
            throw new PowerSourceException($"{spec}: addr={addressText} is not an INA219 address (0x40–0x4F)");
        }

        var settings = new Ina219Settings(
            Number(spec, "shunt", options.GetValueOrDefault("shunt") ?? "0.1"),
            Number(spec, "max-current", options.GetValueOrDefault("max-current") ?? "3.2"));
        settings.Validate(spec);
        // With a kernel driver bound (ina2xx), the chip belongs to hwmon: raw transfers would fight the driver.
        var bound = Path.Combine(environment.SysRoot, "bus", "i2c", "devices", $"{bus}-{address:x4}", "driver");
        if (Directory.Exists(bound))
        {
            throw new PowerSourceException(
                $"{spec}: /dev/i2c-{bus} address 0x{address:X2} is owned by the kernel driver {Path.GetFileName(new DirectoryInfo(bound).ResolveLinkTarget(true)?.FullName ?? "?")} (use the hwmon source instead)");
        }

        // Opening finds a missing bus or a permission problem; Ina219Source configures the chip at once, so an absent
        // chip is reported here too, naming the source.
        I2cDevice device;
        try
        {
            device = I2cRegisters.Open(bus, address);
        }
        catch (I2cException ex)
        {
            throw new PowerSourceException($"{spec}: {ex.Message}", ex);
        }

        return new Ina219Source(spec, device, settings);
    }

    private static int Integer(string spec, string key, string text, int min, int max) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new PowerSourceException($"{spec}: {key}={text} is not a whole number in {min}..{max}");

    private static double Number(string spec, string key, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new PowerSourceException($"{spec}: {key}={text} is not a number");
}
