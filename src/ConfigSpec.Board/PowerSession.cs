using ConfigSpec.Contracts;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Telemetry;
using ConfigSpec.Telemetry.Energy;
using ConfigSpec.Telemetry.Sources;
using ConfigSpec.Transport.Telemetry;

namespace ConfigSpec.Board;

/// <summary>A power source sampled in the background, with the idle baseline taken before work starts.</summary>
public sealed class PowerSession : IAsyncDisposable
{
    private PowerSession(string spec, IPowerSource source, PowerSampler sampler, double? idleWatts)
    {
        Spec = spec;
        Source = source;
        Sampler = sampler;
        IdleWatts = idleWatts;
    }

    /// <summary>Where a board's power sources live (sysfs, hwmon, I2C) and how an <c>mqtt:</c> source is reached.</summary>
    public static SourceEnvironment Sources { get; } = new() { Mqtt = MqttPowerSource.Create };

    public string Spec { get; }

    public IPowerSource Source { get; }

    public PowerSampler Sampler { get; }

    public double? IdleWatts { get; }

    /// <summary>
    /// Opens <paramref name="spec"/> (<c>auto</c> picks the board's own sensor or a labelled estimate), starts sampling
    /// and measures the idle baseline for <paramref name="idle"/> ("0s" = none). Null when <paramref name="spec"/> is null.
    /// </summary>
    public static async Task<PowerSession?> StartAsync(string? spec, string interval, string idle, CancellationToken cancellationToken)
    {
        if (spec is null)
        {
            return null;
        }

        if (spec.Trim() == "auto")
        {
            spec = PowerSources.ResolveAuto(DeviceIdentity.Board(), Sources);
        }

        var source = PowerSources.Create(spec, Sources);
        var sampler = new PowerSampler(source, Durations.Parse(interval, "power_interval"));
        try
        {
            sampler.Start();
            double? idleWatts = null;
            if (idle.Trim() is not ("0" or "0s" or "0ms"))
            {
                idleWatts = await DraftingEnergy.IdleBaselineAsync(sampler, Durations.Parse(idle, "idle_baseline"), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await sampler.FirstSampleAsync(cancellationToken).ConfigureAwait(false);
            }

            return new PowerSession(spec, source, sampler, idleWatts);
        }
        catch
        {
            await sampler.DisposeAsync().ConfigureAwait(false);
            source.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Sampler.DisposeAsync().ConfigureAwait(false);
        Source.Dispose();
    }
}
