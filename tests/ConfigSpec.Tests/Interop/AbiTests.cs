using System.Runtime.InteropServices;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Interop;

public class AbiTests
{
    // Sizes and offsets read from llama.h of the pinned build (x86-64 / arm64 LP64).
    [Theory]
    [InlineData(typeof(LlamaModelParams), 80)]
    [InlineData(typeof(LlamaContextParams), 160)]
    [InlineData(typeof(LlamaBatchNative), 56)]
    [InlineData(typeof(LlamaModelQuantizeParams), 64)]
    public void Struct_sizes_match_the_pinned_header(Type type, int size) => Assert.Equal(size, Marshal.SizeOf(type));

    [Theory]
    [InlineData(typeof(LlamaModelParams), nameof(LlamaModelParams.GpuLayerCount), 16)]
    [InlineData(typeof(LlamaModelParams), nameof(LlamaModelParams.MainGpu), 32)]
    [InlineData(typeof(LlamaModelParams), nameof(LlamaModelParams.TensorSplit), 40)]
    [InlineData(typeof(LlamaModelParams), nameof(LlamaModelParams.KvOverrides), 64)]
    [InlineData(typeof(LlamaModelParams), nameof(LlamaModelParams.VocabOnly), 72)]
    [InlineData(typeof(LlamaModelParams), nameof(LlamaModelParams.LoadMtp), 77)]
    [InlineData(typeof(LlamaContextParams), nameof(LlamaContextParams.Threads), 28)]
    [InlineData(typeof(LlamaContextParams), nameof(LlamaContextParams.FlashAttentionType), 52)]
    [InlineData(typeof(LlamaContextParams), nameof(LlamaContextParams.RopeFrequencyBase), 56)]
    [InlineData(typeof(LlamaContextParams), nameof(LlamaContextParams.EvalCallback), 88)]
    [InlineData(typeof(LlamaContextParams), nameof(LlamaContextParams.TypeK), 104)]
    [InlineData(typeof(LlamaContextParams), nameof(LlamaContextParams.AbortCallback), 112)]
    [InlineData(typeof(LlamaContextParams), nameof(LlamaContextParams.Embeddings), 128)]
    [InlineData(typeof(LlamaContextParams), nameof(LlamaContextParams.Samplers), 136)]
    [InlineData(typeof(LlamaContextParams), nameof(LlamaContextParams.OtherContext), 152)]
    [InlineData(typeof(LlamaBatchNative), nameof(LlamaBatchNative.Token), 8)]
    [InlineData(typeof(LlamaBatchNative), nameof(LlamaBatchNative.Logits), 48)]
    [InlineData(typeof(LlamaModelQuantizeParams), nameof(LlamaModelQuantizeParams.AllowRequantize), 16)]
    [InlineData(typeof(LlamaModelQuantizeParams), nameof(LlamaModelQuantizeParams.ImportanceMatrix), 24)]
    [InlineData(typeof(LlamaModelQuantizeParams), nameof(LlamaModelQuantizeParams.PruneLayers), 48)]
    [InlineData(typeof(LlamaModelQuantizeParams), nameof(LlamaModelQuantizeParams.MaxBufferSize), 56)]
    public void Field_offsets_match_the_pinned_header(Type type, string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf(type, field));

    [Fact]
    public void Declared_sizes_agree_with_the_constants_the_start_up_check_uses()
    {
        Assert.Equal(LlamaAbi.ModelParamsSize, LlamaAbi.DeclaredSizes["llama_model_params"]);
        Assert.Equal(LlamaAbi.ContextParamsSize, LlamaAbi.DeclaredSizes["llama_context_params"]);
        Assert.Equal(LlamaAbi.BatchSize, LlamaAbi.DeclaredSizes["llama_batch"]);
        Assert.Equal(LlamaAbi.QuantizeParamsSize, LlamaAbi.DeclaredSizes["llama_model_quantize_params"]);
    }

    [Fact]
    public void Pinned_build_passes_the_start_up_check_and_loads_a_cpu_backend()
    {
        TestEnvironment.InitializeRuntime();
        Assert.True(LlamaRuntime.BackendDeviceCount >= 1);
        Assert.Contains("CPU", LlamaRuntime.SystemInfo, StringComparison.Ordinal);
        Assert.Equal(Path.GetFullPath(TestEnvironment.LlamaDirectory).TrimEnd('/'), LlamaRuntime.LibraryDirectory);
    }
}
