using System.Runtime.InteropServices;
using ConfigSpec.Interop.Llama;

namespace ConfigSpec.Tests.Infrastructure;

/// <summary>Locates the repository's models and llama.cpp libraries (set up by scripts/test.sh) and starts the runtime once.</summary>
public static class TestEnvironment
{
    private static readonly Lazy<string> Root = new(FindRoot);

    public static string RepositoryRoot => Root.Value;

    public static string ModelsDirectory =>
        Environment.GetEnvironmentVariable("CONFIGSPEC_MODELS") is { Length: > 0 } dir ? dir : Path.Combine(RepositoryRoot, "models");

    public static string LlamaDirectory =>
        Environment.GetEnvironmentVariable(LlamaLibraryResolver.EnvironmentVariable) is { Length: > 0 } dir
            ? dir
            : Path.Combine(RepositoryRoot, "lib", "llama", RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? "linux-arm64" : "linux-x64");

    public static string SharedModelsDirectory => Path.Combine(RepositoryRoot, "..", "shared", "models");

    public static string Model(string name)
    {
        var path = Path.Combine(ModelsDirectory, name);
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"test model '{path}' is missing: run scripts/test.sh (it fetches and derives the models)");
        }

        return path;
    }

    /// <summary>
    /// A product program as its own build produced it (bin/CONFIG/net10.0), so it runs with exactly the
    /// assemblies its deps file names; the configuration is the one the tests were built in.
    /// </summary>
    public static string ProductBinary(string project, string file)
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;
        var path = Path.Combine(RepositoryRoot, "src", project, "bin", configuration, "net10.0", file);
        return File.Exists(path) ? path : throw new InvalidOperationException($"'{path}' is missing: build the solution first");
    }

    public static void InitializeRuntime() => LlamaRuntime.Initialize(new LlamaRuntimeOptions { LibraryDirectory = LlamaDirectory });

    public static string NewTemporaryDirectory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "configspec-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ConfigSpec.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("cannot find ConfigSpec.sln above the test binaries");
    }
}

/// <summary>The target and the five shipped drafts, loaded once for the test run.</summary>
public sealed class ModelFixture : IDisposable
{
    public static readonly string[] DraftNames =
    [
        "stories260K-Q8_0.gguf", "stories260K-Q4_K_M.gguf", "stories260K-Q4_0.gguf",
        "stories260K-prune4-F32.gguf", "stories260K-prune1234-F32.gguf",
    ];

    public ModelFixture()
    {
        TestEnvironment.InitializeRuntime();
        Target = LlamaModel.Load(TestEnvironment.Model("stories260K.gguf"));
        Drafts = DraftNames.ToDictionary(n => n, n => LlamaModel.Load(TestEnvironment.Model(n)), StringComparer.Ordinal);
    }

    public LlamaModel Target { get; }

    public IReadOnlyDictionary<string, LlamaModel> Drafts { get; }

    public void Dispose()
    {
        foreach (var draft in Drafts.Values)
        {
            draft.Dispose();
        }

        Target.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class ModelGroup : ICollectionFixture<ModelFixture>
{
    public const string Name = "models";
}
