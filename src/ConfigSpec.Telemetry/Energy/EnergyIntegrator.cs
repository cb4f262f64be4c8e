namespace ConfigSpec.Telemetry.Energy;

/// <summary>A timed power sample (seconds on a monotonic clock, total watts, and the rails when the source has them).</summary>
public readonly record struct PowerSample(double Time, double Watts, IReadOnlyList<RailPower>? Rails = null);

/// <summary>
/// Energy over a window: joules, mean watts, how many samples fell inside, and the gaps (intervals between
/// consecutive samples longer than the allowed gap) that were not bridged. An incomplete window carries no
/// invented energy: its joules cover only the sampled parts.
/// </summary>
public sealed record WindowEnergy(double Start, double End, double Joules, int Samples, int Gaps, double GapSeconds, bool Complete, string? Reason)
{
    public double Seconds => End - Start;

    /// <summary>Mean power over the covered part of the window.</summary>
    public double MeanWatts => Seconds - GapSeconds > 0 ? Joules / (Seconds - GapSeconds) : 0;
}

/// <summary>
/// Trapezoidal integration of power samples over a window, with linear interpolation at the window's edges.
/// Intervals longer than <c>maxGap</c> are gaps: not integrated, counted, and they make the window incomplete,
/// as does a window with fewer than <c>minSamples</c> samples inside or one not covered by samples at both ends.
/// </summary>
public static class EnergyIntegrator
{
    public static WindowEnergy Integrate(IReadOnlyList<PowerSample> samples, double start, double end, double maxGap, int minSamples = 2)
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (end < start)
        {
            throw new ArgumentException($"window ends ({end}) before it starts ({start})", nameof(end));
        }

        double joules = 0, gapSeconds = 0;
        int gaps = 0, inside = 0;
        var covered = samples.Count > 0 && samples[0].Time <= start && samples[^1].Time >= end;
        for (var i = 1; i < samples.Count; i++)
        {
            var a = samples[i - 1];
            var b = samples[i];
            if (a.Time >= start && a.Time <= end)
            {
                inside++;
            }

            var from = Math.Max(a.Time, start);
            var to = Math.Min(b.Time, end);
            if (to <= from)
            {
                continue;
            }

            if (b.Time - a.Time > maxGap)
            {
                gaps++;
                gapSeconds += to - from;
                continue;
            }

            var slope = (b.Watts - a.Watts) / (b.Time - a.Time);
            var wFrom = a.Watts + (slope * (from - a.Time));
            var wTo = a.Watts + (slope * (to - a.Time));
            joules += (wFrom + wTo) / 2 * (to - from);
        }

        if (samples.Count > 0 && samples[^1].Time >= start && samples[^1].Time <= end)
        {
            inside++;
        }

        string? reason = null;
        if (!covered)
        {
            reason = "no samples on both sides of the window";
        }
        else if (gaps > 0)
        {
            reason = $"{gaps} gap(s), {gapSeconds * 1000:0.#} ms unsampled";
        }
        else if (inside < minSamples)
        {
            reason = $"only {inside} sample(s) inside the window (at least {minSamples} needed)";
        }

        return new WindowEnergy(start, end, joules, inside, gaps, gapSeconds, reason is null, reason);
    }
}
