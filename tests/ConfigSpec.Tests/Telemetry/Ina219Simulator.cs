using System.Buffers.Binary;
using System.Device.I2c;
using ConfigSpec.Telemetry.I2c;

namespace ConfigSpec.Tests.Telemetry;

/// <summary>
/// A register-map model of the INA219 (datasheet SBOS448) as a System.Device.I2c <see cref="I2cDevice"/>, so the
/// production driver runs through the same bus calls it makes on a board: a one-byte write sets the register pointer,
/// a three-byte write sets a register, a two-byte read returns the pointed register big-endian. Shunt register in
/// 10 µV counts, clipped to the PGA range (with the overflow flag); bus register in 4 mV counts at bits 15..3;
/// Current = Shunt × Cal / 4096 and Power = Current × Bus / 5000, both truncated, with overflow when they leave 16 bits.
/// A vanished chip fails each transfer with the IOException Linux i2c-dev gives through System.Device.I2c.
/// </summary>
internal sealed class Ina219Simulator : I2cDevice
{
    private ushort _configuration = 0x399F;
    private ushort _calibration;
    private byte _pointer;

    public override I2cConnectionSettings ConnectionSettings { get; } = new(1, 0x40);

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

    private ushort Register(byte address)
    {
        var (shunt, bus, current, power, overflow) = Convert();
        return address switch
        {
            0x00 => _configuration,
            0x01 => (ushort)shunt,
            0x02 => (ushort)((bus << 3) | 0x2 | (overflow ? 0x1 : 0)),
            0x03 => _calibration == 0 ? (ushort)0 : (ushort)Math.Min(power, ushort.MaxValue),
            0x04 => _calibration == 0 ? (ushort)0 : (ushort)(short)Math.Clamp(current, short.MinValue, short.MaxValue),
            0x05 => _calibration,
            _ => throw Nack(), // the chip does not acknowledge a pointer past its registers
        };
    }

    private void SetRegister(byte address, ushort value)
    {
        Writes++;
        switch (address)
        {
            case 0x00:
                _configuration = value;
                break;
            case 0x05:
                _calibration = (ushort)(value & 0xFFFE);
                break;
            default:
                throw Nack(); // read-only register
        }
    }

    private static IOException Nack() => new("Error 121 performing I2C data transfer.");

    private void Transfer()
    {
        if (Vanished)
        {
            throw new IOException($"Error {VanishedErrno} performing I2C data transfer.");
        }
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Transfer();
        if (buffer.Length is not (1 or 3))
        {
            throw Nack();
        }

        _pointer = buffer[0];
        if (buffer.Length == 3)
        {
            SetRegister(_pointer, BinaryPrimitives.ReadUInt16BigEndian(buffer[1..]));
        }
    }

    public override void Read(Span<byte> buffer)
    {
        Transfer();
        var value = Register(_pointer);
        if (buffer.Length > 0)
        {
            buffer[0] = (byte)(value >> 8);
        }

        if (buffer.Length > 1)
        {
            buffer[1] = (byte)value;
        }
    }

    public override void WriteRead(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer)
    {
        Write(writeBuffer);
        Read(readBuffer);
    }

    public override void WriteByte(byte value) => Write([value]);

    public override byte ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        Read(one);
        return one[0];
    }

    /// <summary>Reads a register the way a bus analyser would see it (for assertions).</summary>
    public ushort Peek(byte address) => this.ReadRegister(address);
}
