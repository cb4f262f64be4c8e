namespace ConfigSpec.Telemetry.I2c;

/// <summary>A device on an I2C bus addressed by 8-bit register pointers with 16-bit big-endian registers.</summary>
public interface II2cDevice : IDisposable
{
    /// <summary>Reads a 16-bit register (big-endian on the wire).</summary>
    ushort ReadRegister(byte registerAddress);

    void WriteRegister(byte registerAddress, ushort value);
}

/// <summary>An I2C transfer failed; <see cref="Errno"/> is the Linux error (e.g. 121 EREMOTEIO, 6 ENXIO: no device answered).</summary>
public sealed class I2cException : IOException
{
    public I2cException() { }

    public I2cException(string message) : base(message) { }

    public I2cException(string message, Exception innerException) : base(message, innerException) { }

    public I2cException(string message, int errno) : base(message) => Errno = errno;

    public int Errno { get; }
}
