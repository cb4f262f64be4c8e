namespace ConfigSpec.Telemetry.Energy;

/// <summary>One rail's time-weighted mean and extremes over a recording.</summary>
public sealed record RailSummary(string Rail, double Mean, double Min, double Max);

/// <summary>
/// A recording's figures on its own time line: energy is the trapezoid of the total over the log's timestamps, and the
/// means are that energy (or each rail's) over the log's span, so every mean lies between its minimum and maximum.
/// </summary>
public sealed record RecordedEnergy(double Start, double End, double Joules, double MeanWatts, double MinWatts, double MaxWatts, int Samples,
    double MedianIntervalSeconds, IReadOnlyList<RailSummary> Rails)
{
    public double Seconds => End - Start;

    public static RecordedEnergy Of(IReadOnlyList<PowerReading> readings)
    {
        ArgumentNullException.ThrowIfNull(readings);
        if (readings.Count == 0)
        {
            throw new PowerSourceException("the recording has no readings");
        }

        for (var i = 1; i < readings.Count; i++)
        {
            if (readings[i].Time < readings[i - 1].Time)
            {
                throw new PowerSourceException($"reading {i + 1} of the recording goes back in time ({readings[i].Time:F3} s after {readings[i - 1].Time:F3} s)");
            }
        }

        var start = readings[0].Time;
        var end = readings[^1].Time;
        var joules = Trapezoid(readings, r => r.TotalWatts);
        var mean = end > start ? joules / (end - start) : readings.Average(r => r.TotalWatts);
        var steps = readings.Zip(readings.Skip(1), (a, b) => b.Time - a.Time).Order().ToList();
        var names = readings.SelectMany(r => r.Rails.Select(x => x.Rail)).Distinct(StringComparer.Ordinal).ToList();
        var rails = names.Select(name =>
        {
            double Watts(PowerReading r) => r.Rails.FirstOrDefault(x => x.Rail == name).Watts;
            var (min, max) = (readings.Min(Watts), readings.Max(Watts));
            // A time-weighted mean lies within [min, max]; the clamp only absorbs the last bit of float rounding.
            var railMean = Math.Clamp(end > start ? Trapezoid(readings, Watts) / (end - start) : readings.Average(Watts), min, max);
            return new RailSummary(name, railMean, min, max);
        }).ToList();
        var (lowest, highest) = (readings.Min(r => r.TotalWatts), readings.Max(r => r.TotalWatts));
        return new RecordedEnergy(start, end, joules, Math.Clamp(mean, lowest, highest), lowest, highest, readings.Count,
            steps.Count > 0 ? steps[steps.Count / 2] : 0, rails);
    }

    private static double Trapezoid(IReadOnlyList<PowerReading> readings, Func<PowerReading, double> watts)
    {
        var sum = 0.0;
        for (var i = 1; i < readings.Count; i++)
        {
            sum += (readings[i].Time - readings[i - 1].Time) * (watts(readings[i]) + watts(readings[i - 1])) / 2;
        }

        return sum;
    }
}
