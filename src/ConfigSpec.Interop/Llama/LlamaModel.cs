using System.Buffers;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using ConfigSpec.Interop.Gguf;

namespace ConfigSpec.Interop.Llama;

/// <summary>Settings for loading a model.</summary>
public sealed record LlamaModelOptions
{
    /// <summary>Layers to offload to a GPU backend (0 = CPU only, -1 = all).</summary>
    public int GpuLayers { get; init; }

    /// <summary>Memory-map the file (the default); off reads it into memory.</summary>
    public bool UseMemoryMap { get; init; } = true;
}

/// <summary>
/// A loaded GGUF model: metadata, vocabulary and tokenizer. Thread-safe for reads; contexts are created
/// with <see cref="CreateContext"/>. The file is validated as GGUF (header and tensor bounds) before
/// llama.cpp opens it.
/// </summary>
public sealed unsafe class LlamaModel : IDisposable
{
    private readonly nint _vocab;
    private string? _fingerprint;

    private LlamaModel(string path, LlamaModelHandle handle, GgufFile gguf)
    {
        Path = path;
        Handle = handle;
        Gguf = gguf;
        _vocab = NativeMethods.llama_model_get_vocab(handle);
        VocabularySize = NativeMethods.llama_vocab_n_tokens(_vocab);
        BosToken = NativeMethods.llama_vocab_bos(_vocab);
        EosToken = NativeMethods.llama_vocab_eos(_vocab);
        AddsBos = NativeMethods.llama_vocab_get_add_bos(_vocab);
        TrainedContextLength = NativeMethods.llama_model_n_ctx_train(handle);
        LayerCount = NativeMethods.llama_model_n_layer(handle);
        EmbeddingLength = NativeMethods.llama_model_n_embd(handle);
        HeadCount = NativeMethods.llama_model_n_head(handle);
        KvHeadCount = NativeMethods.llama_model_n_head_kv(handle);
        ParameterCount = (long)NativeMethods.llama_model_n_params(handle);
        TensorBytes = (long)NativeMethods.llama_model_size(handle);
        Architecture = MetaString("general.architecture") ?? gguf.Architecture ?? "unknown";
        Description = ReadDescription(handle);
    }

    public string Path { get; }

    public LlamaModelHandle Handle { get; }

    /// <summary>The validated GGUF header (tensor table and raw metadata).</summary>
    public GgufFile Gguf { get; }

    public string Architecture { get; }

    public string Description { get; }

    public int VocabularySize { get; }

    public int BosToken { get; }

    public int EosToken { get; }

    public bool AddsBos { get; }

    public int TrainedContextLength { get; }

    public int LayerCount { get; }

    public int EmbeddingLength { get; }

    public int HeadCount { get; }

    public int KvHeadCount { get; }

    public long ParameterCount { get; }

    public long TensorBytes { get; }

    public long FileBytes => Gguf.FileLength;

    /// <summary>Tensor count by ggml type, e.g. {"F32": 11, "Q8_0": 24}.</summary>
    public IReadOnlyDictionary<string, int> TensorTypes =>
        Gguf.Tensors.GroupBy(t => t.TypeName).OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);

    public static LlamaModel Load(string path, LlamaModelOptions? options = null, LlamaRuntimeOptions? runtime = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= new LlamaModelOptions();
        var gguf = GgufFile.Read(path);
        LlamaRuntime.Initialize(runtime);

        var parameters = NativeMethods.llama_model_default_params();
        parameters.GpuLayerCount = options.GpuLayers;
        parameters.LoadMode = options.UseMemoryMap ? 1 : 0;
        nint pointer;
        lock (LlamaRuntime.GlobalCallGate)
        {
            LlamaRuntime.ClearRecentProblems();
            pointer = NativeMethods.llama_model_load_from_file(path, parameters);
        }

        if (pointer == 0)
        {
            var detail = LlamaRuntime.RecentNativeProblems();
            throw new ModelFileException(path, "was rejected by llama.cpp" + (detail.Length > 0 ? $": {detail}" : string.Empty));
        }

        return new LlamaModel(path, new LlamaModelHandle(pointer), gguf);
    }

    public LlamaContext CreateContext(LlamaContextOptions? options = null) => new(this, options ?? new LlamaContextOptions());

    public bool IsEndOfGeneration(int token) => NativeMethods.llama_vocab_is_eog(_vocab, token);

    public bool IsValidToken(int token) => (uint)token < (uint)VocabularySize;

    /// <summary>Tokenizes UTF-8 text; adds BOS when the model asks for it and <paramref name="addSpecial"/> is set.</summary>
    public int[] Tokenize(string text, bool addSpecial = true, bool parseSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var bytes = Encoding.UTF8.GetBytes(text);
        var capacity = bytes.Length + 8;
        while (true)
        {
            var tokens = new int[capacity];
            int count;
            fixed (byte* textPointer = bytes)
            fixed (int* tokenPointer = tokens)
            {
                count = NativeMethods.llama_tokenize(_vocab, textPointer, bytes.Length, tokenPointer, capacity, addSpecial, parseSpecial);
            }

            if (count == int.MinValue)
            {
                throw new ConfigSpecException("prompt is too long to tokenize");
            }

            if (count >= 0)
            {
                Array.Resize(ref tokens, count);
                return tokens;
            }

            capacity = -count;
        }
    }

    /// <summary>The raw bytes of one token's piece (may be part of a multi-byte character).</summary>
    public byte[] TokenBytes(int token, bool renderSpecial = false)
    {
        ThrowIfInvalidToken(token);
        Span<byte> buffer = stackalloc byte[64];
        fixed (byte* pointer = buffer)
        {
            var length = NativeMethods.llama_token_to_piece(_vocab, token, pointer, buffer.Length, 0, renderSpecial);
            if (length >= 0)
            {
                return buffer[..length].ToArray();
            }

            var large = new byte[-length];
            fixed (byte* largePointer = large)
            {
                length = NativeMethods.llama_token_to_piece(_vocab, token, largePointer, large.Length, 0, renderSpecial);
            }

            return large[..length];
        }
    }

    /// <summary>Detokenizes a sequence of tokens into text, joining pieces as bytes so split characters survive.</summary>
    public string Detokenize(ReadOnlySpan<int> tokens, bool renderSpecial = false)
    {
        var writer = new ArrayBufferWriter<byte>();
        foreach (var token in tokens)
        {
            writer.Write(TokenBytes(token, renderSpecial));
        }

        return Encoding.UTF8.GetString(writer.WrittenSpan);
    }

    public void ThrowIfInvalidToken(int token)
    {
        if (!IsValidToken(token))
        {
            throw new ArgumentOutOfRangeException(nameof(token), token, $"token id {token} is outside the vocabulary of '{Path}' (0..{VocabularySize - 1})");
        }
    }

    /// <summary>
    /// SHA-256 over the vocabulary: size, BOS/EOS, and every token's text, score and attributes.
    /// Two models whose fingerprints match tokenize identically, so a draft can be checked against a target
    /// before any decoding.
    /// </summary>
    public string VocabularyFingerprint => _fingerprint ??= ComputeFingerprint();

    private string ComputeFingerprint()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> scratch = stackalloc byte[12];
        BitConverter.TryWriteBytes(scratch, VocabularySize);
        BitConverter.TryWriteBytes(scratch[4..], BosToken);
        BitConverter.TryWriteBytes(scratch[8..], EosToken);
        hash.AppendData(scratch);
        for (var token = 0; token < VocabularySize; token++)
        {
            var text = NativeMethods.llama_vocab_get_text(_vocab, token);
            var span = text is null ? [] : MemoryMarshal.CreateReadOnlySpanFromNullTerminated(text);
            hash.AppendData(span);
            BitConverter.TryWriteBytes(scratch, NativeMethods.llama_vocab_get_score(_vocab, token));
            BitConverter.TryWriteBytes(scratch[4..], NativeMethods.llama_vocab_get_attr(_vocab, token));
            scratch[8] = 0;
            hash.AppendData(scratch[..9]);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    public string? MetaString(string key)
    {
        Span<byte> buffer = stackalloc byte[256];
        fixed (byte* pointer = buffer)
        {
            var length = NativeMethods.llama_model_meta_val_str(Handle, key, pointer, (nuint)buffer.Length);
            return length < 0 ? null : Encoding.UTF8.GetString(buffer[..Math.Min(length, buffer.Length - 1)]);
        }
    }

    private static string ReadDescription(LlamaModelHandle handle)
    {
        Span<byte> buffer = stackalloc byte[256];
        fixed (byte* pointer = buffer)
        {
            var length = NativeMethods.llama_model_desc(handle, pointer, (nuint)buffer.Length);
            return length <= 0 ? string.Empty : Encoding.UTF8.GetString(buffer[..Math.Min(length, buffer.Length - 1)]);
        }
    }

    public void Dispose() => Handle.Dispose();
}
