using System.Globalization;
using System.Runtime.InteropServices;

namespace ConfigSpec.Profiling.Profiles;

/// <summary>
/// What a board is, as a user checks it first: the CPU and its instruction-set features (what decides which ggml
/// kernels run), the C library, the kernel. Every reader tolerates a missing file and says "unknown" instead.
/// </summary>
public static partial class HostInfo
{
    private const string Unknown = "unknown";

    // Linux arm64 auxiliary-vector bits (arch/arm64/include/uapi/asm/hwcap.h), named as /proc/cpuinfo names them.
    private static readonly string[] Arm64Hwcap =
    [
        "fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp", "asimdhp", "cpuid", "asimdrdm",
        "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4", "asimddp", "sha512", "sve", "asimdfhm", "dit", "uscat",
        "ilrcpc", "flagm", "ssbs", "sb", "paca", "pacg",
    ];

    private static readonly string[] Arm64Hwcap2 =
    [
        "dcpodp", "sve2", "sveaes", "svepmull", "svebitperm", "svesha3", "svesm4", "flagm2", "frint", "svei8mm", "svef32mm",
        "svef64mm", "svebf16", "i8mm", "bf16", "dgh", "rng", "bti", "mte", "ecv", "afp", "rpres", "mte3", "sme",
    ];

    // The x86-64 features ggml's CPU variants are chosen by (a subset of the cpuinfo flags, which run to 100+).
    private static readonly string[] X64Relevant =
    [
        "sse3", "ssse3", "sse4_1", "sse4_2", "avx", "f16c", "fma", "bmi2", "avx2", "avx_vnni", "avx512f", "avx512bw",
        "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8",
    ];

    // Arm's part numbers (MIDR_EL1 bits 15:4, implementer 0x41) for the cores of the boards this runs on, and neighbours.
    private static readonly Dictionary<int, string> ArmParts = new()
    {
        [0xd03] = "Cortex-A53", [0xd04] = "Cortex-A35", [0xd05] = "Cortex-A55", [0xd07] = "Cortex-A57", [0xd08] = "Cortex-A72",
        [0xd09] = "Cortex-A73", [0xd0a] = "Cortex-A75", [0xd0b] = "Cortex-A76", [0xd0c] = "Neoverse-N1", [0xd0d] = "Cortex-A77",
        [0xd40] = "Neoverse-V1", [0xd41] = "Cortex-A78", [0xd42] = "Cortex-A78AE", [0xd44] = "Cortex-X1", [0xd46] = "Cortex-A510",
        [0xd47] = "Cortex-A710", [0xd48] = "Cortex-X2", [0xd49] = "Neoverse-N2", [0xd4b] = "Cortex-A78C", [0xd4f] = "Neoverse-V2",
    };

    private const nuint AtHwcap = 16;
    private const nuint AtHwcap2 = 26;

    /// <summary>
    /// The CPU's model: x86 "model name"; on arm64 the core named by /proc/cpuinfo's implementer and part (or the
    /// device tree's cpu@0 compatible string), e.g. "Cortex-A76 (0x41:0xd0b)".
    /// </summary>
    public static string CpuModel(string procRoot = "/proc", string sysRoot = "/sys")
    {
        var cpuinfo = ReadCpuInfo(procRoot);
        if (RuntimeInformation.ProcessArchitecture is not (System.Runtime.InteropServices.Architecture.Arm64 or System.Runtime.InteropServices.Architecture.Arm))
        {
            return cpuinfo.GetValueOrDefault("model name") ?? Unknown;
        }

        // An arm64 kernel's cpuinfo names implementer and part; a "model name" there may belong to another machine
        // (an emulator passes its host's file through), so only these fields count.
        if (ParseHex(cpuinfo.GetValueOrDefault("CPU implementer")) is { } implementer && ParseHex(cpuinfo.GetValueOrDefault("CPU part")) is { } part)
        {
            return DescribeArm((int)implementer, (int)part);
        }

        if (ParseHex(ReadText(Path.Combine(sysRoot, "devices", "system", "cpu", "cpu0", "regs", "identification", "midr_el1"))) is { } midr)
        {
            return DescribeMidr((ulong)midr);
        }

        var compatible = ReadText(Path.Combine(procRoot, "device-tree", "cpus", "cpu@0", "compatible"));
        if (compatible?.Split('\0', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() is { } first)
        {
            return first;
        }

        return ReadMidrRegister() is { } register ? DescribeMidr(register) : Unknown;
    }

    /// <summary>
    /// MIDR_EL1 read with the <c>mrs</c> instruction, which Linux emulates for user space when it advertises HWCAP_CPUID
    /// (and an emulator does for the CPU it emulates): the last resort where neither cpuinfo nor sysfs names the core.
    /// Null without HWCAP_CPUID or where executable memory is refused.
    /// </summary>
    private static unsafe ulong? ReadMidrRegister()
    {
        const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 2, MapAnonymous = 0x20;
        const nuint HwcapCpuid = 1 << 11;
        if (RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.Arm64)
        {
            return null;
        }

        try
        {
            if ((getauxval(AtHwcap) & HwcapCpuid) == 0)
            {
                return null;
            }

            const nuint Length = 4096;
            var page = mmap(0, Length, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
            if (page == -1)
            {
                return null;
            }

            try
            {
                var code = (uint*)page;
                code[0] = 0xD5380000; // mrs x0, midr_el1
                code[1] = 0xD65F03C0; // ret
                if (mprotect(page, Length, ProtRead | ProtExec) != 0)
                {
                    return null;
                }

                __clear_cache(page, page + 8);
                return ((delegate* unmanaged[Cdecl]<ulong>)page)();
            }
            finally
            {
                _ = munmap(page, Length);
            }
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// The CPU features that decide which kernels run: on arm64 the kernel's HWCAP bits (from the auxiliary vector,
    /// which an emulator sets for the CPU it emulates), on x86-64 the SIMD flags of /proc/cpuinfo.
    /// </summary>
    public static IReadOnlyList<string> CpuFeatures(string procRoot = "/proc")
    {
        if (RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64)
        {
            try
            {
                return [.. Bits(getauxval(AtHwcap), Arm64Hwcap), .. Bits(getauxval(AtHwcap2), Arm64Hwcap2)];
            }
            catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
            {
                return [];
            }
        }

        var flags = ReadCpuInfo(procRoot).GetValueOrDefault("flags")?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
        return [.. X64Relevant.Where(flags.Contains)];
    }

    /// <summary>The GNU C library's version (<c>gnu_get_libc_version</c>), or "unknown" (another C library).</summary>
    public static string Glibc()
    {
        try
        {
            return Marshal.PtrToStringUTF8(gnu_get_libc_version()) ?? Unknown;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return Unknown;
        }
    }

    /// <summary>The running kernel's release (<c>/proc/sys/kernel/osrelease</c>).</summary>
    public static string Kernel(string procRoot = "/proc") =>
        ReadText(Path.Combine(procRoot, "sys", "kernel", "osrelease")) ?? Unknown;

    /// <summary>Total memory in MiB (MemTotal), or null where /proc is absent.</summary>
    public static double? MemoryMegabytes(string procRoot = "/proc") => Megabytes(Path.Combine(procRoot, "meminfo"), "MemTotal:");

    /// <summary>A <c>Key: N kB</c> line of a /proc file (meminfo, status) in MiB, or null where it cannot be read.</summary>
    internal static double? Megabytes(string file, string key)
    {
        try
        {
            foreach (var line in File.ReadLines(file))
            {
                if (line.StartsWith(key, StringComparison.Ordinal))
                {
                    return long.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            // Not Linux, or /proc not mounted.
        }

        return null;
    }

    /// <summary>MIDR_EL1: implementer in bits 31:24, part number in bits 15:4.</summary>
    private static string DescribeMidr(ulong midr) => DescribeArm((int)((midr >> 24) & 0xff), (int)((midr >> 4) & 0xfff));

    private static string DescribeArm(int implementer, int part)
    {
        var id = string.Create(CultureInfo.InvariantCulture, $"0x{implementer:x2}:0x{part:x3}");
        return implementer == 0x41 && ArmParts.TryGetValue(part, out var name) ? $"{name} ({id})"
            : implementer == 0x4e ? $"NVIDIA core ({id})"
            : $"arm64 core {id}";
    }

    private static IEnumerable<string> Bits(nuint value, string[] names)
    {
        for (var bit = 0; bit < names.Length; bit++)
        {
            if ((value & ((nuint)1 << bit)) != 0)
            {
                yield return names[bit];
            }
        }
    }

    /// <summary>The first processor's fields of /proc/cpuinfo.</summary>
    private static Dictionary<string, string> ReadCpuInfo(string procRoot)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            foreach (var line in File.ReadLines(Path.Combine(procRoot, "cpuinfo")))
            {
                if (line.Length == 0 && fields.Count > 0)
                {
                    break;
                }

                var colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0)
                {
                    fields.TryAdd(line[..colon].Trim(), line[(colon + 1)..].Trim());
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Not Linux, or /proc not mounted.
        }

        return fields;
    }

    private static long? ParseHex(string? text)
    {
        var t = text?.Trim();
        if (t is null)
        {
            return null;
        }

        if (t.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            t = t[2..];
        }

        return long.TryParse(t, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var value) ? value : null;
    }

    /// <summary>A small text file's contents without trailing NULs and blanks (device-tree strings end in NUL), or null.</summary>
    internal static string? ReadText(string file)
    {
        try
        {
            return File.Exists(file) && File.ReadAllText(file).Trim('\0', ' ', '\n') is { Length: > 0 } text ? text : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "getauxval")]
    private static partial nuint getauxval(nuint type);

    [LibraryImport("libc.so.6", EntryPoint = "mmap")]
    private static partial nint mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc.so.6", EntryPoint = "mprotect")]
    private static partial int mprotect(nint address, nuint length, int protection);

    [LibraryImport("libc.so.6", EntryPoint = "munmap")]
    private static partial int munmap(nint address, nuint length);

    [LibraryImport("libgcc_s.so.1", EntryPoint = "__clear_cache")]
    private static partial void __clear_cache(nint start, nint end);

    [LibraryImport("libc.so.6", EntryPoint = "gnu_get_libc_version")]
    private static partial nint gnu_get_libc_version();
}
