using System.Reflection;
using System.Runtime.InteropServices;

namespace ConfigSpec.Interop.Llama;

/// <summary>
/// The one place that finds the llama.cpp shared libraries. Search order: the directory given in
/// <see cref="LlamaRuntimeOptions.LibraryDirectory"/>, the <c>CONFIGSPEC_LLAMA_DIR</c> environment variable,
/// the application directory, and its <c>llama/</c> subfolder. A directory qualifies when it holds both
/// <c>libllama</c> and <c>libggml</c> (plain <c>.so</c> names of a user's own build, or the versioned names
/// of the pinned npm build).
/// </summary>
public static class LlamaLibraryResolver
{
    public const string EnvironmentVariable = "CONFIGSPEC_LLAMA_DIR";

    private static readonly Lock Gate = new();
    private static nint _llama;
    private static nint _ggml;
    private static string? _directory;
    private static bool _resolverInstalled;

    /// <summary>The directory the libraries were loaded from, once loaded.</summary>
    public static string? LoadedDirectory => _directory;

    internal static void EnsureResolverInstalled()
    {
        lock (Gate)
        {
            if (_resolverInstalled)
            {
                return;
            }

            NativeLibrary.SetDllImportResolver(typeof(LlamaLibraryResolver).Assembly, Resolve);
            _resolverInstalled = true;
        }
    }

    /// <summary>Loads the libraries from the first qualifying directory; idempotent.</summary>
    internal static string Load(string? explicitDirectory)
    {
        lock (Gate)
        {
            if (_directory is not null)
            {
                if (explicitDirectory is not null && !SameDirectory(explicitDirectory, _directory))
                {
                    throw new NativeLibraryException(
                        $"llama.cpp is already loaded from '{_directory}'; cannot switch to '{explicitDirectory}' in the same process");
                }

                return _directory;
            }

            var tried = new List<string>();
            foreach (var (directory, origin) in Candidates(explicitDirectory))
            {
                var llama = FindLibrary(directory, "libllama");
                var ggml = FindLibrary(directory, "libggml");
                if (llama is null || ggml is null)
                {
                    tried.Add($"{directory} ({origin}: {(Directory.Exists(directory) ? "no libllama*.so/libggml*.so" : "does not exist")})");
                    if (origin != "application directory" && origin != "application llama/ folder")
                    {
                        // A directory the user named must work; do not fall back silently.
                        break;
                    }

                    continue;
                }

                try
                {
                    _ggml = NativeLibrary.Load(ggml);
                    _llama = NativeLibrary.Load(llama);
                }
                catch (DllNotFoundException ex)
                {
                    throw new NativeLibraryException(
                        $"llama.cpp libraries in '{directory}' failed to load ({ex.Message.Split('\n')[0]}); check that the build matches this CPU and that its dependencies (libstdc++, CUDA runtime for CUDA builds) are installed");
                }

                _directory = directory;
                EnsureResolverInstalled();
                return directory;
            }

            throw new NativeLibraryException(
                "llama.cpp native libraries not found. Searched: " + string.Join("; ", tried) +
                $". Fix: run scripts/fetch-llama.sh, or point --llama-dir / {EnvironmentVariable} at a folder holding libllama.so and libggml.so (for example your own CUDA build)");
        }
    }

    private static IEnumerable<(string Directory, string Origin)> Candidates(string? explicitDirectory)
    {
        if (!string.IsNullOrWhiteSpace(explicitDirectory))
        {
            yield return (Path.GetFullPath(explicitDirectory), "--llama-dir setting");
            yield break;
        }

        var fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            yield return (Path.GetFullPath(fromEnvironment), EnvironmentVariable);
            yield break;
        }

        yield return (AppContext.BaseDirectory.TrimEnd('/'), "application directory");
        yield return (Path.Combine(AppContext.BaseDirectory, "llama"), "application llama/ folder");
    }

    /// <summary>Finds <c>name.so</c>, else the highest versioned <c>name.v*.so</c>, in a directory.</summary>
    internal static string? FindLibrary(string directory, string name)
    {
        if (!Directory.Exists(directory))
        {
            return null;
        }

        var plain = Path.Combine(directory, name + ".so");
        if (File.Exists(plain))
        {
            return plain;
        }

        return Directory.EnumerateFiles(directory, name + ".v*.so")
            .Order(StringComparer.Ordinal)
            .LastOrDefault();
    }

    private static bool SameDirectory(string a, string b) =>
        string.Equals(Path.GetFullPath(a).TrimEnd('/'), Path.GetFullPath(b).TrimEnd('/'), StringComparison.Ordinal);

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName is not (NativeMethods.Llama or NativeMethods.Ggml))
        {
            return IntPtr.Zero;
        }

        Load(null);
        return libraryName == NativeMethods.Llama ? _llama : _ggml;
    }

    internal static nint LlamaHandle => _llama;

    internal static nint GgmlHandle => _ggml;
}
