using System.Diagnostics;
using ConfigSpec.Interop.Llama;

namespace ConfigSpec.Tests.Infrastructure;

/// <summary>
/// The boards' build (linux-arm64 native AOT, made by <c>scripts/build.sh linux-arm64</c>) run under
/// <c>qemu-aarch64-static</c> as a Raspberry Pi 4B core (Cortex-A72) or a Pi 5 core (Cortex-A76). The tests using it
/// carry the trait <c>Category=Arm64</c> (filter them with <c>--filter Category!=Arm64</c>); they fail, naming the fix,
/// when the build or the emulator is missing. Emulated timings are not board timings and are never asserted.
/// </summary>
public static class Arm64Board
{
    public const string Category = "Arm64";

    /// <summary>Raspberry Pi 4B: Cortex-A72, Armv8.0 (no dot product).</summary>
    public const string Pi4Cpu = "cortex-a72";

    /// <summary>Raspberry Pi 5: Cortex-A76, Armv8.2 with dot product (Jetson Orin's A78AE is the same family).</summary>
    public const string Pi5Cpu = "cortex-a76";

    private const string CrossRoot = "/usr/aarch64-linux-gnu";

    /// <summary>The published linux-arm64 folder: configspec-edge and the arm64 llama.cpp libraries beside it.</summary>
    public static string BuildDirectory =>
        Environment.GetEnvironmentVariable("CONFIGSPEC_ARM64_DIR") is { Length: > 0 } dir ? dir : Path.Combine(TestEnvironment.RepositoryRoot, "out", "linux-arm64");

    public static string Edge
    {
        get
        {
            var path = Path.Combine(BuildDirectory, "configspec-edge");
            return File.Exists(path) ? path : throw new InvalidOperationException($"'{path}' is missing: run scripts/build.sh linux-arm64 (scripts/test.sh does)");
        }
    }

    /// <summary>libssl3:arm64 unpacked by scripts/test.sh (the .NET runtime loads OpenSSL at start; the cross C library has none).</summary>
    public static string EmulatorLibraries
    {
        get
        {
            var dir = Environment.GetEnvironmentVariable("CONFIGSPEC_EMU_ARM64_LIBS") is { Length: > 0 } d
                ? d : Path.Combine(TestEnvironment.RepositoryRoot, "lib", "emu", "linux-arm64", "usr", "lib", "aarch64-linux-gnu");
            return File.Exists(Path.Combine(dir, "libssl.so.3"))
                ? dir : throw new InvalidOperationException($"no libssl.so.3 in '{dir}': scripts/test.sh unpacks libssl3:arm64 there");
        }
    }

    private static string Qemu
    {
        get
        {
            const string path = "/usr/bin/qemu-aarch64-static";
            return File.Exists(path) ? path : throw new InvalidOperationException($"'{path}' is missing: apt-get install qemu-user-static (scripts/test.sh does)");
        }
    }

    /// <summary>
    /// A command line running <paramref name="program"/> (an aarch64 executable) on the emulated <paramref name="cpu"/>.
    /// The test run's CONFIGSPEC_LLAMA_DIR (the x64 libraries) is removed, so the program finds its own beside it.
    /// </summary>
    public static ProcessStartInfo Start(string cpu, string program, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var start = new ProcessStartInfo(Qemu) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-cpu", cpu, "-L", CrossRoot, "-E", "LD_LIBRARY_PATH=" + EmulatorLibraries, program })
        {
            start.ArgumentList.Add(a);
        }

        foreach (var a in arguments)
        {
            start.ArgumentList.Add(a);
        }

        start.Environment.Remove(LlamaLibraryResolver.EnvironmentVariable);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        return start;
    }

    /// <summary>Runs the arm64 configspec-edge to its end on <paramref name="cpu"/>.</summary>
    public static Task<(int Exit, string Out, string Err)> RunEdgeAsync(string cpu, params string[] args) => RunAsync(Start(cpu, Edge, args));

    public static async Task<(int Exit, string Out, string Err)> RunAsync(ProcessStartInfo start, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(start);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"'{start.FileName} {string.Join(' ', start.ArgumentList)}' ran past {(timeout ?? TimeSpan.FromMinutes(3)).TotalSeconds} s");
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
