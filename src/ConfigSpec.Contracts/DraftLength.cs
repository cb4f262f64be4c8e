using System.Globalization;

namespace ConfigSpec.Contracts;

/// <summary>
/// The draft length K, bounded once for every reader, setting, command and the engine: a block drafts
/// <see cref="Min"/>..<see cref="Max"/> tokens (the engine's batch and the verifier's limit).
/// </summary>
public static class DraftLength
{
    public const int Min = 1;
    public const int Max = 32;

    /// <summary>"1..32", for messages.</summary>
    public static string Range => string.Create(CultureInfo.InvariantCulture, $"{Min}..{Max}");

    public static bool IsValid(int k) => k is >= Min and <= Max;
}

/// <summary>
/// The pipeline depth D: how many blocks of one session may be unverified at once (1 = sequential rounds), bounded
/// once for every reader, setting, command and the engine.
/// </summary>
public static class PipelineDepth
{
    public const int Min = 1;
    public const int Max = 16;

    /// <summary>"1..16", for messages.</summary>
    public static string Range => string.Create(CultureInfo.InvariantCulture, $"{Min}..{Max}");

    public static bool IsValid(int d) => d is >= Min and <= Max;
}
