using System.Security.Cryptography;
using ConfigSpec.Interop;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Interop;

public sealed class QuantizeTests : IDisposable
{
    private readonly string _dir = TestEnvironment.NewTemporaryDirectory();

    public QuantizeTests() => TestEnvironment.InitializeRuntime();

    // The sha256 values published with the shared test models.
    [Theory]
    [InlineData("Q8_0", "", "ff8701a45da28293b7af11a695ab33575b692e9b109a2eae6238c906c31415da")]
    [InlineData("Q4_K_M", "", "7f61512f1889080c73b2afd3ac7fdfe55a368e83570b20e5019829adfa734a2a")]
    [InlineData("Q4_0", "", "fd93abd9957992763c863e7e3f30934baf1e7a2e31b6c911a720cd109daed40d")]
    [InlineData("F32", "4", "532060d8d9d0f4fe9d726217f841914ef5e8b54e148d79e4f9a1c9d4bbfe677a")]
    [InlineData("F32", "1,2,3,4", "6053f6f5d76e12aaec910b277040830aa3a48fce8a02639dfd892eb8d857d874")]
    public void Derived_drafts_reproduce_the_published_checksums(string type, string prune, string sha256)
    {
        var output = Path.Combine(_dir, $"draft-{type}-{prune.Replace(',', '_')}.gguf");
        var layers = prune.Length == 0 ? [] : prune.Split(',').Select(int.Parse).ToArray();
        LlamaQuantizer.Quantize(TestEnvironment.Model("stories260K.gguf"), output, new QuantizeOptions { QuantType = type, PruneLayers = layers });
        Assert.Equal(sha256, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(output))));
        Assert.False(File.Exists(output + ".partial"));
    }

    [Fact]
    public void Unknown_quant_type_is_named()
    {
        var ex = Assert.Throws<ConfigSpecException>(() =>
            LlamaQuantizer.Quantize(TestEnvironment.Model("stories260K.gguf"), Path.Combine(_dir, "x.gguf"), new QuantizeOptions { QuantType = "Q3_Z" }));
        Assert.Contains("unknown quantisation type 'Q3_Z'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pruning_a_layer_that_does_not_exist_is_refused()
    {
        var ex = Assert.Throws<SettingException>(() =>
            LlamaQuantizer.Quantize(TestEnvironment.Model("stories260K.gguf"), Path.Combine(_dir, "x.gguf"), new QuantizeOptions { QuantType = "F32", PruneLayers = [7] }));
        Assert.Contains("layer 7 does not exist", ex.Message, StringComparison.Ordinal);
        Assert.Throws<SettingException>(() =>
            LlamaQuantizer.Quantize(TestEnvironment.Model("stories260K.gguf"), Path.Combine(_dir, "x.gguf"), new QuantizeOptions { QuantType = "F32", PruneLayers = [0, 1, 2, 3, 4] }));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
