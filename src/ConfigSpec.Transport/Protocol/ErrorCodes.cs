using ConfigSpec.Speculative.Verification;

namespace ConfigSpec.Transport.Protocol;

/// <summary>The one correspondence between the verifier's refusals and the protocol's error codes, used both ways.</summary>
internal static class ErrorCodes
{
    private static readonly (VerificationErrorCode Verification, ProtocolErrorCode Protocol)[] Pairs =
    [
        (VerificationErrorCode.UnknownSession, ProtocolErrorCode.UnknownSession),
        (VerificationErrorCode.SessionEvicted, ProtocolErrorCode.SessionEvicted),
        (VerificationErrorCode.BadRound, ProtocolErrorCode.BadRound),
        (VerificationErrorCode.InvalidToken, ProtocolErrorCode.InvalidToken),
        (VerificationErrorCode.DraftTooLong, ProtocolErrorCode.DraftTooLong),
        (VerificationErrorCode.ContextFull, ProtocolErrorCode.ContextFull),
        (VerificationErrorCode.ShuttingDown, ProtocolErrorCode.ShuttingDown),
        (VerificationErrorCode.Superseded, ProtocolErrorCode.Superseded),
    ];

    public static ProtocolErrorCode ToProtocol(VerificationErrorCode code) =>
        Pairs.FirstOrDefault(p => p.Verification == code) is { Protocol: not 0 } pair ? pair.Protocol : ProtocolErrorCode.InvalidRequest;

    /// <summary>The code as a metric label: <c>session_evicted</c>, <c>malformed</c>, …</summary>
    public static string Name(ProtocolErrorCode code) => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(code.ToString());

    public static VerificationErrorCode ToVerification(ProtocolErrorCode code) =>
        Pairs.FirstOrDefault(p => p.Protocol == code) is { Protocol: not 0 } pair ? pair.Verification : VerificationErrorCode.InvalidRequest;
}
