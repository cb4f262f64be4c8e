using System.Runtime.InteropServices;

namespace ConfigSpec.Interop.Llama;

/// <summary>Settings for an inference context.</summary>
public sealed record LlamaContextOptions
{
    /// <summary>Context length in tokens; 0 uses the model's trained length.</summary>
    public int ContextLength { get; init; }

    /// <summary>Largest number of tokens one decode call may carry; 0 = the context length.</summary>
    public int BatchSize { get; init; }

    /// <summary>Independent sequences (KV streams) the context holds.</summary>
    public int Sequences { get; init; } = 1;

    /// <summary>Threads for single-token and batch decoding. On small boards 1–2 is fastest for small models.</summary>
    public int Threads { get; init; } = 1;
}

/// <summary>Status codes of <c>llama_decode</c>.</summary>
public enum LlamaDecodeStatus
{
    Success = 0,
    NoKvSlot = 1,
    Aborted = 2,
    InvalidBatch = -1,
}

public sealed class LlamaDecodeException : ConfigSpecException
{
    public LlamaDecodeException() { }

    public LlamaDecodeException(string message) : base(message) { }

    public LlamaDecodeException(string message, Exception innerException) : base(message, innerException) { }

    public LlamaDecodeException(LlamaDecodeStatus status, string message) : base(message) => Status = status;

    public LlamaDecodeStatus Status { get; }
}

/// <summary>
/// A llama.cpp context: KV cache, batched decoding with logits for chosen rows, and exact KV truncation.
/// Not thread-safe: one caller at a time (the speculative engine owns one per side).
/// </summary>
public sealed unsafe class LlamaContext : IDisposable
{
    private readonly LlamaBatch _scratch;
    private readonly nint _memory;
    private int _threads;

    internal LlamaContext(LlamaModel model, LlamaContextOptions options)
    {
        Model = model;
        var length = options.ContextLength > 0 ? options.ContextLength : model.TrainedContextLength;
        if (options.Threads < 1)
        {
            throw new ConfigSpecException($"threads must be at least 1 (got {options.Threads})");
        }

        var parameters = NativeMethods.llama_context_default_params();
        parameters.ContextLength = (uint)length;
        parameters.BatchSize = (uint)(options.BatchSize > 0 ? options.BatchSize : length);
        parameters.MicroBatchSize = parameters.BatchSize;
        parameters.MaxSequences = (uint)Math.Max(1, options.Sequences);
        parameters.Threads = options.Threads;
        parameters.BatchThreads = options.Threads;
        parameters.NoPerf = 1;
        var pointer = NativeMethods.llama_init_from_model(model.Handle, parameters);
        if (pointer == 0)
        {
            throw new ConfigSpecException($"llama.cpp could not create a context of {length} tokens for '{model.Path}': {LlamaRuntime.RecentNativeProblems()}");
        }

        Handle = new LlamaContextHandle(pointer, model.Handle);
        ContextLength = (int)NativeMethods.llama_n_ctx(Handle);
        BatchCapacity = (int)NativeMethods.llama_n_batch(Handle);
        SequenceCount = (int)parameters.MaxSequences;
        _memory = NativeMethods.llama_get_memory(Handle);
        _threads = options.Threads;
        _scratch = new LlamaBatch(BatchCapacity);
    }

    public LlamaModel Model { get; }

    public LlamaContextHandle Handle { get; }

    public int ContextLength { get; }

    public int BatchCapacity { get; }

    public int SequenceCount { get; }

    public int Threads
    {
        get => _threads;
        set
        {
            if (value < 1)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "threads must be at least 1");
            }

            NativeMethods.llama_set_n_threads(Handle, value, value);
            _threads = value;
        }
    }

    /// <summary>
    /// Decodes <paramref name="tokens"/> at positions <paramref name="startPosition"/>.. of one sequence.
    /// Rows from <paramref name="firstOutputRow"/> to the end get logits (0 = all rows, tokens.Length-1 = last only).
    /// </summary>
    public void Decode(ReadOnlySpan<int> tokens, int startPosition, int sequence = 0, int firstOutputRow = -1)
    {
        if (tokens.IsEmpty)
        {
            throw new ArgumentException("nothing to decode", nameof(tokens));
        }

        if (tokens.Length > BatchCapacity)
        {
            throw new ConfigSpecException($"batch of {tokens.Length} tokens exceeds the context's batch capacity {BatchCapacity}");
        }

        if (firstOutputRow < 0)
        {
            firstOutputRow = tokens.Length - 1;
        }

        _scratch.Clear();
        for (var i = 0; i < tokens.Length; i++)
        {
            _scratch.Add(tokens[i], startPosition + i, sequence, i >= firstOutputRow);
        }

        Decode(_scratch);
    }

    /// <summary>Decodes a prepared batch, which may mix sequences.</summary>
    public void Decode(LlamaBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0)
        {
            throw new ArgumentException("nothing to decode", nameof(batch));
        }

        if (batch.Count > BatchCapacity)
        {
            throw new ConfigSpecException($"batch of {batch.Count} tokens exceeds the context's batch capacity {BatchCapacity}");
        }

        for (var i = 0; i < batch.Count; i++)
        {
            var token = batch.TokenAt(i);
            Model.ThrowIfInvalidToken(token);
            var position = batch.PositionAt(i);
            if (position < 0 || position >= ContextLength)
            {
                throw new LlamaDecodeException(LlamaDecodeStatus.NoKvSlot,
                    $"position {position} is outside the context of {ContextLength} tokens (prompt plus generation too long)");
            }

            var sequence = batch.SequenceAt(i);
            if (sequence < 0 || sequence >= SequenceCount)
            {
                throw new ArgumentOutOfRangeException(nameof(batch), sequence, $"sequence id {sequence} is outside 0..{SequenceCount - 1}");
            }
        }

        var status = NativeMethods.llama_decode(Handle, batch.Native);
        if (status != 0)
        {
            throw new LlamaDecodeException((LlamaDecodeStatus)status,
                $"llama_decode failed with status {status} ({(LlamaDecodeStatus)status}) for a batch of {batch.Count} tokens: {LlamaRuntime.RecentNativeProblems()}");
        }
    }

    /// <summary>The logits of one batch row that was marked for output; valid until the next decode.</summary>
    public ReadOnlySpan<float> GetLogits(int row)
    {
        var pointer = NativeMethods.llama_get_logits_ith(Handle, row);
        if (pointer is null)
        {
            throw new InvalidOperationException($"batch row {row} has no logits (it was not marked for output)");
        }

        return new ReadOnlySpan<float>(pointer, Model.VocabularySize);
    }

    /// <summary>Drops the KV entries of <paramref name="sequence"/> at positions ≥ <paramref name="position"/>.</summary>
    public void TruncateSequence(int sequence, int position)
    {
        if (!NativeMethods.llama_memory_seq_rm(_memory, sequence, position, -1))
        {
            throw new ConfigSpecException($"llama.cpp could not truncate sequence {sequence} at position {position}");
        }
    }

    /// <summary>Highest position held for a sequence, or -1 when it is empty.</summary>
    public int MaxPosition(int sequence) => NativeMethods.llama_memory_seq_pos_max(_memory, sequence);

    public void ClearSequence(int sequence) => NativeMethods.llama_memory_seq_rm(_memory, sequence, -1, -1);

    public void Clear() => NativeMethods.llama_memory_clear(_memory, data: false);

    public void Dispose()
    {
        Handle.Dispose();
        _scratch.Dispose();
    }
}

/// <summary>A reusable token batch in native memory, filled with <see cref="Add"/>.</summary>
public sealed unsafe class LlamaBatch : IDisposable
{
    private LlamaBatchNative _native;
    private readonly int _capacity;

    public LlamaBatch(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
        _native = new LlamaBatchNative
        {
            Token = (nint)NativeMemory.Alloc((nuint)capacity, sizeof(int)),
            Position = (nint)NativeMemory.Alloc((nuint)capacity, sizeof(int)),
            SequenceIdCount = (nint)NativeMemory.Alloc((nuint)capacity, sizeof(int)),
            SequenceIds = (nint)NativeMemory.Alloc((nuint)capacity, (nuint)sizeof(nint)),
            Logits = (nint)NativeMemory.Alloc((nuint)capacity, sizeof(sbyte)),
        };
        var sequenceIds = (int**)_native.SequenceIds;
        var storage = (int*)NativeMemory.Alloc((nuint)capacity, sizeof(int));
        for (var i = 0; i < capacity; i++)
        {
            sequenceIds[i] = storage + i;
        }
    }

    public int Count => _native.TokenCount;

    internal LlamaBatchNative Native => _native;

    public void Clear() => _native.TokenCount = 0;

    public void Add(int token, int position, int sequence, bool wantLogits)
    {
        var i = _native.TokenCount;
        if (i >= _capacity)
        {
            throw new InvalidOperationException($"batch is full ({_capacity} tokens)");
        }

        ((int*)_native.Token)[i] = token;
        ((int*)_native.Position)[i] = position;
        ((int*)_native.SequenceIdCount)[i] = 1;
        ((int**)_native.SequenceIds)[i][0] = sequence;
        ((sbyte*)_native.Logits)[i] = wantLogits ? (sbyte)1 : (sbyte)0;
        _native.TokenCount = i + 1;
    }

    internal int TokenAt(int i) => ((int*)_native.Token)[i];

    internal int PositionAt(int i) => ((int*)_native.Position)[i];

    internal int SequenceAt(int i) => ((int**)_native.SequenceIds)[i][0];

    public void Dispose()
    {
        if (_native.Token == 0)
        {
            return;
        }

        NativeMemory.Free(((int**)_native.SequenceIds)[0]);
        NativeMemory.Free((void*)_native.Token);
        NativeMemory.Free((void*)_native.Position);
        NativeMemory.Free((void*)_native.SequenceIdCount);
        NativeMemory.Free((void*)_native.SequenceIds);
        NativeMemory.Free((void*)_native.Logits);
        _native = default;
    }
}
