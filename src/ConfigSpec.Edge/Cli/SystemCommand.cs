using ConfigSpec.Contracts;
using System.CommandLine;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ConfigSpec.Interop;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Profiling;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Telemetry.Sources;

namespace ConfigSpec.Edge.Cli;

/// <summary>
/// <c>system [--json]</c>: what a user checks first on a new board — the architecture, the CPU and its features, the
/// ggml CPU variant llama.cpp actually loaded for it, the llama.cpp build, glibc, the board model, the power sources
/// found, and this program's version. Exits 2 (after the full report) when llama.cpp cannot be loaded.
/// </summary>
internal static class SystemCommand
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static Command Create(TextWriter output)
    {
        var json = new Option<bool>("--json") { Description = "print one JSON object" };
        var command = new Command("system", "describe this machine: CPU and features, the ggml CPU variant loaded, llama.cpp build, glibc, board, power sources, version") { json };
        command.SetAction((parse, _) =>
        {
            var report = Collect(parse);
            if (parse.GetValue(json))
            {
                WriteJson(output, report);
            }
            else
            {
                WriteText(output, report);
            }

            return Task.FromResult(report.LlamaError is null ? EdgeCli.ExitOk : EdgeCli.ExitBadInput);
        });
        return command;
    }

    private sealed record Report(
        string Version,
        string Runtime,
        bool NativeAot,
        string Arch,
        string CpuModel,
        int CpuCount,
        IReadOnlyList<string> CpuFeatures,
        string Glibc,
        string Kernel,
        string Os,
        string Board,
        double? MemoryMegabytes,
        string? LlamaDirectory,
        string? LlamaBuild,
        string? LlamaCpuVariant,
        IReadOnlyList<string> LlamaBackends,
        string? LlamaSystemInfo,
        string? LlamaError,
        IReadOnlyList<DetectedSource> PowerSources);

    private static Report Collect(ParseResult parse)
    {
        string? llamaError = null;
        try
        {
            LlamaRuntime.Initialize(EdgeCli.Runtime(parse));
        }
        catch (ConfigSpecException ex)
        {
            llamaError = ex.Message;
        }

        List<string> backends = llamaError is null ? [.. LlamaRuntime.LoadedBackendFiles().Select(f => Path.GetFileName(f))] : [];
        var device = DeviceIdentity.Describe(Environment.MachineName);
        return new Report(
            DeviceIdentity.Software().ConfigSpec,
            RuntimeInformation.FrameworkDescription,
            !RuntimeFeature.IsDynamicCodeCompiled,
            device.Architecture,
            HostInfo.CpuModel(),
            device.Cores,
            HostInfo.CpuFeatures(),
            HostInfo.Glibc(),
            HostInfo.Kernel(),
            device.Os,
            device.Board,
            HostInfo.MemoryMegabytes(),
            llamaError is null ? LlamaRuntime.LibraryDirectory : null,
            llamaError is null ? $"{LlamaAbi.PinnedRelease} ABI; {LlamaRuntime.BuildDescription}" : null,
            backends.FirstOrDefault(name => name.StartsWith("libggml-cpu", StringComparison.Ordinal)),
            backends,
            llamaError is null ? LlamaRuntime.SystemInfo.Trim() : null,
            llamaError,
            Telemetry.Sources.PowerSources.Detect(Board.PowerSession.Sources));
    }

    private static void WriteJson(TextWriter output, Report r) => JsonOutput.Write(output, new SystemReport(r.Version, r.Runtime, r.NativeAot, r.Arch, r.CpuModel,
        r.CpuCount, r.CpuFeatures, r.Glibc, r.Kernel, r.Os, r.Board, r.MemoryMegabytes is { } memory ? Math.Round(memory) : null, r.LlamaDirectory, r.LlamaBuild,
        r.LlamaCpuVariant, r.LlamaBackends, r.LlamaSystemInfo, [.. r.PowerSources.Select(s => new PowerSourceFound(s.Spec, s.Available, s.Detail))], r.LlamaError), indented: true);

    private static void WriteText(TextWriter output, Report r)
    {
        void Line(string label, string value) => output.WriteLine(string.Create(C, $"{label,-14}{value}"));
        Line("configspec", $"{r.Version} ({(r.NativeAot ? "native AOT" : "managed")}, {r.Runtime})");
        Line("arch", r.Arch);
        Line("cpu", string.Create(C, $"{r.CpuModel}, {r.CpuCount} cores"));
        Line("cpu features", r.CpuFeatures.Count > 0 ? string.Join(' ', r.CpuFeatures) : "unknown");
        Line("board", r.Board);
        Line("os", r.Os);
        Line("kernel", r.Kernel);
        Line("glibc", r.Glibc);
        Line("memory", r.MemoryMegabytes is { } m ? string.Create(C, $"{m:F0} MiB") : "unknown");
        if (r.LlamaError is not null)
        {
            Line("llama.cpp", "NOT LOADED: " + r.LlamaError);
        }
        else
        {
            Line("llama.cpp", $"{r.LlamaBuild}, from {r.LlamaDirectory}");
            Line("ggml cpu", r.LlamaCpuVariant ?? "no libggml-cpu library mapped (see llama.cpp system info)");
            if (r.LlamaBackends.Count > 1)
            {
                Line("ggml backends", string.Join(' ', r.LlamaBackends));
            }

            Line("llama system", r.LlamaSystemInfo ?? string.Empty);
        }

        output.WriteLine("power sources:");
        foreach (var source in r.PowerSources)
        {
            output.WriteLine("  " + PowerCommand.DetectedLine(source));
        }
    }
}
