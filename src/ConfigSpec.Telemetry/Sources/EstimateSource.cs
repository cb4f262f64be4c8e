using System.Diagnostics;
using System.Globalization;

namespace ConfigSpec.Telemetry.Sources;

/// <summary>
/// Not a measurement: a board's idle and full-load watts interpolated by CPU utilisation from <c>/proc/stat</c>.
/// Used only when chosen or when nothing else exists, and always labelled <see cref="PowerScope.Estimated"/>.
/// The figures are typical published whole-board values, good to perhaps ±30 %.
/// </summary>
public sealed class EstimateSource : IPowerSource
{
    public static readonly IReadOnlyDictionary<string, (double IdleWatts, double PeakWatts)> Boards = new Dictionary<string, (double, double)>(StringComparer.Ordinal)
    {
        ["rpi4b"] = (2.7, 6.4),
        ["rpi5"] = (3.0, 9.0),
        ["orin-nano"] = (5.0, 15.0),
        ["orin-nx"] = (6.0, 25.0),
        ["orin-agx"] = (15.0, 60.0),
        ["x86"] = (10.0, 65.0),
    };

    private readonly string _stat;
    private readonly (double Idle, double Peak) _figures;
    private (ulong Idle, ulong Total)? _last;

    public EstimateSource(string spec, string board, string procRoot = "/proc")
    {
        Spec = spec;
        if (!Boards.TryGetValue(board, out var figures))
        {
            throw new PowerSourceException($"{spec}: unknown board '{board}' (known: {string.Join(", ", Boards.Keys)})");
        }

        Board = board;
        _figures = figures;
        _stat = Path.Combine(procRoot, "stat");
        _last = ReadStat();
    }

    public string Spec { get; }

    public string Board { get; }

    public PowerScope Scope => PowerScope.Estimated;

    public PowerReading Read()
    {
        var now = ReadStat();
        var utilisation = 0.0;
        if (_last is { } last && now.Total > last.Total)
        {
            utilisation = 1.0 - ((double)(now.Idle - last.Idle) / (now.Total - last.Total));
        }

        _last = now;
        var watts = _figures.Idle + ((_figures.Peak - _figures.Idle) * Math.Clamp(utilisation, 0, 1));
        return new PowerReading(Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency, watts, [new RailPower("estimated", watts)]);
    }

    private (ulong Idle, ulong Total) ReadStat()
    {
        string? line;
        try
        {
            line = File.ReadLines(_stat).FirstOrDefault();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PowerSourceException($"{Spec}: cannot read '{_stat}' ({ex.Message})", ex);
        }

        var parts = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts is null || parts.Length < 5 || parts[0] != "cpu")
        {
            throw new PowerSourceException($"{Spec}: '{_stat}' does not start with a 'cpu' line");
        }

        ulong total = 0, idle = 0;
        for (var i = 1; i < parts.Length; i++)
        {
            if (!ulong.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                throw new PowerSourceException($"{Spec}: '{_stat}' has a non-numeric field '{parts[i]}'");
            }

            total += value;
            if (i is 4 or 5)
            {
                idle += value; // idle + iowait
            }
        }

        return (idle, total);
    }

    public void Dispose()
    {
    }
}
