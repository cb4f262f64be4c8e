using System.Diagnostics;

namespace ConfigSpec.Telemetry.Sources;

/// <summary>
/// Power from Linux hwmon: the kernel's ina2xx (<c>power1_input</c> µW), ina3221 (per channel bus mV × current mA,
/// rails named by <c>in[1-3]_label</c>) and any device with <c>powerN_input</c> or matching <c>inN_input</c>/<c>currN_input</c>.
/// The sysfs root is a parameter so a fixture tree can stand in. The total is the board input rail when one is
/// labelled (VDD_IN, VIN, POM_5V_IN…), else the sum of the rails.
/// </summary>
public sealed class HwmonSource : IPowerSource
{
    private static readonly string[] InputRails = ["VDD_IN", "POM_5V_IN", "VIN", "VIN_SYS_5V0_TOTAL"];
    private readonly List<Channel> _channels;

    public HwmonSource(string spec, string root = "/sys/class/hwmon", string? device = null, int? channel = null)
    {
        Spec = spec;
        if (!Directory.Exists(root))
        {
            throw new PowerSourceException($"{spec}: hwmon root '{root}' does not exist");
        }

        var candidates = Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal)
            .Select(dir => (Dir: dir, Name: ReadText(Path.Combine(dir, "name"))?.Trim()))
            .Where(d => d.Name is not null && (device is null || d.Name == device))
            .Select(d => (d.Dir, d.Name, Channels: Discover(d.Dir, channel)))
            .Where(d => d.Channels.Count > 0)
            .ToList();
        if (candidates.Count == 0)
        {
            throw new PowerSourceException(device is null
                ? $"{spec}: no hwmon device under '{root}' reports power or voltage and current"
                : $"{spec}: no hwmon device named '{device}' with power channels under '{root}'");
        }

        (DevicePath, DeviceName, _channels) = candidates[0];
    }

    public string Spec { get; }

    public string DevicePath { get; }

    public string? DeviceName { get; }

    public IReadOnlyList<string> Rails => _channels.Select(c => c.Rail).ToList();

    public PowerScope Scope => PowerScope.Board;

    public PowerReading Read()
    {
        var rails = new List<RailPower>(_channels.Count);
        foreach (var channel in _channels)
        {
            var watts = channel.PowerFile is not null
                ? SysfsNumber.Read(Spec, channel.PowerFile) * 1e-6
                : SysfsNumber.Read(Spec, channel.VoltageFile!) * 1e-3 * SysfsNumber.Read(Spec, channel.CurrentFile!) * 1e-3;
            rails.Add(new RailPower(channel.Rail, watts));
        }

        var input = rails.FirstOrDefault(r => InputRails.Contains(r.Rail, StringComparer.OrdinalIgnoreCase));
        var total = input.Rail is not null ? input.Watts : rails.Sum(r => r.Watts);
        return new PowerReading(Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency, total, rails);
    }

    public void Dispose()
    {
    }

    private static List<Channel> Discover(string dir, int? only)
    {
        var channels = new List<Channel>();
        for (var n = 1; n <= 8; n++)
        {
            if (only is not null && only != n)
            {
                continue;
            }

            var power = Path.Combine(dir, $"power{n}_input");
            var label = ReadText(Path.Combine(dir, $"power{n}_label"))?.Trim() ?? ReadText(Path.Combine(dir, $"in{n}_label"))?.Trim();
            if (File.Exists(power))
            {
                channels.Add(new Channel(label ?? $"power{n}", power, null, null));
                continue;
            }

            // ina2xx exposes bus voltage as in1 and shunt as in0; ina3221 numbers bus channels 1..3 with curr1..3.
            var voltage = Path.Combine(dir, $"in{n}_input");
            var current = Path.Combine(dir, $"curr{n}_input");
            if (File.Exists(voltage) && File.Exists(current))
            {
                channels.Add(new Channel(label ?? $"channel{n}", null, voltage, current));
            }
        }

        // The ina2xx driver has power1 and the same rail as in1/curr1: one channel is enough.
        return channels;
    }

    private static string? ReadText(string file)
    {
        try
        {
            return File.Exists(file) ? File.ReadAllText(file) : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private sealed record Channel(string Rail, string? PowerFile, string? VoltageFile, string? CurrentFile);
}
