using ConfigSpec.Profiling.Measurement;

namespace ConfigSpec.Profiling.Profiles;

/// <summary>The board a profile was measured on.</summary>
public sealed record DeviceInfo(string Id, string Hostname, string Board, string Os, string Architecture, int Cores)
{
    /// <summary>"pi5-lab-1, Raspberry Pi 5 Model B Rev 1.0"; without a known board model, the machine's architecture and cores.</summary>
    public override string ToString() =>
        string.IsNullOrWhiteSpace(Board) || Board.Equals("unknown", StringComparison.OrdinalIgnoreCase)
            ? $"{Id}, {Architecture} machine, {Cores} cores"
            : $"{Id}, {Board}";
}

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

/// <summary>
/// Round timing for one block length K: the verification round trip (median, p95, and the server's own part), and
/// the means that decide goodput — drafting a block, and waiting for its verification (round trip plus bookkeeping).
/// </summary>
public sealed record VerifyTiming(int K, int Rounds, double RoundTripMedian, double RoundTripP95, double ServerMedian, double WaitMean, double DraftMean)
{
    /// <summary>Round trip less the server's own time: network, broker and (de)serialisation.</summary>
    public double NetworkMedian => Math.Max(0, RoundTripMedian - ServerMedian);
}

/// <summary>
/// What pipelined rounds were measured to do (the profile's chain pass): blocks of <paramref name="K"/> with up to
/// <paramref name="Depth"/> in flight, acceptance by chain position (drafts since the last target token, across chained
/// blocks, out to K·D: the positions a pipelined episode reaches past K_max), and the round trip of the blocks that were
/// sent chained to one still in flight (they can queue behind it at the verifier).
/// </summary>
public sealed record ChainProfile(int K, int Depth, int Blocks, IReadOnlyList<double?> AcceptanceByPosition, IReadOnlyList<long> ReachedByPosition, VerifyTiming? ChainedVerify);

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

    /// <summary>
    /// Per-block drafting cost that does not grow with K: feeding the verifier's token back to the draft before the
    /// first proposal. A block of K drafts takes <c>DraftOverheadSeconds + K / v_d</c>.
    /// </summary>
    public double DraftOverheadSeconds => DraftSecondsByK.Count == 0 ? 0 : Math.Max(0, DraftSecondsByK[0] - (1 / DraftTokensPerSecond.Mean));

    /// <summary>Mean time to draft a block of 1..K_max, measured inside the K_max blocks.</summary>
    public IReadOnlyList<double> DraftSecondsByK { get; init; } = [];

    /// <summary>Rounds of every K in 1..K_max, timed after the acceptance rounds (empty when skipped).</summary>
    public IReadOnlyList<VerifyTiming> TimingByK { get; init; } = [];

    /// <summary>Seconds to draft a block of <paramref name="k"/>: measured at that K, else t_0 + K / v_d.</summary>
    public double DraftSeconds(int k) => k == 0 ? 0 : TimingByK.FirstOrDefault(t => t.K == k)?.DraftMean ?? (DraftOverheadSeconds + (k / DraftTokensPerSecond.Mean));

    /// <summary>Seconds a round of <paramref name="k"/> waits for verification: measured at that K, else at K_max.</summary>
    public double WaitSeconds(int k) => TimingByK.FirstOrDefault(t => t.K == k)?.WaitMean ?? Verify.WaitMean;

    public required bool Converged { get; init; }

    /// <summary>α_1..α_Kmax; null where no block reached the position.</summary>
    public required IReadOnlyList<double?> AcceptanceByPosition { get; init; }

    public required IReadOnlyList<long> ReachedByPosition { get; init; }

    public required VerifyTiming Verify { get; init; }

    public DraftPower? Power { get; init; }

    /// <summary>The chain pass (null: not taken, or the verifier allowed no blocks in flight).</summary>
    public ChainProfile? Chain { get; init; }

    /// <summary>
    /// Acceptance past K_max as the chain pass measured it: every draft at a chain position after K_max, pooled (their
    /// accepted over their reached), with the number of such drafts; null without a chain pass or with none reached.
    /// </summary>
    public (double Rate, long Drafts)? ChainAcceptancePastKMax() =>
        Chain is { } chain ? Pool(chain.AcceptanceByPosition, chain.ReachedByPosition, AcceptanceByPosition.Count) : null;

    /// <summary>
    /// Acceptance per draft over positions <paramref name="from"/>+1 onwards, each position's rate weighted by how many
    /// drafts reached it, with that number of drafts; null when none reached them.
    /// </summary>
    public static (double Rate, long Drafts)? Pool(IReadOnlyList<double?> alpha, IReadOnlyList<long> reached, int from = 0)
    {
        ArgumentNullException.ThrowIfNull(alpha);
        ArgumentNullException.ThrowIfNull(reached);
        double accepted = 0;
        long drafts = 0;
        for (var i = from; i < Math.Min(alpha.Count, reached.Count); i++)
        {
            if (alpha[i] is { } a)
            {
                accepted += a * reached[i];
                drafts += reached[i];
            }
        }

        return drafts > 0 ? (accepted / drafts, drafts) : null;
    }
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

    public IReadOnlyList<ConfigurationProfile> Configurations { get; init; } = [];

}
