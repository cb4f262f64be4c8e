using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ConfigSpec.Interop.Llama;

/// <summary>
/// The ABI of the pinned llama.cpp build (npm @node-llama-cpp 3.22.1, llama.cpp release v0.5.0 of that
/// package) and a start-up check that a loaded library matches it: struct sizes (on x86-64, by letting the
/// library write its default parameter structs into a guarded buffer) and the default values at known
/// offsets. A build whose structs moved is refused before any call could corrupt memory.
/// </summary>
public static unsafe class LlamaAbi
{
    public const string PinnedRelease = "llama.cpp v0.5.0 (npm @node-llama-cpp/*@3.22.1)";
    public const int ModelParamsSize = 80;
    public const int ContextParamsSize = 160;
    public const int BatchSize = 56;
    public const int QuantizeParamsSize = 64;

    private const int GuardSize = 512;
    private const byte GuardByte = 0xA5;

    internal static void Verify()
    {
        var problems = new List<string>();
        if (RuntimeInformation.ProcessArchitecture == Architecture.X64)
        {
            CheckWrittenSize("llama_model_default_params", ModelParamsSize, problems);
            CheckWrittenSize("llama_context_default_params", ContextParamsSize, problems);
            CheckWrittenSize("llama_model_quantize_default_params", QuantizeParamsSize, problems);
        }

        if (problems.Count == 0)
        {
            CheckDefaults(problems);
        }

        if (problems.Count > 0)
        {
            throw new NativeLibraryException(
                $"the llama.cpp library in '{LlamaLibraryResolver.LoadedDirectory}' does not match the ABI this program was built for ({PinnedRelease}): " +
                string.Join("; ", problems) + ". Use the pinned build (scripts/fetch-llama.sh) or rebuild ConfigSpec against your llama.h");
        }
    }

    /// <summary>
    /// On x86-64 System V, a struct larger than 16 bytes is returned through a hidden pointer in the first
    /// argument register, so calling the function with our own buffer shows how many bytes it writes.
    /// </summary>
    private static void CheckWrittenSize(string export, int expected, List<string> problems)
    {
        if (!NativeLibrary.TryGetExport(LlamaLibraryResolver.LlamaHandle, export, out var address))
        {
            problems.Add($"{export} is not exported");
            return;
        }

        var buffer = stackalloc byte[GuardSize];
        new Span<byte>(buffer, GuardSize).Fill(GuardByte);
        ((delegate* unmanaged[Cdecl]<byte*, byte*>)address)(buffer);
        var written = GuardSize;
        while (written > 0 && buffer[written - 1] == GuardByte)
        {
            written--;
        }

        // Trailing padding is not written; the struct ends somewhere in its last 8-byte slot.
        if (written > expected || written <= expected - 8)
        {
            problems.Add($"{export} writes {written} bytes, expected a {expected}-byte struct");
        }
    }

    private static void CheckDefaults(List<string> problems)
    {
        var model = NativeMethods.llama_model_default_params();
        Expect(problems, "llama_model_params.n_gpu_layers", model.GpuLayerCount, -1);
        Expect(problems, "llama_model_params.split_mode", model.SplitMode, 1);
        Expect(problems, "llama_model_params.main_gpu", model.MainGpu, 0);
        Expect(problems, "llama_model_params.vocab_only", model.VocabOnly, 0);
        Expect(problems, "llama_model_params.use_extra_bufts", model.UseExtraBufferTypes, 1);

        var context = NativeMethods.llama_context_default_params();
        Expect(problems, "llama_context_params.n_ctx", context.ContextLength, 512u);
        Expect(problems, "llama_context_params.n_batch", context.BatchSize, 2048u);
        Expect(problems, "llama_context_params.n_ubatch", context.MicroBatchSize, 512u);
        Expect(problems, "llama_context_params.n_seq_max", context.MaxSequences, 1u);
        Expect(problems, "llama_context_params.yarn_ext_factor", context.YarnExtFactor, -1f);
        Expect(problems, "llama_context_params.type_k", context.TypeK, 1);
        Expect(problems, "llama_context_params.type_v", context.TypeV, 1);
        Expect(problems, "llama_context_params.offload_kqv", context.OffloadKqv, 1);
        Expect(problems, "llama_context_params.samplers", context.Samplers, 0);
        Expect(problems, "llama_context_params.ctx_other", context.OtherContext, 0);

        var quantize = NativeMethods.llama_model_quantize_default_params();
        Expect(problems, "llama_model_quantize_params.ftype", quantize.FileType, 7);
        Expect(problems, "llama_model_quantize_params.quantize_output_tensor", quantize.QuantizeOutputTensor, 1);
        Expect(problems, "llama_model_quantize_params.prune_layers", quantize.PruneLayers, 0);
        Expect(problems, "llama_model_quantize_params.max_buf_size", (ulong)quantize.MaxBufferSize, 8UL << 30);
    }

    private static void Expect<T>(List<string> problems, string field, T actual, T expected)
        where T : IEquatable<T>
    {
        if (!actual.Equals(expected))
        {
            problems.Add($"{field} default is {actual}, expected {expected}");
        }
    }

    /// <summary>Size of each mirrored struct as this program declares it (asserted by tests).</summary>
    public static IReadOnlyDictionary<string, int> DeclaredSizes { get; } = new Dictionary<string, int>
    {
        ["llama_model_params"] = Unsafe.SizeOf<LlamaModelParams>(),
        ["llama_context_params"] = Unsafe.SizeOf<LlamaContextParams>(),
        ["llama_batch"] = Unsafe.SizeOf<LlamaBatchNative>(),
        ["llama_model_quantize_params"] = Unsafe.SizeOf<LlamaModelQuantizeParams>(),
    };
}
