using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ConfigSpec.Interop.Llama;

/// <summary>
/// Every import from llama.cpp and ggml, against the C header of the pinned build.
/// Library names are logical ("llama", "ggml"); <see cref="LlamaLibraryResolver"/> maps them to files.
/// Thread safety: model loading, quantisation and backend initialisation are process-global and are
/// serialised by <see cref="LlamaRuntime"/>; one context must not be used by two threads at once.
/// </summary>
internal static unsafe partial class NativeMethods
{
    public const string Llama = "llama";
    public const string Ggml = "ggml";

    // ggml
    [LibraryImport(Ggml, EntryPoint = "ggml_backend_load_all_from_path", StringMarshalling = StringMarshalling.Utf8)]
    public static partial void ggml_backend_load_all_from_path(string directory);

    [LibraryImport(Ggml, EntryPoint = "ggml_backend_reg_count")]
    public static partial nuint ggml_backend_reg_count();

    [LibraryImport(Ggml, EntryPoint = "ggml_backend_dev_count")]
    public static partial nuint ggml_backend_dev_count();

    // llama: process
    [LibraryImport(Llama, EntryPoint = "llama_backend_init")]
    public static partial void llama_backend_init();

    [LibraryImport(Llama, EntryPoint = "llama_log_set")]
    public static partial void llama_log_set(delegate* unmanaged[Cdecl]<int, byte*, nint, void> callback, nint userData);

    [LibraryImport(Llama, EntryPoint = "llama_print_system_info")]
    public static partial byte* llama_print_system_info();

    [LibraryImport(Llama, EntryPoint = "llama_model_default_params")]
    public static partial LlamaModelParams llama_model_default_params();

    [LibraryImport(Llama, EntryPoint = "llama_context_default_params")]
    public static partial LlamaContextParams llama_context_default_params();

    [LibraryImport(Llama, EntryPoint = "llama_model_quantize_default_params")]
    public static partial LlamaModelQuantizeParams llama_model_quantize_default_params();

    // llama: model
    [LibraryImport(Llama, EntryPoint = "llama_model_load_from_file", StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint llama_model_load_from_file(string path, LlamaModelParams parameters);

    [LibraryImport(Llama, EntryPoint = "llama_model_free")]
    public static partial void llama_model_free(nint model);

    [LibraryImport(Llama, EntryPoint = "llama_model_get_vocab")]
    public static partial nint llama_model_get_vocab(LlamaModelHandle model);

    [LibraryImport(Llama, EntryPoint = "llama_model_n_ctx_train")]
    public static partial int llama_model_n_ctx_train(LlamaModelHandle model);

    [LibraryImport(Llama, EntryPoint = "llama_model_n_embd")]
    public static partial int llama_model_n_embd(LlamaModelHandle model);

    [LibraryImport(Llama, EntryPoint = "llama_model_n_layer")]
    public static partial int llama_model_n_layer(LlamaModelHandle model);

    [LibraryImport(Llama, EntryPoint = "llama_model_n_head")]
    public static partial int llama_model_n_head(LlamaModelHandle model);

    [LibraryImport(Llama, EntryPoint = "llama_model_n_head_kv")]
    public static partial int llama_model_n_head_kv(LlamaModelHandle model);

    [LibraryImport(Llama, EntryPoint = "llama_model_n_params")]
    public static partial ulong llama_model_n_params(LlamaModelHandle model);

    [LibraryImport(Llama, EntryPoint = "llama_model_size")]
    public static partial ulong llama_model_size(LlamaModelHandle model);

    [LibraryImport(Llama, EntryPoint = "llama_model_desc")]
    public static partial int llama_model_desc(LlamaModelHandle model, byte* buffer, nuint size);

    [LibraryImport(Llama, EntryPoint = "llama_model_meta_val_str", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int llama_model_meta_val_str(LlamaModelHandle model, string key, byte* buffer, nuint size);

    [LibraryImport(Llama, EntryPoint = "llama_model_quantize", StringMarshalling = StringMarshalling.Utf8)]
    public static partial uint llama_model_quantize(string input, string output, LlamaModelQuantizeParams* parameters);

    // llama: vocabulary (the vocab pointer is owned by the model)
    [LibraryImport(Llama, EntryPoint = "llama_vocab_n_tokens")]
    public static partial int llama_vocab_n_tokens(nint vocab);

    [LibraryImport(Llama, EntryPoint = "llama_vocab_type")]
    public static partial int llama_vocab_type(nint vocab);

    [LibraryImport(Llama, EntryPoint = "llama_vocab_bos")]
    public static partial int llama_vocab_bos(nint vocab);

    [LibraryImport(Llama, EntryPoint = "llama_vocab_eos")]
    public static partial int llama_vocab_eos(nint vocab);

    [LibraryImport(Llama, EntryPoint = "llama_vocab_get_add_bos")]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool llama_vocab_get_add_bos(nint vocab);

    [LibraryImport(Llama, EntryPoint = "llama_vocab_is_eog")]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool llama_vocab_is_eog(nint vocab, int token);

    [LibraryImport(Llama, EntryPoint = "llama_vocab_get_text")]
    public static partial byte* llama_vocab_get_text(nint vocab, int token);

    [LibraryImport(Llama, EntryPoint = "llama_vocab_get_score")]
    public static partial float llama_vocab_get_score(nint vocab, int token);

    [LibraryImport(Llama, EntryPoint = "llama_vocab_get_attr")]
    public static partial int llama_vocab_get_attr(nint vocab, int token);

    [LibraryImport(Llama, EntryPoint = "llama_tokenize")]
    public static partial int llama_tokenize(nint vocab, byte* text, int textLength, int* tokens, int maxTokens,
        [MarshalAs(UnmanagedType.U1)] bool addSpecial, [MarshalAs(UnmanagedType.U1)] bool parseSpecial);

    [LibraryImport(Llama, EntryPoint = "llama_token_to_piece")]
    public static partial int llama_token_to_piece(nint vocab, int token, byte* buffer, int length, int leftStrip,
        [MarshalAs(UnmanagedType.U1)] bool special);

    // llama: context
    [LibraryImport(Llama, EntryPoint = "llama_init_from_model")]
    public static partial nint llama_init_from_model(LlamaModelHandle model, LlamaContextParams parameters);

    [LibraryImport(Llama, EntryPoint = "llama_free")]
    public static partial void llama_free(nint context);

    [LibraryImport(Llama, EntryPoint = "llama_n_ctx")]
    public static partial uint llama_n_ctx(LlamaContextHandle context);

    [LibraryImport(Llama, EntryPoint = "llama_n_batch")]
    public static partial uint llama_n_batch(LlamaContextHandle context);

    [LibraryImport(Llama, EntryPoint = "llama_set_n_threads")]
    public static partial void llama_set_n_threads(LlamaContextHandle context, int threads, int batchThreads);

    [LibraryImport(Llama, EntryPoint = "llama_decode")]
    public static partial int llama_decode(LlamaContextHandle context, LlamaBatchNative batch);

    [LibraryImport(Llama, EntryPoint = "llama_get_logits_ith")]
    public static partial float* llama_get_logits_ith(LlamaContextHandle context, int index);

    [LibraryImport(Llama, EntryPoint = "llama_get_memory")]
    public static partial nint llama_get_memory(LlamaContextHandle context);

    [LibraryImport(Llama, EntryPoint = "llama_memory_seq_rm")]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool llama_memory_seq_rm(nint memory, int sequence, int p0, int p1);

    [LibraryImport(Llama, EntryPoint = "llama_memory_seq_pos_max")]
    public static partial int llama_memory_seq_pos_max(nint memory, int sequence);

    [LibraryImport(Llama, EntryPoint = "llama_memory_clear")]
    public static partial void llama_memory_clear(nint memory, [MarshalAs(UnmanagedType.U1)] bool data);

    // llama: samplers
    [LibraryImport(Llama, EntryPoint = "llama_sampler_chain_init")]
    public static partial nint llama_sampler_chain_init(byte noPerf);

    [LibraryImport(Llama, EntryPoint = "llama_sampler_chain_add")]
    public static partial void llama_sampler_chain_add(LlamaSamplerHandle chain, nint sampler);

    [LibraryImport(Llama, EntryPoint = "llama_sampler_init_greedy")]
    public static partial nint llama_sampler_init_greedy();

    [LibraryImport(Llama, EntryPoint = "llama_sampler_sample")]
    public static partial int llama_sampler_sample(LlamaSamplerHandle sampler, LlamaContextHandle context, int index);

    [LibraryImport(Llama, EntryPoint = "llama_sampler_free")]
    public static partial void llama_sampler_free(nint sampler);
}
