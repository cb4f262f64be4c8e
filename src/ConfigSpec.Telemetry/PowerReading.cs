
namespace ConfigSpec.Telemetry;

/// <summary>What a source's watts stand for, so reports never pass one off as another.</summary>
public enum PowerScope
{
    /// <summary>The whole board at its supply input (INA219 high-side on 5 V, a board input rail).</summary>
    Board,

    /// <summary>At the wall, including the power supply's losses (smart plug).</summary>
    Wall,

    /// <summary>Some rails of the SoC only (Pi 5 PMIC, RAPL package).</summary>
    SocRails,

    /// <summary>Not measured: board figures scaled by CPU load.</summary>
    Estimated,
}

/// <summary>One rail's power at one instant.</summary>
public readonly record struct RailPower(string Rail, double Watts);

/// <summary>
/// A reading: the monotonic time it was taken (seconds since an arbitrary origin), the rails read, and the total
/// the source reports (the input rail when one exists, else the sum of the rails).
/// </summary>
public sealed record PowerReading(double Time, double TotalWatts, IReadOnlyList<RailPower> Rails);

/// <summary>A power source failed to read or is misconfigured; the message names the source and the cause.</summary>
public sealed class PowerSourceException : ConfigSpecException
{
    public PowerSourceException() { }

    public PowerSourceException(string message) : base(message) { }

    public PowerSourceException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>A source of power readings (a sensor, a log, a model).</summary>
public interface IPowerSource : IDisposable
{
    /// <summary>The source specification it was made from, e.g. <c>ina219:bus=1,addr=0x40</c>.</summary>
    string Spec { get; }

    PowerScope Scope { get; }

    bool IsEstimate => Scope == PowerScope.Estimated;

    /// <summary>Takes one reading; throws <see cref="PowerSourceException"/> when the sensor cannot be read.</summary>
    PowerReading Read();
}

/// <summary>
/// A log of readings taken earlier (a replay CSV, a captured tegrastats log). Its figures are computed on the log's own
/// time line (<see cref="Energy.RecordedEnergy"/>), never by sampling it at this machine's pace.
/// </summary>
public interface IRecordedPowerSource : IPowerSource
{
    /// <summary>Every reading of the log in order, times in seconds from the log's start; throws naming the bad line.</summary>
    IReadOnlyList<PowerReading> Recording { get; }
}

