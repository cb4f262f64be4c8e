using System.Device.I2c;
using ConfigSpec.Telemetry.I2c;

namespace ConfigSpec.Telemetry.Ina219;

/// <summary>INA219 settings: the shunt and the largest current expected through it.</summary>
public sealed record Ina219Settings(double ShuntOhms = 0.1, double MaxCurrentAmps = 3.2)
{
    /// <summary>Configuration register: 32 V bus range, PGA /8 (±320 mV), 12-bit ×128 averaging on both ADCs, continuous.</summary>
    public ushort Configuration { get; init; } = 0x3FFF;

    public void Validate(string source)
    {
        if (ShuntOhms is <= 0 or > 10 || !double.IsFinite(ShuntOhms))
        {
            throw new PowerSourceException($"{source}: shunt={ShuntOhms} Ω is out of range (0 < shunt ≤ 10)");
        }

        if (MaxCurrentAmps is <= 0 or > 100 || !double.IsFinite(MaxCurrentAmps))
        {
            throw new PowerSourceException($"{source}: max-current={MaxCurrentAmps} A is out of range (0 < max-current ≤ 100)");
        }

        if (ShuntOhms * MaxCurrentAmps > 0.32 + 1e-9)
        {
            throw new PowerSourceException(
                $"{source}: {MaxCurrentAmps} A through {ShuntOhms} Ω is {ShuntOhms * MaxCurrentAmps * 1000:0} mV, over the INA219's ±320 mV shunt range; use a smaller shunt");
        }
    }
}

/// <summary>One INA219 measurement in SI units.</summary>
public readonly record struct Ina219Reading(double ShuntVolts, double BusVolts, double CurrentAmps, double PowerWatts);

/// <summary>
/// The TI INA219 current/power monitor. Calibration follows the datasheet: Current_LSB ≥ I_max / 32768,
/// Cal = trunc(0.04096 / (Current_LSB × R_shunt)); the effective LSB is recomputed from the truncated Cal so
/// conversions stay exact. Shunt and current registers are signed; a reading with the math-overflow flag set is
/// refused, never used.
/// </summary>
public sealed class Ina219Device(I2cDevice device, Ina219Settings settings) : IDisposable
{
    public const byte ConfigurationRegister = 0x00;
    public const byte ShuntVoltageRegister = 0x01;
    public const byte BusVoltageRegister = 0x02;
    public const byte PowerRegister = 0x03;
    public const byte CurrentRegister = 0x04;
    public const byte CalibrationRegister = 0x05;

    private readonly I2cDevice _device = device ?? throw new ArgumentNullException(nameof(device));
    private readonly Ina219Settings _settings = settings ?? throw new ArgumentNullException(nameof(settings));

    /// <summary>The calibration value written to register 0x05.</summary>
    public ushort Calibration { get; } = ComputeCalibration(settings!);

    /// <summary>Amps per count of the current register, after truncation of the calibration.</summary>
    public double CurrentLsb => 0.04096 / (Calibration * _settings.ShuntOhms);

    /// <summary>Watts per count of the power register (20 × Current_LSB).</summary>
    public double PowerLsb => 20 * CurrentLsb;

    public static ushort ComputeCalibration(Ina219Settings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var minimumLsb = settings.MaxCurrentAmps / 32768;
        var calibration = Math.Floor(0.04096 / (minimumLsb * settings.ShuntOhms));
        // Bit 0 of the calibration register is void; the largest usable value is 0xFFFE.
        return (ushort)Math.Min(0xFFFE, (int)calibration & ~1);
    }

    /// <summary>Writes configuration and calibration (also after a device reset or brown-out).</summary>
    public void Configure()
    {
        _device.WriteRegister(ConfigurationRegister, _settings.Configuration);
        _device.WriteRegister(CalibrationRegister, Calibration);
    }

    public Ina219Reading Read()
    {
        // A reset device forgets its calibration and reports zero current: put it back first.
        if (_device.ReadRegister(CalibrationRegister) != Calibration)
        {
            Configure();
        }

        var bus = _device.ReadRegister(BusVoltageRegister);
        if ((bus & 0x1) != 0)
        {
            throw new PowerSourceException(
                $"INA219 math overflow (OVF) flag set: current or power is out of range for shunt {_settings.ShuntOhms} Ω and max-current {_settings.MaxCurrentAmps} A; reading refused");
        }

        var shunt = (short)_device.ReadRegister(ShuntVoltageRegister);
        var current = (short)_device.ReadRegister(CurrentRegister);
        var power = _device.ReadRegister(PowerRegister);
        return new Ina219Reading(
            ShuntVolts: shunt * 10e-6,
            BusVolts: (bus >> 3) * 4e-3,
            CurrentAmps: current * CurrentLsb,
            PowerWatts: power * PowerLsb);
    }

    public void Dispose() => _device.Dispose();
}
