using ConfigSpec.Profiling.Measurement;

namespace ConfigSpec.Profiling.Profiles;

/// <summary>The board a profile was measured on.</summary>
public sealed record DeviceInfo(string Id, string Hostname, string Board, string Os, string Architecture, int Cores);

/// <summary>Versions of the software that measured.</summary>
public sealed record SoftwareInfo(string ConfigSpec, string LlamaCpp, string Runtime);

/// <summary>Where power figures came from.</summary>
public sealed record PowerInfo(string Source, string Scope, bool Estimated, double? IdleWatts);

/// <summary>The verifier measured against.</summary>
public sealed record VerifierInfo(string Kind, string Target, string? Broker);

/// <summary>How a profile was taken.</summary>
public sealed record ProfileSettings(
    int KMax,
    double Tolerance,
    double Confidence,
    int MinRounds,
    int MaxRounds,
    int TokensPerPrompt,
    string PromptSource,
    int PromptCount);

/// <summary>Verification round time for one block length, split by the server's reported time.</summary>
public sealed record VerifyTiming(int K, int Rounds, double RoundTripMedian, double RoundTripP95, double ServerMedian, double WaitMedian)
{
    /// <summary>Round trip less the server's own time: network, broker and (de)serialisation.</summary>
    public double NetworkMedian => Math.Max(0, RoundTripMedian - ServerMedian);
}

/// <summary>Power while drafting one configuration.</summary>
public sealed record DraftPower(double DraftWatts, double Joules, double Seconds, int Windows);

/// <summary>The measurements of one draft model (one quantisation) at K_max.</summary>
public sealed record ConfigurationProfile
{
    public required string Draft { get; init; }

    public required string Quant { get; init; }

    public required string File { get; init; }

    public required long FileBytes { get; init; }

    public required string Sha256 { get; init; }

    public required double LoadSeconds { get; init; }

    /// <summary>Resident memory the draft added to the process (model pages touched, context, buffers).</summary>
    public required double ResidentMegabytes { get; init; }

    public required int Rounds { get; init; }

    public required int Tokens { get; init; }

    public required int Prompts { get; init; }

    public required Estimate DraftTokensPerSecond { get; init; }

    public required Estimate MeanAccepted { get; init; }

    public required bool Converged { get; init; }

    /// <summary>α_1..α_Kmax; null where no block reached the position.</summary>
    public required IReadOnlyList<double?> AcceptanceByPosition { get; init; }

    public required IReadOnlyList<long> ReachedByPosition { get; init; }

    public required VerifyTiming Verify { get; init; }

    public DraftPower? Power { get; init; }

    /// <summary>Key that identifies the configuration across runs (for --resume).</summary>
    public string Key => $"{Draft}|{Quant}|{Sha256}";
}

/// <summary>One board's profile: identity, how it was measured, and per-configuration measurements.</summary>
public sealed record BoardProfile
{
    public const string Schema = "configspec.profile";
    public const int CurrentVersion = 1;

    public int Version { get; init; } = CurrentVersion;

    public required DateTimeOffset Created { get; init; }

    public required DateTimeOffset Updated { get; init; }

    public required DeviceInfo Device { get; init; }

    public required SoftwareInfo Software { get; init; }

    public required PowerInfo Power { get; init; }

    public required VerifierInfo Verifier { get; init; }

    public required ProfileSettings Settings { get; init; }

    /// <summary>Verification round time by block length 1..K_max, measured once for the board and verifier.</summary>
    public IReadOnlyList<VerifyTiming> VerificationByK { get; init; } = [];

    public IReadOnlyList<ConfigurationProfile> Configurations { get; init; } = [];

    /// <summary>
    /// The time a round of <paramref name="k"/> spends not drafting (verification round trip and bookkeeping):
    /// the configuration's own measurement at K_max, moved by how the board's by-K table changes from K_max to K.
    /// </summary>
    public double WaitSeconds(ConfigurationProfile configuration, int k)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var own = configuration.Verify.WaitMedian;
        var atK = VerificationByK.FirstOrDefault(v => v.K == k);
        var atOwn = VerificationByK.FirstOrDefault(v => v.K == configuration.Verify.K);
        return atK is null || atOwn is null ? own : Math.Max(0, own + atK.WaitMedian - atOwn.WaitMedian);
    }
}
