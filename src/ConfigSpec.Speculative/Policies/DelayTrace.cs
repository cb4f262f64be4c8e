using System.Globalization;
using ConfigSpec.Interop;
using ConfigSpec.Speculative.Sampling;

namespace ConfigSpec.Speculative.Policies;

/// <summary>
/// One-way network delay over time, for experiments: <c>fixed:MS</c>, <c>jitter:MS,J</c> (uniform ±J),
/// <c>markov:LOW,HIGH,DWELL_S</c> (two states, exponential dwell with that mean), or <c>file:PATH</c> / a path to a CSV of
/// <c>time_s,delay_ms</c> (held until the next row, repeating from the start after the last).
/// </summary>
public sealed class DelayTrace
{
    private readonly Func<double, double> _delayMs;

    private DelayTrace(string spec, Func<double, double> delayMs)
    {
        Spec = spec;
        _delayMs = delayMs;
    }

    public string Spec { get; }

    /// <summary>One-way delay in milliseconds at <paramref name="seconds"/> into the run.</summary>
    public double DelayMs(double seconds) => _delayMs(Math.Max(0, seconds));

    public static DelayTrace Parse(string spec, ulong seed = 1)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        var colon = spec.IndexOf(':', StringComparison.Ordinal);
        var kind = colon < 0 ? (File.Exists(spec) ? "file" : spec) : spec[..colon];
        var args = colon < 0 ? (kind == "file" ? spec : string.Empty) : spec[(colon + 1)..];
        var numbers = kind == "file" ? [] : args.Split(',', StringSplitOptions.TrimEntries).Select(a => Number(spec, a)).ToArray();
        switch (kind)
        {
            case "fixed" when numbers.Length == 1:
                return new DelayTrace(spec, _ => numbers[0]);
            case "jitter" when numbers.Length == 2:
                {
                    var rng = new Xoshiro256(seed);
                    return new DelayTrace(spec, _ => Math.Max(0, numbers[0] + ((rng.NextDouble() * 2) - 1) * numbers[1]));
                }

            case "markov" when numbers.Length == 3 && numbers[2] > 0:
                {
                    var switches = MarkovSwitches(numbers[2], seed);
                    // Regime 0 (low) until the first switch, then alternating.
                    int Regime(double t) => switches.BinarySearch(t) is var i && i >= 0 ? (i + 1) % 2 : (~i) % 2;
                    return new DelayTrace(spec, t => Regime(t) == 0 ? numbers[0] : numbers[1]);
                }

            case "file":
                return FromFile(spec, args);
            default:
                throw new ConfigSpecException($"delay trace '{spec}': use fixed:MS, jitter:MS,J, markov:LOW,HIGH,DWELL_S or file:PATH (time_s,delay_ms)");
        }
    }

    private static List<double> MarkovSwitches(double meanDwell, ulong seed)
    {
        // Exponential dwell times, generated for a day of simulated time (enough for any run).
        var rng = new Xoshiro256(seed);
        var times = new List<double>();
        var t = 0.0;
        while (t < 86_400)
        {
            t += -meanDwell * Math.Log(1 - rng.NextDouble());
            times.Add(t);
        }

        return times;
    }

    private static DelayTrace FromFile(string spec, string path)
    {
        if (!File.Exists(path))
        {
            throw new ConfigSpecException($"delay trace '{spec}': {path}: no such file");
        }

        var rows = new List<(double Time, double Ms)>();
        var line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            var t = text.Trim();
            if (t.Length == 0 || t.StartsWith('#') || (line == 1 && !char.IsDigit(t[0])))
            {
                continue;
            }

            var parts = t.Split(',');
            if (parts.Length < 2 || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var time)
                || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) || ms < 0 || !double.IsFinite(ms))
            {
                throw new ConfigSpecException($"delay trace {path}, line {line}: '{t}' is not time_s,delay_ms");
            }

            if (rows.Count > 0 && time <= rows[^1].Time)
            {
                throw new ConfigSpecException($"delay trace {path}, line {line}: times must increase");
            }

            rows.Add((time, ms));
        }

        if (rows.Count == 0)
        {
            throw new ConfigSpecException($"delay trace {path}: no rows");
        }

        var period = rows.Count > 1 ? rows[^1].Time + (rows[^1].Time - rows[^2].Time) : double.PositiveInfinity;
        return new DelayTrace(spec, seconds =>
        {
            var t = double.IsInfinity(period) ? seconds : seconds % period;
            var i = rows.FindLastIndex(r => r.Time <= t);
            return rows[Math.Max(0, i)].Ms;
        });
    }

    private static double Number(string spec, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= 0 && double.IsFinite(v)
            ? v
            : throw new ConfigSpecException($"delay trace '{spec}': '{text}' is not a non-negative number");
}
