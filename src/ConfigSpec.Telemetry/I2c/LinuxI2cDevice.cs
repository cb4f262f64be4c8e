using System.Runtime.InteropServices;

namespace ConfigSpec.Telemetry.I2c;

/// <summary>
/// A device reached through Linux i2c-dev (<c>/dev/i2c-N</c>): open, <c>ioctl(I2C_SLAVE)</c>, write the register
/// pointer, read two bytes. Needs read/write access to the device node (the <c>i2c</c> group on Raspberry Pi OS).
/// </summary>
public sealed partial class LinuxI2cDevice : II2cDevice
{
    private const int I2cSlave = 0x0703;
    private const int ReadWrite = 2;
    private const int EBusy = 16;
    private readonly int _fd;

    public LinuxI2cDevice(int bus, int address)
    {
        Path = $"/dev/i2c-{bus}";
        Address = address;
        _fd = Open(Path, ReadWrite);
        if (_fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new I2cException(errno switch
            {
                2 => $"{Path} does not exist (enable I2C: dtparam=i2c_arm=on on a Raspberry Pi)",
                13 => $"{Path}: permission denied (add the service user to the i2c group)",
                _ => $"{Path}: cannot open (errno {errno})",
            }, errno);
        }

        if (Ioctl(_fd, I2cSlave, address) < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            Close(_fd);
            throw new I2cException(errno == EBusy
                ? $"{Path} address 0x{address:X2} is owned by a kernel driver (use the hwmon source instead)"
                : $"{Path} address 0x{address:X2}: I2C_SLAVE failed (errno {errno})", errno);
        }
    }

    public string Path { get; }

    public int Address { get; }

    public ushort ReadRegister(byte registerAddress)
    {
        Span<byte> address = [registerAddress];
        Span<byte> value = stackalloc byte[2];
        if (Write(_fd, address, 1) != 1 || Read(_fd, value, 2) != 2)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new I2cException($"{Path} address 0x{Address:X2} register 0x{registerAddress:X2}: transfer failed (errno {errno}{(errno is 121 or 6 ? ", no device answered" : string.Empty)})", errno);
        }

        return (ushort)((value[0] << 8) | value[1]);
    }

    public void WriteRegister(byte registerAddress, ushort value)
    {
        Span<byte> data = [registerAddress, (byte)(value >> 8), (byte)value];
        if (Write(_fd, data, 3) != 3)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new I2cException($"{Path} address 0x{Address:X2} register 0x{registerAddress:X2}: write failed (errno {errno})", errno);
        }
    }

    public void Dispose() => Close(_fd);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, nuint request, nint argument);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint Read(int fd, Span<byte> buffer, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint Write(int fd, ReadOnlySpan<byte> buffer, nint count);
}
