namespace ConfigSpec.Interop.Llama;

/// <summary>A native llama.cpp greedy sampler chain (sampling at a temperature is done in managed code, exactly, by the speculative core).</summary>
public sealed class LlamaSampler : IDisposable
{
    private LlamaSampler(LlamaSamplerHandle handle) => Handle = handle;

    public LlamaSamplerHandle Handle { get; }

    public static LlamaSampler CreateGreedy()
    {
        var sampler = new LlamaSampler(new LlamaSamplerHandle(NativeMethods.llama_sampler_chain_init(1)));
        NativeMethods.llama_sampler_chain_add(sampler.Handle, NativeMethods.llama_sampler_init_greedy());
        return sampler;
    }

    /// <summary>Samples from the logits of batch row <paramref name="row"/> of the context's last decode.</summary>
    public int Sample(LlamaContext context, int row)
    {
        ArgumentNullException.ThrowIfNull(context);
        return NativeMethods.llama_sampler_sample(Handle, context.Handle, row);
    }

    public void Dispose() => Handle.Dispose();
}
