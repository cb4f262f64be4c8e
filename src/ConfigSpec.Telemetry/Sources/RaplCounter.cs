namespace ConfigSpec.Telemetry.Sources;

/// <summary>
/// Average power from a cumulative RAPL energy counter (µJ) that wraps at <c>max_energy_range_uj</c>: when the
/// counter goes backwards the range is added.
/// </summary>
public sealed class RaplCounter(double maxEnergyRangeMicrojoules)
{
    private double? _lastEnergy;
    private double _lastTime;

    /// <summary>Feeds one sample; returns the average watts since the previous sample (null for the first).</summary>
    public double? Add(double time, double energyMicrojoules)
    {
        double? watts = null;
        if (_lastEnergy is { } previous && time > _lastTime)
        {
            var delta = energyMicrojoules - previous;
            if (delta < 0)
            {
                delta += maxEnergyRangeMicrojoules;
            }

            watts = delta * 1e-6 / (time - _lastTime);
        }

        _lastEnergy = energyMicrojoules;
        _lastTime = time;
        return watts;
    }
}
