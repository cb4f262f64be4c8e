using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ConfigSpec.Interop.Llama;

/// <summary>Settings for the native llama.cpp runtime.</summary>
public sealed record LlamaRuntimeOptions
{
    /// <summary>Folder holding libllama/libggml and the ggml CPU (or CUDA) backends; null searches the defaults.</summary>
    public string? LibraryDirectory { get; init; }

    /// <summary>Native log messages at or above this level are written to standard error.</summary>
    public LlamaLogLevel EchoLevel { get; init; } = LlamaLogLevel.None;
}

public enum LlamaLogLevel
{
    Debug = 1,
    Info = 2,
    Warning = 3,
    Error = 4,
    None = 100,
}

/// <summary>
/// Process-wide start-up of llama.cpp: finds the libraries, checks the ABI, loads the compute backends
/// from the library folder and initialises the backend. Idempotent and thread-safe.
/// </summary>
public static unsafe class LlamaRuntime
{
    private static readonly Lock Gate = new();
    private static readonly Queue<string> RecentProblems = new();
    private static volatile bool _initialised;
    private static LlamaLogLevel _echoLevel = LlamaLogLevel.None;

    /// <summary>Serialises calls that llama.cpp documents as process-global (model load, quantisation).</summary>
    internal static Lock GlobalCallGate { get; } = new();

    public static string? LibraryDirectory => LlamaLibraryResolver.LoadedDirectory;

    public static int BackendDeviceCount { get; private set; }

    public static string SystemInfo { get; private set; } = string.Empty;

    /// <summary>
    /// The ggml build the loaded libraries report (<c>ggml_version</c>, <c>ggml_commit</c>), or "not reported" for a
    /// build that exports neither; empty until <see cref="Initialize"/>.
    /// </summary>
    public static string BuildDescription { get; private set; } = string.Empty;

    /// <summary>
    /// The ggml backend libraries (<c>libggml-cpu-*.so</c>, <c>libggml-cuda*.so</c>, ...) mapped into this process, as
    /// <c>/proc/self/maps</c> shows them: the CPU kernel variant ggml picked for this CPU is the one file it loaded.
    /// Empty where the maps file cannot be read.
    /// </summary>
    public static IReadOnlyList<string> LoadedBackendFiles(string procRoot = "/proc")
    {
        var files = new SortedSet<string>(StringComparer.Ordinal);
        try
        {
            foreach (var line in File.ReadLines(Path.Combine(procRoot, "self", "maps")))
            {
                // address perms offset dev inode path; the path is the sixth field and may hold spaces.
                var slash = line.IndexOf('/', StringComparison.Ordinal);
                if (slash < 0)
                {
                    continue;
                }

                var path = line[slash..].Trim();
                var name = Path.GetFileName(path);
                if (name.StartsWith("libggml-", StringComparison.Ordinal) && !name.StartsWith("libggml-base", StringComparison.Ordinal)
                    && name.Contains(".so", StringComparison.Ordinal))
                {
                    files.Add(path);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Not Linux, or /proc not mounted: nothing to report.
        }

        return [.. files];
    }

    public static void Initialize(LlamaRuntimeOptions? options = null)
    {
        if (_initialised)
        {
            return;
        }

        lock (Gate)
        {
            if (_initialised)
            {
                return;
            }

            options ??= new LlamaRuntimeOptions();
            _echoLevel = options.EchoLevel;
            var directory = LlamaLibraryResolver.Load(options.LibraryDirectory);
            LlamaAbi.Verify();
            NativeMethods.llama_log_set(&OnNativeLog, 0);
            NativeMethods.ggml_backend_load_all_from_path(directory);
            BackendDeviceCount = (int)NativeMethods.ggml_backend_dev_count();
            if (BackendDeviceCount == 0)
            {
                throw new NativeLibraryException(
                    $"no ggml compute backend could be loaded from '{directory}': it needs libggml-cpu-*.so (or a GPU backend) matching this CPU");
            }

            NativeMethods.llama_backend_init();
            SystemInfo = Marshal.PtrToStringUTF8((nint)NativeMethods.llama_print_system_info()) ?? string.Empty;
            BuildDescription = DescribeBuild();
            _initialised = true;
        }
    }

    private static string DescribeBuild()
    {
        // Optional exports (a user's own older build may lack them), so looked up rather than imported.
        static string? Text(string export) =>
            NativeLibrary.TryGetExport(LlamaLibraryResolver.GgmlHandle, export, out var address)
                ? Marshal.PtrToStringUTF8((nint)((delegate* unmanaged[Cdecl]<byte*>)address)())
                : null;

        var version = Text("ggml_version");
        var commit = Text("ggml_commit");
        return (version, commit) switch
        {
            (null, null) => "not reported",
            (_, null) => $"ggml {version}",
            (null, _) => $"ggml commit {commit}",
            _ => $"ggml {version} (commit {commit})",
        };
    }

    /// <summary>The last few warnings and errors llama.cpp logged, newest last (for error messages).</summary>
    public static string RecentNativeProblems()
    {
        lock (RecentProblems)
        {
            return string.Join(" | ", RecentProblems);
        }
    }

    internal static void ClearRecentProblems()
    {
        lock (RecentProblems)
        {
            RecentProblems.Clear();
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnNativeLog(int level, byte* text, nint userData)
    {
        var message = Marshal.PtrToStringUTF8((nint)text) ?? string.Empty;
        var logLevel = level == 5 ? LlamaLogLevel.Info : (LlamaLogLevel)level;
        if (logLevel >= _echoLevel)
        {
            Console.Error.Write(message);
        }

        if (level is 3 or 4)
        {
            var line = message.Trim();
            if (line.Length == 0)
            {
                return;
            }

            lock (RecentProblems)
            {
                RecentProblems.Enqueue(line);
                while (RecentProblems.Count > 6)
                {
                    RecentProblems.Dequeue();
                }
            }
        }
    }
}
