using ConfigSpec.Telemetry;
using ConfigSpec.Telemetry.Energy;

namespace ConfigSpec.Tests.Telemetry;

public class EnergyTests
{
    private static List<PowerSample> Sample(Func<double, double> watts, double from, double to, double rate, double phase = 0.3)
    {
        var samples = new List<PowerSample>();
        for (var t = from + (phase / rate); t <= to; t += 1 / rate)
        {
            samples.Add(new PowerSample(t, watts(t)));
        }

        return samples;
    }

    [Fact]
    public void Constant_power_integrates_exactly()
    {
        var energy = EnergyIntegrator.Integrate(Sample(_ => 4.2, 0, 12, 100), 1, 11, 0.05);
        Assert.True(energy.Complete, energy.Reason);
        Assert.Equal(42.0, energy.Joules, 9);
        Assert.Equal(4.2, energy.MeanWatts, 9);
        Assert.InRange(energy.Samples, 999, 1001);
    }

    [Fact]
    public void Ramp_integrates_within_half_a_percent()
    {
        // 2 W rising to 7 W over the window: exact energy = (2 + 7) / 2 × 10 = 45 J.
        var energy = EnergyIntegrator.Integrate(Sample(t => 2 + (0.5 * (t - 1)), 0, 12, 50), 1, 11, 0.1);
        Assert.InRange(energy.Joules, 45 * 0.995, 45 * 1.005);
    }

    [Fact]
    public void Square_wave_integrates_within_half_a_percent()
    {
        // 2 W / 6 W alternating every 0.5 s, sampled at 100 Hz: exact energy over 10 s = 40 J.
        static double Square(double t) => Math.Floor(t * 2) % 2 == 0 ? 2 : 6;
        var energy = EnergyIntegrator.Integrate(Sample(Square, 0, 12, 100, phase: 0.37), 1, 11, 0.05);
        Assert.InRange(energy.Joules, 40 * 0.995, 40 * 1.005);
    }

    [Fact]
    public void A_gap_is_recorded_and_never_filled_in()
    {
        var samples = Sample(_ => 5, 0, 10, 100).Where(s => s.Time is < 4 or > 6).ToList();
        var energy = EnergyIntegrator.Integrate(samples, 1, 9, 0.05);
        Assert.False(energy.Complete);
        Assert.Equal(1, energy.Gaps);
        Assert.InRange(energy.GapSeconds, 1.99, 2.02);
        Assert.InRange(energy.Joules, 5 * 5.98, 5 * 6.01); // only the 6 sampled seconds
        Assert.Equal(5.0, energy.MeanWatts, 6);
        Assert.Contains("gap", energy.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_window_with_too_few_samples_or_not_covered_is_incomplete()
    {
        var sparse = new List<PowerSample> { new(0, 5), new(1, 5) };
        var short1 = EnergyIntegrator.Integrate(sparse, 0.2, 0.4, 2);
        Assert.False(short1.Complete);
        Assert.Contains("only 0 sample(s)", short1.Reason, StringComparison.Ordinal);
        Assert.Equal(1.0, short1.Joules, 9); // still the true energy of what was sampled, flagged

        var uncovered = EnergyIntegrator.Integrate(sparse, 0.5, 2, 2);
        Assert.False(uncovered.Complete);
        Assert.Contains("both sides", uncovered.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sampler_charges_a_marked_window_and_survives_a_failing_sensor()
    {
        using var source = new FunctionSource(_ => 3.0);
        await using var sampler = new PowerSampler(source, TimeSpan.FromMilliseconds(20));
        sampler.Start();
        await Task.Delay(100);
        var start = PowerSampler.Now;
        await Task.Delay(300);
        var end = PowerSampler.Now;
        var window = await sampler.MeasureAsync(start, end);
        Assert.True(window.Complete, window.Reason);
        Assert.InRange(window.Joules, 3.0 * (end - start) * 0.99, 3.0 * (end - start) * 1.01);
        var expected = (end - start) / 0.02;
        Assert.InRange(window.Samples, (int)(expected * 0.5), (int)expected + 2);

        source.Failing = true;
        var failStart = PowerSampler.Now;
        await Task.Delay(200);
        source.Failing = false;
        await Task.Delay(100);
        var failWindow = await sampler.MeasureAsync(failStart - 0.05, PowerSampler.Now);
        Assert.False(failWindow.Complete);
        Assert.True(failWindow.Gaps >= 1);
        Assert.True(sampler.Failures >= 5);
        Assert.Contains("sensor unplugged", sampler.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public void Sampling_interval_out_of_range_is_refused()
    {
        using var source = new FunctionSource(_ => 1);
        Assert.Contains("out of range", Assert.Throws<PowerSourceException>(() => new PowerSampler(source, TimeSpan.Zero)).Message, StringComparison.Ordinal);
    }

    private sealed class FunctionSource(Func<double, double> watts) : IPowerSource
    {
        public bool Failing { get; set; }

        public string Spec => "test:function";

        public PowerScope Scope => PowerScope.Board;

        public PowerReading Read()
        {
            if (Failing)
            {
                throw new PowerSourceException("test:function: sensor unplugged");
            }

            var now = PowerSampler.Now;
            var w = watts(now);
            return new PowerReading(now, w, [new RailPower("total", w)]);
        }

        public void Dispose()
        {
        }
    }
}
