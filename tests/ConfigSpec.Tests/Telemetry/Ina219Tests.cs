using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Telemetry;
using ConfigSpec.Telemetry.Ina219;

namespace ConfigSpec.Tests.Telemetry;

public class Ina219Tests
{
    /// <summary>The datasheet's configure/measure/calculate example: 2 mΩ shunt, 10 A load, 12 V common mode.</summary>
    [Fact]
    public void Reproduces_the_datasheet_worked_example()
    {
        var chip = new Ina219Simulator { ShuntVolts = 0.020, BusVolts = 11.98 };
        var settings = new Ina219Settings(ShuntOhms: 0.002, MaxCurrentAmps: 32.768) { Configuration = 0x019F };
        using var device = new Ina219Device(chip, settings);
        Assert.Equal(0x5000, device.Calibration);
        Assert.Equal(1e-3, device.CurrentLsb, 12);
        Assert.Equal(20e-3, device.PowerLsb, 12);
        device.Configure();

        Assert.Equal(0x07D0, chip.Peek(0x01));
        Assert.Equal(2995, chip.Peek(0x02) >> 3);
        Assert.Equal(0x2710, chip.Peek(0x04));
        Assert.Equal(0x1766, chip.Peek(0x03));

        var reading = device.Read();
        Assert.Equal(0.020, reading.ShuntVolts, 9);
        Assert.Equal(11.98, reading.BusVolts, 9);
        Assert.Equal(10.0, reading.CurrentAmps, 9);
        Assert.Equal(119.8, reading.PowerWatts, 9);
    }

    [Fact]
    public void Calibration_follows_the_minimum_current_lsb_for_a_pi_board()
    {
        // 0.1 Ω shunt, 3.2 A expected: Current_LSB = 3.2 / 32768 = 97.66 µA, Cal = trunc(0.04096 / (97.66 µA × 0.1)) = 4194 → 4194 (even).
        var calibration = Ina219Device.ComputeCalibration(new Ina219Settings(0.1, 3.2));
        Assert.Equal(4194, calibration);
        using var device = new Ina219Device(new Ina219Simulator(), new Ina219Settings(0.1, 3.2));
        Assert.InRange(device.CurrentLsb, 3.2 / 32768, 3.2 / 32768 * 1.001);
    }

    [Fact]
    public void A_pi_drawing_a_steady_load_reads_its_power_within_the_lsb()
    {
        // 5.1 V supply, 1.2 A into the board: 120 mV across 0.1 Ω.
        var chip = new Ina219Simulator { ShuntVolts = 0.12, BusVolts = 5.1 };
        using var source = new Ina219Source("ina219:bus=1,addr=0x40,shunt=0.1,max-current=3.2", chip, new Ina219Settings(0.1, 3.2));
        var reading = source.Read();
        Assert.Equal(PowerScope.Board, source.Scope);
        Assert.InRange(reading.TotalWatts, 5.1 * 1.2 - 0.01, 5.1 * 1.2 + 0.01);
        Assert.Equal("5V_IN", Assert.Single(reading.Rails).Rail);
    }

    [Fact]
    public void Negative_shunt_and_current_are_read_as_signed()
    {
        var chip = new Ina219Simulator { ShuntVolts = -0.05, BusVolts = 5.0 };
        using var device = new Ina219Device(chip, new Ina219Settings(0.1, 3.2));
        device.Configure();
        var reading = device.Read();
        Assert.Equal(-0.05, reading.ShuntVolts, 6);
        Assert.InRange(reading.CurrentAmps, -0.5001, -0.4999);
        Assert.True(reading.PowerWatts > 0);
    }

    [Fact]
    public void An_overflowing_reading_is_refused_not_used()
    {
        var chip = new Ina219Simulator { ShuntVolts = 0.4, BusVolts = 5.0 }; // beyond the ±320 mV range
        using var source = new Ina219Source("ina219:bus=1,addr=0x40", chip, new Ina219Settings(0.1, 3.2));
        var ex = Assert.Throws<PowerSourceException>(source.Read);
        Assert.Contains("ina219:bus=1,addr=0x40", ex.Message, StringComparison.Ordinal);
        Assert.Contains("overflow", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(121)] // EREMOTEIO: the device stopped acknowledging
    [InlineData(6)]   // ENXIO: no such device on the bus
    public void A_vanished_device_is_reported_with_the_source_and_the_errno(int errno)
    {
        var chip = new Ina219Simulator { ShuntVolts = 0.1, BusVolts = 5.0, VanishedErrno = errno };
        using var source = new Ina219Source("ina219:bus=1,addr=0x40", chip, new Ina219Settings(0.1, 3.2));
        Assert.InRange(source.Read().TotalWatts, 4.98, 5.01);
        chip.Vanished = true;
        var ex = Assert.Throws<PowerSourceException>(source.Read);
        Assert.Contains("ina219:bus=1,addr=0x40", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"errno {errno}, no device answered", ex.Message, StringComparison.Ordinal);
        chip.Vanished = false;
        Assert.InRange(source.Read().TotalWatts, 4.98, 5.01); // it comes back when the device does
    }

    [Fact]
    public void A_device_that_reset_is_recalibrated_before_reading()
    {
        var chip = new Ina219Simulator { ShuntVolts = 0.1, BusVolts = 5.0 };
        using var device = new Ina219Device(chip, new Ina219Settings(0.1, 3.2));
        device.Configure();
        chip.Reset();
        var reading = device.Read();
        Assert.InRange(reading.CurrentAmps, 0.999, 1.001);
    }

    [Theory]
    [InlineData(0.0, 3.2, "shunt=0")]
    [InlineData(0.1, -1.0, "max-current=-1")]
    [InlineData(0.5, 3.2, "over the INA219's ±320 mV")]
    public void Impossible_settings_are_refused_with_the_setting_named(double shunt, double maxCurrent, string message)
    {
        var ex = Assert.Throws<PowerSourceException>(() => new Ina219Settings(shunt, maxCurrent).Validate("ina219:bus=1"));
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_i2c_bus_is_reported_through_system_device_i2c_naming_the_source()
    {
        // No /dev/i2c-250 anywhere: the real System.Device.I2c Unix driver fails to open it.
        Assert.False(File.Exists("/dev/i2c-250"));
        var ex = Assert.Throws<PowerSourceException>(() => ConfigSpec.Telemetry.Sources.PowerSources.Create("ina219:bus=250,addr=0x40",
            new ConfigSpec.Telemetry.Sources.SourceEnvironment { SysRoot = TestEnvironment.NewTemporaryDirectory() }));
        Assert.Contains("ina219:bus=250,addr=0x40", ex.Message, StringComparison.Ordinal);
        Assert.Contains("/dev/i2c-250 does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_chip_bound_to_the_kernel_driver_is_left_to_hwmon()
    {
        var sys = TestEnvironment.NewTemporaryDirectory();
        var driver = Directory.CreateDirectory(Path.Combine(sys, "bus", "i2c", "drivers", "ina2xx")).FullName;
        var device = Directory.CreateDirectory(Path.Combine(sys, "bus", "i2c", "devices", "1-0041")).FullName;
        File.CreateSymbolicLink(Path.Combine(device, "driver"), driver);
        var ex = Assert.Throws<PowerSourceException>(() => ConfigSpec.Telemetry.Sources.PowerSources.Create("ina219:bus=1,addr=0x41",
            new ConfigSpec.Telemetry.Sources.SourceEnvironment { SysRoot = sys }));
        Assert.Contains("owned by the kernel driver ina2xx (use the hwmon source instead)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Register_transfers_go_through_the_i2c_device_as_pointer_write_and_combined_read()
    {
        var chip = new Ina219Simulator { ShuntVolts = 0.05, BusVolts = 5.0 };
        using var device = new Ina219Device(chip, new Ina219Settings(0.1, 3.2));
        device.Configure();
        Assert.Equal(2, chip.Writes); // configuration and calibration, three bytes each
        Assert.Equal(device.Calibration, chip.Peek(Ina219Device.CalibrationRegister));
        Assert.Equal(5000, chip.Peek(Ina219Device.ShuntVoltageRegister));
        var nack = Assert.Throws<ConfigSpec.Telemetry.I2c.I2cException>(() => chip.Peek(0x07));
        Assert.Equal(121, nack.Errno);
        Assert.Contains("/dev/i2c-1 address 0x40 register 0x07", nack.Message, StringComparison.Ordinal);
    }
}
