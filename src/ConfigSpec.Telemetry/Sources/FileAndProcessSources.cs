using System.Diagnostics;
using System.Globalization;

namespace ConfigSpec.Telemetry.Sources;

/// <summary>
/// Replays a CSV of <c>time_s,watts</c> (what lab runs record; a header line is allowed). Each read returns the next
/// row; at the end the source reports that the recording is exhausted.
/// </summary>
public sealed class ReplaySource : IRecordedPowerSource
{
    private readonly List<(double Time, double Watts)> _rows = [];
    private int _next;

    public ReplaySource(string spec, string file)
    {
        Spec = spec;
        if (!File.Exists(file))
        {
            throw new PowerSourceException($"{spec}: recording '{file}' does not exist");
        }

        var lineNumber = 0;
        foreach (var line in File.ReadLines(file))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line) || (lineNumber == 1 && !char.IsDigit(line.TrimStart()[0]) && line.TrimStart()[0] != '-'))
            {
                continue;
            }

            var parts = line.Split(',');
            if (parts.Length < 2
                || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var time)
                || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var watts)
                || !double.IsFinite(time) || !double.IsFinite(watts) || watts < 0)
            {
                throw new PowerSourceException($"{spec}: line {lineNumber} of '{file}' is not 'time_s,watts': '{line}'");
            }

            _rows.Add((time, watts));
        }

        if (_rows.Count == 0)
        {
            throw new PowerSourceException($"{spec}: recording '{file}' has no samples");
        }
    }

    public string Spec { get; }

    public PowerScope Scope { get; init; } = PowerScope.Board;

    public IReadOnlyList<(double Time, double Watts)> Rows => _rows;

    public IReadOnlyList<PowerReading> Recording => [.. _rows.Select(Reading)];

    public PowerReading Read()
    {
        if (_next >= _rows.Count)
        {
            throw new PowerSourceException($"{Spec}: the recording is exhausted after {_rows.Count} samples");
        }

        return Reading(_rows[_next++]);
    }

    private static PowerReading Reading((double Time, double Watts) row) => new(row.Time, row.Watts, [new RailPower("recorded", row.Watts)]);

    public void Dispose()
    {
    }
}

/// <summary>
/// Jetson power from tegrastats: a running <c>tegrastats --interval MS</c> process, or a captured log
/// (<c>file=PATH</c>, one line per read). Rails by name (<c>rails=A+B</c>) or the board input rail by default.
/// A log's <see cref="Recording"/> keeps its own time: the lines' leading <c>MM-DD-YYYY HH:MM:SS</c> timestamps (lines
/// sharing a second spread evenly over it), or one line per <c>interval</c> when the log has none.
/// </summary>
public sealed partial class TegrastatsSource : IRecordedPowerSource
{
    private readonly IReadOnlyList<string> _rails;
    private readonly string? _file;
    private readonly int _intervalMs;
    private readonly IEnumerator<string>? _log;
    private readonly Process? _process;
    private readonly Lock _gate = new();
    private string? _latest;

    public TegrastatsSource(string spec, string? file, IReadOnlyList<string> rails, int intervalMs = 100, string executable = "tegrastats")
    {
        Spec = spec;
        _rails = rails;
        _file = file;
        _intervalMs = intervalMs;
        if (file is not null)
        {
            if (!File.Exists(file))
            {
                throw new PowerSourceException($"{spec}: log '{file}' does not exist");
            }

            _log = File.ReadLines(file).Where(l => !string.IsNullOrWhiteSpace(l)).GetEnumerator();
            return;
        }

        try
        {
            var start = new ProcessStartInfo(executable) { RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add("--interval");
            start.ArgumentList.Add(intervalMs.ToString(CultureInfo.InvariantCulture));
            _process = Process.Start(start) ?? throw new PowerSourceException($"{spec}: '{executable}' did not start");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new PowerSourceException($"{spec}: '{executable}' cannot be run ({ex.Message}); it exists on NVIDIA Jetson boards only", ex);
        }

        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { Length: > 0 } line)
            {
                lock (_gate)
                {
                    _latest = line;
                }
            }
        };
        _process.BeginOutputReadLine();
    }

    public string Spec { get; }

    public PowerScope Scope => PowerScope.Board;

    public PowerReading Read()
    {
        string? line;
        if (_log is not null)
        {
            line = _log.MoveNext() ? _log.Current : throw new PowerSourceException($"{Spec}: the log is exhausted");
        }
        else
        {
            if (_process!.HasExited)
            {
                throw new PowerSourceException($"{Spec}: tegrastats exited with code {_process.ExitCode}");
            }

            lock (_gate)
            {
                line = _latest;
            }

            if (line is null)
            {
                throw new PowerSourceException($"{Spec}: tegrastats has not printed a line yet");
            }
        }

        var rails = TegrastatsParser.Parse(line);
        if (rails.Count == 0)
        {
            throw new PowerSourceException($"{Spec}: no power rails in the tegrastats line '{(line.Length > 80 ? line[..80] + "…" : line)}'");
        }

        return new PowerReading(Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency, TegrastatsParser.Total(rails, _rails), rails);
    }

    public IReadOnlyList<PowerReading> Recording
    {
        get
        {
            if (_file is null)
            {
                throw new PowerSourceException($"{Spec}: a running tegrastats has no recording; give file=LOG");
            }

            var lines = new List<(int Number, DateTime? Stamp, IReadOnlyList<RailPower> Rails)>();
            var number = 0;
            foreach (var line in File.ReadLines(_file))
            {
                number++;
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }

                var rails = TegrastatsParser.Parse(line);
                if (rails.Count == 0)
                {
                    throw new PowerSourceException($"{Spec}: line {number} of '{_file}' has no power rails: '{(line.Length > 80 ? line[..80] + "…" : line)}'");
                }

                var m = Stamp().Match(line);
                DateTime? stamp = m.Success && DateTime.TryParseExact(m.Value.Trim(), "MM-dd-yyyy HH:mm:ss", CultureInfo.InvariantCulture, DateTimeStyles.None, out var t) ? t : null;
                lines.Add((number, stamp, rails));
            }

            if (lines.Count == 0)
            {
                throw new PowerSourceException($"{Spec}: log '{_file}' has no lines");
            }

            var stamped = lines.All(l => l.Stamp is not null);
            var readings = new List<PowerReading>(lines.Count);
            // With timestamps, a run of lines within one second (an interval under 1 s) is spread evenly over that second.
            int runStart = 0, runLength = 0;
            for (var i = 0; i < lines.Count; i++)
            {
                double time;
                if (!stamped)
                {
                    time = i * _intervalMs / 1000.0;
                }
                else
                {
                    if (i > 0 && lines[i].Stamp < lines[i - 1].Stamp)
                    {
                        throw new PowerSourceException($"{Spec}: line {lines[i].Number} of '{_file}' goes back in time ({lines[i].Stamp:HH:mm:ss} after {lines[i - 1].Stamp:HH:mm:ss})");
                    }

                    if (i == runStart + runLength)
                    {
                        (runStart, runLength) = (i, 1);
                        while (i + runLength < lines.Count && lines[i + runLength].Stamp == lines[i].Stamp)
                        {
                            runLength++;
                        }
                    }

                    time = (lines[i].Stamp!.Value - lines[0].Stamp!.Value).TotalSeconds + ((i - runStart) / (double)runLength);
                }

                readings.Add(new PowerReading(time, TegrastatsParser.Total(lines[i].Rails, _rails), lines[i].Rails));
            }

            return readings;
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^\s*\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}")]
    private static partial System.Text.RegularExpressions.Regex Stamp();

    public void Dispose()
    {
        _log?.Dispose();
        if (_process is { HasExited: false })
        {
            _process.Kill();
        }

        _process?.Dispose();
    }
}

/// <summary>Raspberry Pi 5 SoC-side rails from <c>vcgencmd pmic_read_adc</c>, or a captured output (<c>file=PATH</c>).</summary>
public sealed class PmicSource(string spec, string? file, string executable = "vcgencmd") : IPowerSource
{
    public string Spec { get; } = spec;

    /// <summary>The PMIC sees the SoC-side rails only, not the whole board.</summary>
    public PowerScope Scope => PowerScope.SocRails;

    public PowerReading Read()
    {
        string output;
        if (file is not null)
        {
            output = File.Exists(file) ? File.ReadAllText(file) : throw new PowerSourceException($"{Spec}: file '{file}' does not exist");
        }
        else
        {
            try
            {
                var start = new ProcessStartInfo(executable) { RedirectStandardOutput = true, RedirectStandardError = true };
                start.ArgumentList.Add("pmic_read_adc");
                using var process = Process.Start(start)!;
                output = process.StandardOutput.ReadToEnd();
                process.WaitForExit();
                if (process.ExitCode != 0)
                {
                    throw new PowerSourceException($"{Spec}: '{executable} pmic_read_adc' failed with code {process.ExitCode} (a Raspberry Pi 5 is needed)");
                }
            }
            catch (System.ComponentModel.Win32Exception ex)
            {
                throw new PowerSourceException($"{Spec}: '{executable}' cannot be run ({ex.Message}); it exists on Raspberry Pi OS only", ex);
            }
        }

        var rails = PmicParser.Parse(output, Spec);
        return new PowerReading(Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency, rails.Sum(r => r.Watts), rails);
    }

    public void Dispose()
    {
    }
}

/// <summary>Package power from Intel/AMD RAPL (<c>/sys/class/powercap/intel-rapl:N/energy_uj</c>), with wrap-around.</summary>
public sealed class RaplSource : IPowerSource
{
    private readonly List<(string Name, string EnergyFile, RaplCounter Counter)> _domains = [];

    public RaplSource(string spec, string root = "/sys/class/powercap")
    {
        Spec = spec;
        if (!Directory.Exists(root))
        {
            throw new PowerSourceException($"{spec}: '{root}' does not exist (no RAPL on this machine)");
        }

        foreach (var dir in Directory.EnumerateDirectories(root, "intel-rapl:*").Where(d => Path.GetFileName(d).Count(c => c == ':') == 1).Order(StringComparer.Ordinal))
        {
            var energy = Path.Combine(dir, "energy_uj");
            var range = Path.Combine(dir, "max_energy_range_uj");
            if (!File.Exists(energy) || !File.Exists(range))
            {
                continue;
            }

            var name = File.Exists(Path.Combine(dir, "name")) ? File.ReadAllText(Path.Combine(dir, "name")).Trim() : Path.GetFileName(dir);
            _domains.Add((name, energy, new RaplCounter(ReadNumber(range))));
        }

        if (_domains.Count == 0)
        {
            throw new PowerSourceException($"{spec}: no intel-rapl package domains under '{root}'");
        }

        foreach (var (_, energyFile, counter) in _domains)
        {
            counter.Add(Now, ReadNumber(energyFile));
        }
    }

    public string Spec { get; }

    public PowerScope Scope => PowerScope.SocRails;

    private static double Now => Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;

    public PowerReading Read()
    {
        var now = Now;
        var rails = new List<RailPower>();
        foreach (var (name, energyFile, counter) in _domains)
        {
            rails.Add(new RailPower(name, counter.Add(now, ReadNumber(energyFile)) ?? 0));
        }

        return new PowerReading(now, rails.Sum(r => r.Watts), rails);
    }

    private double ReadNumber(string file) => SysfsNumber.Read(Spec, file, "RAPL counters are often root-only");

    public void Dispose()
    {
    }
}
