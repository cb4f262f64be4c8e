using ConfigSpec.Interop;
using ConfigSpec.Interop.Gguf;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Interop;

public sealed class GgufTests : IDisposable
{
    private readonly string _dir = TestEnvironment.NewTemporaryDirectory();

    [Fact]
    public void Reads_header_metadata_and_tensor_table_of_the_target()
    {
        var gguf = GgufFile.Read(TestEnvironment.Model("stories260K.gguf"));
        Assert.Equal("llama", gguf.Architecture);
        Assert.Equal(1_185_376, gguf.FileLength);
        Assert.Equal(5, gguf.GetInteger("llama.block_count"));
        Assert.Equal(64, gguf.GetInteger("llama.embedding_length"));
        Assert.All(gguf.Tensors, t => Assert.Equal("F32", t.TypeName));
        Assert.Equal(292_800, gguf.Tensors.Sum(t => t.ElementCount));
        var tokens = Assert.IsType<object[]>(gguf.Metadata["tokenizer.ggml.tokens"]);
        Assert.Equal(512, tokens.Length);
    }

    [Fact]
    public void Quantised_draft_lists_its_block_types()
    {
        var gguf = GgufFile.Read(TestEnvironment.Model("stories260K-Q8_0.gguf"));
        Assert.Contains(gguf.Tensors, t => t.TypeName == "Q8_0");
        var last = gguf.Tensors.MaxBy(t => t.Offset)!;
        Assert.True(gguf.DataOffset + (long)last.Offset + last.ByteSize <= gguf.FileLength);
    }

    [Fact]
    public void Missing_file_is_named()
    {
        var path = Path.Combine(_dir, "absent.gguf");
        var ex = Assert.Throws<ModelFileException>(() => GgufFile.Read(path));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Non_gguf_file_is_rejected_with_its_magic()
    {
        var path = Path.Combine(_dir, "notes.gguf");
        File.WriteAllText(path, "this is a text file, not a model at all");
        var ex = Assert.Throws<ModelFileException>(() => GgufFile.Read(path));
        Assert.Contains("is not a GGUF model", ex.Message, StringComparison.Ordinal);
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(100)]        // inside the metadata
    [InlineData(600_000)]    // inside the tensor data
    [InlineData(1_185_375)]  // one byte short
    public void Truncated_file_is_rejected(int keep)
    {
        var path = Path.Combine(_dir, "cut.gguf");
        var bytes = File.ReadAllBytes(TestEnvironment.Model("stories260K.gguf"));
        File.WriteAllBytes(path, bytes[..keep]);
        var ex = Assert.Throws<ModelFileException>(() => GgufFile.Read(path));
        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tensor_offset_beyond_the_file_is_reported_with_the_tensor_name()
    {
        var source = GgufFile.Read(TestEnvironment.Model("stories260K.gguf"));
        var bytes = File.ReadAllBytes(source.Path);
        var first = source.Tensors[0];
        // Locate the first tensor's name in the header and overwrite its offset field (after dims and type).
        var nameBytes = System.Text.Encoding.UTF8.GetBytes(first.Name);
        var at = bytes.AsSpan().IndexOf(nameBytes);
        var offsetField = at + nameBytes.Length + 4 + (8 * first.Dimensions.Count) + 4;
        BitConverter.TryWriteBytes(bytes.AsSpan(offsetField, 8), 10_000_000UL);
        var path = Path.Combine(_dir, "bad-offset.gguf");
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<ModelFileException>(() => GgufFile.Read(path));
        Assert.Contains($"tensor '{first.Name}'", ex.Message, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
