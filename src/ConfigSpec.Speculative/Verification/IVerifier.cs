using ConfigSpec.Interop;
using ConfigSpec.Speculative.Sampling;

namespace ConfigSpec.Speculative.Verification;

/// <summary>Opens a verification session: the prompt and how to sample.</summary>
/// <param name="PromptTokens">Prompt token ids, BOS included when the model uses one.</param>
/// <param name="Sampling">Greedy or stochastic settings; the seed drives the verifier's own random stream.</param>
/// <param name="DraftVocabularyFingerprint">The draft model's vocabulary fingerprint; null for target-only decoding.</param>
/// <param name="DraftModelName">A name for the draft in error messages.</param>
/// <param name="DeviceId">The board the session belongs to, for per-board accounting.</param>
/// <param name="Pipeline">Blocks the board wants unverified at once (D); 1 is sequential speculation.</param>
public sealed record OpenSessionRequest(
    IReadOnlyList<int> PromptTokens,
    SamplingSettings Sampling,
    string? DraftVocabularyFingerprint,
    string? DraftModelName = null,
    string DeviceId = "local",
    int Pipeline = 1);

/// <param name="Pipeline">Blocks the verifier lets this session have unverified at once (at most what was asked; 1 when
/// the verifier does not pipeline).</param>
public sealed record SessionInfo(string SessionId, int VocabularySize, int ContextLength, string VocabularyFingerprint, string InstanceId = "local", int Pipeline = 1);

/// <summary>
/// A block of draft tokens; for stochastic sessions each carries the draft's sparse distribution.
/// <paramref name="Round"/> (from 1) makes retries idempotent: the last round repeated returns its cached result,
/// any other gap is refused. <paramref name="Position"/> is the committed length the caller holds. Zero and -1
/// leave them unchecked.
/// <para>Pipelined sessions (<see cref="Base"/> ≥ 0) name the round this block follows: a <see cref="Chained"/> block
/// continues the drafts of round <see cref="Base"/> on the assumption that all of them are accepted (checked as if the two
/// were one block, no token of the target's between them; dropped when <see cref="Base"/> was cut); otherwise it follows
/// the verdict of round <see cref="Base"/>. With <see cref="ChainFollows"/> a chained block will follow this one, so a
/// fully accepted block gets no token (<see cref="VerifyResult.NextToken"/> -1). Rounds only grow; a board skips the numbers
/// of blocks it discarded.</para>
/// </summary>
public sealed record VerifyRequest(
    string SessionId,
    IReadOnlyList<int> DraftTokens,
    IReadOnlyList<SparseDistribution>? DraftDistributions = null,
    int Round = 0,
    int Position = -1,
    int Base = -1,
    bool Chained = false,
    bool ChainFollows = false)
{
    public bool Pipelined => Base >= 0;
}

/// <summary>
/// Outcome of one verification: how many drafts were accepted (a prefix), and the target's own next token
/// (the correction after a rejection, or the bonus token when all were accepted; -1 when all were accepted and a chained
/// block follows).
/// </summary>
/// <param name="TargetSeconds">The target's compute time for the decode this round took part in.</param>
/// <param name="QueueSeconds">Time the request waited for the verifier (batch window, other work).</param>
public sealed record VerifyResult(int AcceptedCount, int NextToken, double TargetSeconds, double QueueSeconds = 0);

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

/// <summary>Why a verification request was refused.</summary>
public enum VerificationErrorCode
{
    InvalidRequest,
    UnknownSession,
    SessionEvicted,
    BadRound,
    InvalidToken,
    DraftTooLong,
    ContextFull,
    ShuttingDown,

    /// <summary>A chained block whose base was cut (or a block older than one already verified): dropped unverified.</summary>
    Superseded,
}

/// <summary>A verification request that cannot be honoured (unknown session, bad token, bad distribution).</summary>
public sealed class VerificationException : ConfigSpecException
{
    public VerificationException() { }

    public VerificationException(string message) : base(message) { }

    public VerificationException(string message, Exception innerException) : base(message, innerException) { }

    public VerificationException(VerificationErrorCode code, string message) : base(message) => Code = code;

    public VerificationErrorCode Code { get; } = VerificationErrorCode.InvalidRequest;
}

/// <summary>The draft's vocabulary differs from the target's, so its token ids mean different text.</summary>
public sealed class VocabularyMismatchException : ConfigSpecException
{
    public VocabularyMismatchException() { }

    public VocabularyMismatchException(string message) : base(message) { }

    public VocabularyMismatchException(string message, Exception innerException) : base(message, innerException) { }
}
