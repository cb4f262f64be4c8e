namespace ConfigSpec.Interop.Llama;

/// <summary>A native llama.cpp sampler chain (greedy, or top-k → temperature → seeded draw).</summary>
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

    public static LlamaSampler CreateDistribution(float temperature, int topK, uint seed)
    {
        var sampler = new LlamaSampler(new LlamaSamplerHandle(NativeMethods.llama_sampler_chain_init(1)));
        if (topK > 0)
        {
            NativeMethods.llama_sampler_chain_add(sampler.Handle, NativeMethods.llama_sampler_init_top_k(topK));
        }

        NativeMethods.llama_sampler_chain_add(sampler.Handle, NativeMethods.llama_sampler_init_temp(temperature));
        NativeMethods.llama_sampler_chain_add(sampler.Handle, NativeMethods.llama_sampler_init_dist(seed));
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
