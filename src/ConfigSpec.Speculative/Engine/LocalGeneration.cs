using ConfigSpec.Interop.Llama;
using ConfigSpec.Speculative.Verification;

namespace ConfigSpec.Speculative.Engine;

/// <summary>Speculative generation with the target held in this process (lab runs, benchmarks, tests).</summary>
public static class LocalGeneration
{
    public static async Task<GenerationResult> RunAsync(
        LlamaModel target,
        LlamaModel? draft,
        IReadOnlyList<int> prompt,
        GenerationOptions options,
        AcceptanceRule? acceptanceRule = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        await using var verifier = CreateVerifier(target, options, acceptanceRule);
        var generator = new SpeculativeGenerator(verifier, options.DraftLength > 0 ? draft : null);
        return await generator.GenerateAsync(prompt, options, target, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A one-session verifier holding the target in this process, sized for <paramref name="options"/>.</summary>
    public static VerifierEngine CreateVerifier(LlamaModel target, GenerationOptions options, AcceptanceRule? acceptanceRule = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new VerifierEngine(target, new VerifierOptions
        {
            ContextLength = options.ContextLength,
            Threads = options.Threads,
            AcceptanceRule = acceptanceRule ?? SpeculativeVerification.RejectionSampling,
        });
    }
}
