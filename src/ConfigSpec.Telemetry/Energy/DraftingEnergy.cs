namespace ConfigSpec.Telemetry.Energy;

/// <summary>
/// Energy charged to drafting: the sum over the drafting windows of the board power integrated over each window,
/// and what is left above the idle baseline. Windows shorter than the sampling interval have fewer than two samples
/// inside; their energy comes from the trapezoid between the surrounding samples and they are counted as such.
/// </summary>
public sealed record DraftingEnergy(
    double Joules,
    double Seconds,
    int Windows,
    int SparseWindows,
    int WindowsOverGaps,
    double? IdleWatts,
    bool Estimated)
{
    /// <summary>Energy above the idle baseline (null without a baseline).</summary>
    public double? DynamicJoules => IdleWatts is { } idle ? Joules - (idle * Seconds) : null;

    public double MeanWatts => Seconds > 0 ? Joules / Seconds : 0;

    /// <summary>Charges the windows against the sampler's record; waits for a sample after the last window ends.</summary>
    public static async Task<DraftingEnergy> MeasureAsync(PowerSampler sampler, IReadOnlyList<(double Start, double End)> windows, double? idleWatts,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        ArgumentNullException.ThrowIfNull(windows);
        if (windows.Count == 0)
        {
            return new DraftingEnergy(0, 0, 0, 0, 0, idleWatts, sampler.Source.IsEstimate);
        }

        // One wait for the whole run, then integrate every window over the same snapshot.
        _ = await sampler.MeasureAsync(windows[0].Start, windows[^1].End, cancellationToken).ConfigureAwait(false);
        var samples = sampler.Snapshot();
        double joules = 0, seconds = 0;
        int sparse = 0, gapped = 0;
        foreach (var (start, end) in windows)
        {
            var window = EnergyIntegrator.Integrate(samples, start, end, sampler.MaxGapSeconds);
            joules += window.Joules;
            seconds += end - start;
            if (window.Gaps > 0 || window.Reason?.Contains("both sides", StringComparison.Ordinal) == true)
            {
                gapped++;
            }
            else if (!window.Complete)
            {
                sparse++;
            }
        }

        return new DraftingEnergy(joules, seconds, windows.Count, sparse, gapped, idleWatts, sampler.Source.IsEstimate);
    }

    /// <summary>Mean power while nothing runs: samples the source for <paramref name="duration"/>.</summary>
    public static async Task<double> IdleBaselineAsync(PowerSampler sampler, TimeSpan duration, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        var start = Math.Max(await sampler.FirstSampleAsync(cancellationToken).ConfigureAwait(false), PowerSampler.Now);
        await Task.Delay(duration, cancellationToken).ConfigureAwait(false);
        var window = await sampler.MeasureAsync(start, PowerSampler.Now, cancellationToken).ConfigureAwait(false);
        return window.MeanWatts;
    }
}
