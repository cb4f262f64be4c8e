using System.Runtime.InteropServices;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Profiling;

/// <summary>The host readers behind <c>configspec-edge system</c>, on a /proc fixture tree (the arm64 paths run in Arm64BoardTests).</summary>
public sealed class HostInfoTests : IDisposable
{
    private readonly string _proc = TestEnvironment.NewTemporaryDirectory();

    [Fact]
    public void The_x64_model_and_the_simd_flags_ggml_chooses_by_come_from_cpuinfo()
    {
        Assert.Equal(Architecture.X64, RuntimeInformation.ProcessArchitecture);
        File.WriteAllText(Path.Combine(_proc, "cpuinfo"),
            "processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu sse3 ssse3 sse4_1 sse4_2 avx f16c fma bmi2 avx2 sha_ni\n\nprocessor\t: 1\nmodel name\t: Other\n");
        Assert.Equal("AMD EPYC 7B12", HostInfo.CpuModel(_proc, _proc));
        Assert.Equal(["sse3", "ssse3", "sse4_1", "sse4_2", "avx", "f16c", "fma", "bmi2", "avx2"], HostInfo.CpuFeatures(_proc));
    }

    [Fact]
    public void Missing_files_read_as_unknown_not_as_errors()
    {
        Assert.Equal("unknown", HostInfo.CpuModel(_proc, _proc));
        Assert.Empty(HostInfo.CpuFeatures(_proc));
        Assert.Equal("unknown", HostInfo.Kernel(_proc));
        Assert.Null(HostInfo.MemoryMegabytes(_proc));
        Assert.Empty(LlamaRuntime.LoadedBackendFiles(_proc));
        Directory.CreateDirectory(Path.Combine(_proc, "sys", "kernel"));
        File.WriteAllText(Path.Combine(_proc, "sys", "kernel", "osrelease"), "6.6.51+rpt-rpi-2712\n");
        File.WriteAllText(Path.Combine(_proc, "meminfo"), "MemTotal:        8245760 kB\nMemFree: 1 kB\n");
        Assert.Equal("6.6.51+rpt-rpi-2712", HostInfo.Kernel(_proc));
        Assert.Equal(8052.5, HostInfo.MemoryMegabytes(_proc));
        Assert.Matches(@"^2\.\d+$", HostInfo.Glibc());
    }

    [Fact]
    public void The_loaded_ggml_variant_is_read_from_the_process_maps()
    {
        Directory.CreateDirectory(Path.Combine(_proc, "self"));
        File.WriteAllText(Path.Combine(_proc, "self", "maps"), """
            7f0000000000-7f0000001000 r-xp 00000000 08:01 1234 /opt/configspec/libggml-base.so
            7f0000001000-7f0000002000 r-xp 00000000 08:01 1235 /opt/configspec/libggml-cpu-armv8.2_2.so
            7f0000002000-7f0000003000 r--p 00001000 08:01 1235 /opt/configspec/libggml-cpu-armv8.2_2.so
            7f0000003000-7f0000004000 r-xp 00000000 08:01 1236 /opt/my llama/libggml-cuda.so
            7f0000004000-7f0000005000 rw-p 00000000 00:00 0 [heap]
            """);
        Assert.Equal(["/opt/configspec/libggml-cpu-armv8.2_2.so", "/opt/my llama/libggml-cuda.so"], LlamaRuntime.LoadedBackendFiles(_proc));

        // In this process: the pinned x64 build maps exactly one CPU variant.
        TestEnvironment.InitializeRuntime();
        Assert.Single(LlamaRuntime.LoadedBackendFiles(), f => Path.GetFileName(f).StartsWith("libggml-cpu-", StringComparison.Ordinal));
        Assert.StartsWith("ggml ", LlamaRuntime.BuildDescription, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_proc, recursive: true);
}
