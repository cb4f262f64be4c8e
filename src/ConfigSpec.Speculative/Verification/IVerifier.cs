using ConfigSpec.Interop;
using ConfigSpec.Speculative.Sampling;

namespace ConfigSpec.Speculative.Verification;

/// <summary>Opens a verification session: the prompt and how to sample.</summary>
/// <param name="PromptTokens">Prompt token ids, BOS included when the model uses one.</param>
/// <param name="Sampling">Greedy or stochastic settings; the seed drives the verifier's own random stream.</param>
/// <param name="DraftVocabularyFingerprint">The draft model's vocabulary fingerprint; null for target-only decoding.</param>
/// <param name="DraftModelName">A name for the draft in error messages.</param>
public sealed record OpenSessionRequest(
    IReadOnlyList<int> PromptTokens,
    SamplingSettings Sampling,
    string? DraftVocabularyFingerprint,
    string? DraftModelName = null);

public sealed record SessionInfo(string SessionId, int VocabularySize, int ContextLength, string VocabularyFingerprint);

/// <summary>A block of draft tokens; for stochastic sessions each carries the draft's sparse distribution.</summary>
public sealed record VerifyRequest(
    string SessionId,
    IReadOnlyList<int> DraftTokens,
    IReadOnlyList<SparseDistribution>? DraftDistributions = null);

/// <summary>
/// Outcome of one verification: how many drafts were accepted (a prefix), and the target's own next token
/// (the correction after a rejection, or the bonus token when all were accepted).
/// </summary>
public sealed record VerifyResult(int AcceptedCount, int NextToken, double TargetSeconds);

/// <summary>
/// The target side of speculative decoding, independent of transport: an in-process implementation holds
/// the target model; a remote one reaches a verifier service. Sessions keep their KV cache between calls.
/// </summary>
public interface IVerifier : IAsyncDisposable
{
    ValueTask<SessionInfo> OpenAsync(OpenSessionRequest request, CancellationToken cancellationToken = default);

    ValueTask<VerifyResult> VerifyAsync(VerifyRequest request, CancellationToken cancellationToken = default);

    ValueTask CloseAsync(string sessionId, CancellationToken cancellationToken = default);
}

/// <summary>A verification request that cannot be honoured (unknown session, bad token, bad distribution).</summary>
public sealed class VerificationException : ConfigSpecException
{
    public VerificationException() { }

    public VerificationException(string message) : base(message) { }

    public VerificationException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>The draft's vocabulary differs from the target's, so its token ids mean different text.</summary>
public sealed class VocabularyMismatchException : ConfigSpecException
{
    public VocabularyMismatchException() { }

    public VocabularyMismatchException(string message) : base(message) { }

    public VocabularyMismatchException(string message, Exception innerException) : base(message, innerException) { }
}
