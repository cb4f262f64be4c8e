using ConfigSpec.Interop;
using ConfigSpec.Speculative.Sampling;

namespace ConfigSpec.Transport.Protocol;

/// <summary>Message types of the verification protocol (the fourth byte of every frame); the same in versions 1 and 2.</summary>
public enum MessageType : byte
{
    OpenSession = 1,
    SessionOpened = 2,
    Verify = 3,
    VerifyResult = 4,
    Error = 5,
    CloseSession = 6,
}

/// <summary>Error codes carried by <see cref="ErrorMessage"/>.</summary>
public enum ProtocolErrorCode
{
    Malformed = 1,
    UnsupportedVersion = 2,
    Oversize = 3,
    UnknownTarget = 4,
    VocabularyMismatch = 5,
    UnknownSession = 6,
    SessionEvicted = 7,
    BadRound = 8,
    InvalidToken = 9,
    DraftTooLong = 10,
    ContextFull = 11,
    InvalidRequest = 12,
    ShuttingDown = 13,
    Internal = 14,

    /// <summary>Version 2: a pipelined block dropped unverified (the block it continues was cut).</summary>
    Superseded = 15,
}

public abstract record ProtocolMessage
{
    public abstract MessageType Type { get; }
}

/// <summary>
/// Board → verifier: start a session holding the prompt in the target's KV cache. <see cref="Pipeline"/> above 1 asks for
/// pipelined rounds (version 2 frame); a version 1 frame means 1.
/// </summary>
public sealed record OpenSessionMessage(
    string TargetId,
    string DeviceId,
    string VocabularyFingerprint,
    SamplingSettings Sampling,
    int[] PromptTokens,
    int Pipeline = 1) : ProtocolMessage
{
    public override MessageType Type => MessageType.OpenSession;
}

/// <summary>
/// Verifier → board: the session and the replica that holds it (later rounds go to that replica), and the blocks in flight it
/// grants (version 2 frame when above 1).
/// </summary>
public sealed record SessionOpenedMessage(string SessionId, string InstanceId, int VocabularySize, int ContextLength, int Pipeline = 1) : ProtocolMessage
{
    public override MessageType Type => MessageType.SessionOpened;
}

/// <summary>
/// Board → verifier: one round. <see cref="Round"/> counts from 1 per session; <see cref="Position"/> is the
/// number of committed tokens (prompt + generated) the board holds before this round, so both sides can
/// check they agree. Distributions are present for stochastic sessions. A pipelined round (version 2 frame, <see cref="Base"/>
/// ≥ 0) names the round it follows, whether it is chained to that round's drafts, and whether a chained block follows it.
/// </summary>
public sealed record VerifyMessage(
    string SessionId,
    int Round,
    int Position,
    int[] DraftTokens,
    SparseDistribution[]? DraftDistributions,
    int Base = -1,
    bool Chained = false,
    bool ChainFollows = false) : ProtocolMessage
{
    public override MessageType Type => MessageType.Verify;

    public bool Pipelined => Base >= 0;
}

/// <summary>Verifier → board: the outcome of a round and where the verifier's time went.</summary>
public sealed record VerifyResultMessage(string SessionId, int Round, int Accepted, int NextToken, long QueueMicros, long ComputeMicros) : ProtocolMessage
{
    public override MessageType Type => MessageType.VerifyResult;
}

public sealed record ErrorMessage(ProtocolErrorCode Code, string Message, string SessionId = "") : ProtocolMessage
{
    public override MessageType Type => MessageType.Error;
}

public sealed record CloseSessionMessage(string SessionId) : ProtocolMessage
{
    public override MessageType Type => MessageType.CloseSession;
}

/// <summary>A payload that cannot be decoded; <see cref="Code"/> says which way it is wrong.</summary>
public sealed class ProtocolException : ConfigSpecException
{
    public ProtocolException() { }

    public ProtocolException(string message) : base(message) { }

    public ProtocolException(string message, Exception innerException) : base(message, innerException) { }

    public ProtocolException(ProtocolErrorCode code, string message) : base(message) => Code = code;

    public ProtocolErrorCode Code { get; } = ProtocolErrorCode.Malformed;
}
