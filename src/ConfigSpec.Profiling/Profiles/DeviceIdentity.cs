using System.Runtime.InteropServices;
using ConfigSpec.Interop.Llama;

namespace ConfigSpec.Profiling.Profiles;

/// <summary>What a profile records about the machine and software it was measured with.</summary>
public static class DeviceIdentity
{
    public static DeviceInfo Describe(string deviceId, string sysRoot = "/sys", string procRoot = "/proc", string etcRoot = "/etc") => new(
        deviceId,
        Environment.MachineName,
        Board(sysRoot, procRoot),
        OperatingSystem(etcRoot),
        RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant(),
        Environment.ProcessorCount);

    public static SoftwareInfo Software() => new(
        ProductInfo.Version,
        LlamaRuntime.SystemInfo.Trim() is { Length: > 0 } info ? info : "not loaded",
        RuntimeInformation.FrameworkDescription);

    /// <summary>Board model: the device tree (Raspberry Pi, Jetson), then DMI (PCs, servers), else "unknown".</summary>
    public static string Board(string sysRoot = "/sys", string procRoot = "/proc") =>
        new[] { Path.Combine(procRoot, "device-tree", "model"), Path.Combine(sysRoot, "firmware", "devicetree", "base", "model"), Path.Combine(sysRoot, "devices", "virtual", "dmi", "id", "product_name") }
            .Select(HostInfo.ReadText).FirstOrDefault(model => model is not null) ?? "unknown";

    private static string OperatingSystem(string etcRoot)
    {
        try
        {
            var release = Path.Combine(etcRoot, "os-release");
            if (File.Exists(release))
            {
                foreach (var line in File.ReadLines(release))
                {
                    if (line.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))
                    {
                        return line["PRETTY_NAME=".Length..].Trim('"');
                    }
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Fall back to the runtime's description.
        }

        return RuntimeInformation.OSDescription;
    }

    /// <summary>Resident memory of a process (this one by default) in megabytes (VmRSS), or null where /proc is absent.</summary>
    public static double? ResidentMegabytes(string procRoot = "/proc", string process = "self") =>
        HostInfo.Megabytes(Path.Combine(procRoot, process, "status"), "VmRSS:");
}
