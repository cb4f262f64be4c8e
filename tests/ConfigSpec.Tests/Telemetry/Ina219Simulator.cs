using ConfigSpec.Telemetry.I2c;

namespace ConfigSpec.Tests.Telemetry;

/// <summary>
/// A register-map model of the INA219 (datasheet SBOS448): shunt register in 10 µV counts, clipped to the PGA range
/// (with the overflow flag); bus register in 4 mV counts at bits 15..3; Current = Shunt × Cal / 4096 and
/// Power = Current × Bus / 5000, both truncated, with overflow when they leave 16 bits.
/// </summary>
internal sealed class Ina219Simulator : II2cDevice
{
    private ushort _configuration = 0x399F;
    private ushort _calibration;

    public double ShuntVolts { get; set; }

    public double BusVolts { get; set; }

    /// <summary>When set, every transfer fails as a vanished device does.</summary>
    public bool Vanished { get; set; }

    /// <summary>The errno of a vanished device: 121 EREMOTEIO (no ACK) or 6 ENXIO (no such device on the bus).</summary>
    public int VanishedErrno { get; set; } = 121;

    public int Writes { get; private set; }

    /// <summary>Power-on reset: configuration to default, calibration to zero.</summary>
    public void Reset()
    {
        _configuration = 0x399F;
        _calibration = 0;
    }

    private double PgaRangeVolts => 0.04 * (1 << ((_configuration >> 11) & 0x3));

    private (short Shunt, ushort BusCounts, int Current, int Power, bool Overflow) Convert()
    {
        var range = PgaRangeVolts;
        var overflow = Math.Abs(ShuntVolts) > range;
        var shunt = (short)Math.Round(Math.Clamp(ShuntVolts, -range, range) / 10e-6);
        var busCounts = (ushort)Math.Round(BusVolts / 4e-3);
        var current = (int)((long)shunt * _calibration / 4096);
        var power = (int)((long)Math.Abs(current) * busCounts / 5000);
        overflow |= current is > short.MaxValue or < short.MinValue || power > ushort.MaxValue;
        return (shunt, busCounts, current, power, overflow);
    }

    public ushort ReadRegister(byte registerAddress)
    {
        if (Vanished)
        {
            throw new I2cException($"/dev/i2c-1 address 0x40: transfer failed (errno {VanishedErrno}, no device answered)", VanishedErrno);
        }

        var (shunt, bus, current, power, overflow) = Convert();
        return registerAddress switch
        {
            0x00 => _configuration,
            0x01 => (ushort)shunt,
            0x02 => (ushort)((bus << 3) | 0x2 | (overflow ? 0x1 : 0)),
            0x03 => _calibration == 0 ? (ushort)0 : (ushort)Math.Min(power, ushort.MaxValue),
            0x04 => _calibration == 0 ? (ushort)0 : (ushort)(short)Math.Clamp(current, short.MinValue, short.MaxValue),
            0x05 => _calibration,
            _ => throw new I2cException($"register 0x{registerAddress:X2} does not exist", 121),
        };
    }

    public void WriteRegister(byte registerAddress, ushort value)
    {
        if (Vanished)
        {
            throw new I2cException("/dev/i2c-1 address 0x40: write failed (errno 121)", 121);
        }

        Writes++;
        switch (registerAddress)
        {
            case 0x00:
                _configuration = value;
                break;
            case 0x05:
                _calibration = (ushort)(value & 0xFFFE);
                break;
            default:
                throw new I2cException($"register 0x{registerAddress:X2} is read-only", 121);
        }
    }

    public void Dispose()
    {
    }
}
