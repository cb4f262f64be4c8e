namespace ConfigSpec.Interop.Llama;

/// <summary>Quantisation targets offered by the command line (llama_ftype values of the pinned build).</summary>
public static class QuantTypes
{
    private static readonly Dictionary<string, int> ByName = new(StringComparer.OrdinalIgnoreCase)
    {
        ["F32"] = 0, ["F16"] = 1, ["Q4_0"] = 2, ["Q4_1"] = 3, ["Q8_0"] = 7, ["Q5_0"] = 8, ["Q5_1"] = 9,
        ["Q2_K"] = 10, ["Q3_K_S"] = 11, ["Q3_K_M"] = 12, ["Q3_K_L"] = 13, ["Q4_K_S"] = 14, ["Q4_K_M"] = 15,
        ["Q5_K_S"] = 16, ["Q5_K_M"] = 17, ["Q6_K"] = 18, ["IQ4_NL"] = 25, ["IQ4_XS"] = 30, ["BF16"] = 32,
    };

    public static IEnumerable<string> Names => ByName.Keys;

    /// <summary>The name of a llama_ftype value (the GGUF <c>general.file_type</c>), or null for one not offered here.</summary>
    public static string? NameOf(long fileType) => ByName.FirstOrDefault(p => p.Value == fileType).Key;

    public static int Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return ByName.TryGetValue(name, out var value)
            ? value
            : throw new ConfigSpecException($"unknown quantisation type '{name}' (known: {string.Join(", ", ByName.Keys)})");
    }
}

/// <summary>Settings for deriving a model with <c>llama_model_quantize</c>.</summary>
public sealed record QuantizeOptions
{
    public required string QuantType { get; init; }

    /// <summary>Layer indices to drop (layer pruning), empty for none.</summary>
    public IReadOnlyList<int> PruneLayers { get; init; } = [];

    public int Threads { get; init; } = 1;

    public bool AllowRequantize { get; init; }
}

public static unsafe class LlamaQuantizer
{
    /// <summary>Writes a quantised (and optionally layer-pruned) copy of <paramref name="input"/> to <paramref name="output"/>.</summary>
    public static void Quantize(string input, string output, QuantizeOptions options, LlamaRuntimeOptions? runtime = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(options);
        var fileType = QuantTypes.Parse(options.QuantType);
        var gguf = Gguf.GgufFile.Read(input);
        var layers = gguf.GetInteger($"{gguf.Architecture}.block_count");
        foreach (var layer in options.PruneLayers)
        {
            if (layer < 0 || (layers is not null && layer >= layers))
            {
                throw new SettingException("prune_layers", $"layer {layer} does not exist in '{input}' (it has {layers} layers)");
            }
        }

        if (layers is not null && options.PruneLayers.Distinct().Count() >= layers)
        {
            throw new SettingException("prune_layers", $"would remove every layer of '{input}'");
        }

        var full = Path.GetFullPath(output);
        if (string.Equals(full, Path.GetFullPath(input), StringComparison.Ordinal))
        {
            throw new SettingException("out", $"'{output}' is the input file; choose another path");
        }

        var directory = Path.GetDirectoryName(full);
        if (directory is not null && !Directory.Exists(directory))
        {
            throw new SettingException("out", $"directory '{directory}' does not exist");
        }

        LlamaRuntime.Initialize(runtime);
        var parameters = NativeMethods.llama_model_quantize_default_params();
        parameters.FileType = fileType;
        parameters.Threads = options.Threads;
        parameters.AllowRequantize = options.AllowRequantize ? (byte)1 : (byte)0;
        var prune = options.PruneLayers.Distinct().Order().Append(-1).ToArray();
        var temporary = full + ".partial";
        uint status;
        fixed (int* prunePointer = prune)
        {
            parameters.PruneLayers = prune.Length > 1 ? (nint)prunePointer : 0;
            lock (LlamaRuntime.GlobalCallGate)
            {
                LlamaRuntime.ClearRecentProblems();
                status = NativeMethods.llama_model_quantize(input, temporary, &parameters);
            }
        }

        if (status != 0)
        {
            File.Delete(temporary);
            throw new ModelFileException(input, $"quantisation to {options.QuantType} failed: {LlamaRuntime.RecentNativeProblems()}");
        }

        File.Move(temporary, full, overwrite: true);
    }
}
