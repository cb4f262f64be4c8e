using System.Device.I2c;
using System.Diagnostics;
using ConfigSpec.Telemetry.I2c;

namespace ConfigSpec.Telemetry.Ina219;

/// <summary>Board power from an INA219 on the 5 V supply line (high side), read over System.Device.I2c (Linux i2c-dev).</summary>
public sealed class Ina219Source : IPowerSource
{
    private readonly Ina219Device _device;

    public Ina219Source(string spec, I2cDevice device, Ina219Settings settings)
    {
        Spec = spec;
        settings.Validate(spec);
        _device = new Ina219Device(device, settings);
        try
        {
            _device.Configure();
        }
        catch (I2cException ex)
        {
            _device.Dispose();
            throw new PowerSourceException($"{spec}: {ex.Message}", ex);
        }
    }

    public string Spec { get; }

    public PowerScope Scope => PowerScope.Board;

    public Ina219Device Device => _device;

    public PowerReading Read()
    {
        try
        {
            var reading = _device.Read();
            return new PowerReading(Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency, reading.PowerWatts, [new RailPower("5V_IN", reading.PowerWatts)]);
        }
        catch (I2cException ex)
        {
            throw new PowerSourceException($"{Spec}: {ex.Message}", ex);
        }
        catch (PowerSourceException ex)
        {
            throw new PowerSourceException($"{Spec}: {ex.Message}", ex);
        }
    }

    public void Dispose() => _device.Dispose();
}
