using ConfigSpec.Interop;
using ConfigSpec.Speculative.Sampling;

namespace ConfigSpec.Transport.Protocol;

/// <summary>Message types of verification protocol version 1 (the fourth byte of every frame).</summary>
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
}

public abstract record ProtocolMessage
{
    public abstract MessageType Type { get; }
}

/// <summary>Board → verifier: start a session holding the prompt in the target's KV cache.</summary>
public sealed record OpenSessionMessage(
    string TargetId,
    string DeviceId,
    string VocabularyFingerprint,
    SamplingSettings Sampling,
    int[] PromptTokens) : ProtocolMessage
{
    public override MessageType Type => MessageType.OpenSession;
}

/// <summary>Verifier → board: the session and the replica that holds it (later rounds go to that replica).</summary>
public sealed record SessionOpenedMessage(string SessionId, string InstanceId, int VocabularySize, int ContextLength) : ProtocolMessage
{
    public override MessageType Type => MessageType.SessionOpened;
}

/// <summary>
/// Board → verifier: one round. <see cref="Round"/> counts from 1 per session; <see cref="Position"/> is the
/// number of committed tokens (prompt + generated) the board holds before this round, so both sides can
/// check they agree. Distributions are present for stochastic sessions.
/// </summary>
public sealed record VerifyMessage(
    string SessionId,
    int Round,
    int Position,
    int[] DraftTokens,
    SparseDistribution[]? DraftDistributions) : ProtocolMessage
{
    public override MessageType Type => MessageType.Verify;
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
