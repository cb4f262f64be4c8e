using System.Buffers.Binary;
using System.Device.I2c;
using System.Globalization;
using System.Text.RegularExpressions;

namespace ConfigSpec.Telemetry.I2c;

/// <summary>
/// 16-bit big-endian registers behind an 8-bit register pointer (the INA2xx family) on a System.Device.I2c
/// <see cref="I2cDevice"/>. A failed transfer becomes an <see cref="I2cException"/> that names the bus, the address and
/// the register, says what the Linux error means for a user, and keeps the errno.
/// </summary>
public static partial class I2cRegisters
{
    /// <summary>Opens a device on <c>/dev/i2c-BUS</c> (the node is opened here); a bus that is missing or not accessible is described for the user.</summary>
    public static I2cDevice Open(int bus, int address)
    {
        try
        {
            return I2cDevice.Create(new I2cConnectionSettings(bus, address));
        }
        catch (IOException ex)
        {
            throw Describe(bus, address, null, "open", ex);
        }
    }

    /// <summary>Writes the register pointer and reads two bytes in one combined transfer.</summary>
    public static ushort ReadRegister(this I2cDevice device, byte register)
    {
        ArgumentNullException.ThrowIfNull(device);
        Span<byte> pointer = [register];
        Span<byte> value = stackalloc byte[2];
        try
        {
            device.WriteRead(pointer, value);
        }
        catch (IOException ex) when (ex is not I2cException)
        {
            throw Describe(device, register, "transfer failed", ex);
        }

        return BinaryPrimitives.ReadUInt16BigEndian(value);
    }

    public static void WriteRegister(this I2cDevice device, byte register, ushort value)
    {
        ArgumentNullException.ThrowIfNull(device);
        Span<byte> data = [register, (byte)(value >> 8), (byte)value];
        try
        {
            device.Write(data);
        }
        catch (IOException ex) when (ex is not I2cException)
        {
            throw Describe(device, register, "write failed", ex);
        }
    }

    /// <summary>The errno in System.Device.I2c's messages ("Error 121 performing I2C data transfer."), or 0.</summary>
    private static int Errno(IOException exception)
    {
        var match = ErrorNumber().Match(exception.Message);
        return match.Success ? int.Parse(match.Groups[1].ValueSpan, CultureInfo.InvariantCulture) : 0;
    }

    private static I2cException Describe(I2cDevice device, byte register, string what, IOException ex) =>
        Describe(device.ConnectionSettings.BusId, device.ConnectionSettings.DeviceAddress, register, what, ex);

    private static I2cException Describe(int bus, int address, byte? register, string what, IOException ex)
    {
        var path = $"/dev/i2c-{bus}";
        var errno = Errno(ex);
        // I2cDevice.Create opens the bus device node ("Error 2 (No such file or directory). Can not open I2C device file …").
        var opening = register is null;
        var where = $"{path} address 0x{address:X2}" + (register is { } r ? $" register 0x{r:X2}" : string.Empty);
        var message = (opening, errno) switch
        {
            (true, 2) => $"{path} does not exist (enable I2C: dtparam=i2c_arm=on on a Raspberry Pi)",
            (true, 13) => $"{path}: permission denied (add the service user to the i2c group)",
            (_, 121 or 6) => $"{where}: {what} (errno {errno}, no device answered)",
            (true, _) => $"{path}: cannot open ({ex.Message})",
            _ => $"{where}: {what} (errno {errno}: {ex.Message})",
        };
        return new I2cException(message, errno, ex);
    }

    [GeneratedRegex(@"Error (\d+)")]
    private static partial Regex ErrorNumber();
}

/// <summary>An I2C transfer failed; <see cref="Errno"/> is the Linux error (e.g. 121 EREMOTEIO, 6 ENXIO: no device answered).</summary>
public sealed class I2cException : IOException
{
    public I2cException() { }

    public I2cException(string message) : base(message) { }

    public I2cException(string message, Exception innerException) : base(message, innerException) { }

    public I2cException(string message, int errno, Exception? innerException = null) : base(message, innerException) => Errno = errno;

    public int Errno { get; }
}
