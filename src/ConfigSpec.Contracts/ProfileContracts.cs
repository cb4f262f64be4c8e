using System.Text.Json.Serialization;

namespace ConfigSpec.Contracts;

/// <summary>
/// The profile document (<c>configspec.profile</c>, version 1): a board's identity, how it was measured, and the
/// measurements of each draft configuration. Written by the profiler, read by selection, the daemon and the aggregator.
/// </summary>
public sealed record ProfileDocument(
    string Schema, int Version, DateTimeOffset CreatedUtc, DateTimeOffset UpdatedUtc, ProfileDevice Device, ProfileSoftware Software, ProfilePower Power,
    ProfileVerifier Verifier, ProfileRunSettings Settings, IReadOnlyList<ProfileConfiguration> Configurations) : IContract
{
    public const string SchemaName = "configspec.profile";

    public void Validate()
    {
        Check.Within("device", Check.Present(Device, "device").Validate);
        Check.Within("settings", Check.Present(Settings, "settings").Validate);
        for (var i = 0; i < Check.Present(Configurations, "configurations").Count; i++)
        {
            Check.Within($"configurations[{i}]", Check.Present(Configurations[i], $"configurations[{i}]").Validate);
        }
    }
}

public sealed record ProfileDevice(string Id, string Hostname, string Board, string Os, string Arch, int Cores) : IContract
{
    public void Validate()
    {
        Check.Text(Id, "id");
        Check.AtLeast(Cores, 1, "cores");
    }
}

public sealed record ProfileSoftware(string Configspec, string LlamaCpp, string Runtime);

public sealed record ProfilePower(string Source, string Scope, bool Estimated, [property: JsonPropertyName("idle_w")] double? IdleWatts);

public sealed record ProfileVerifier(string Kind, string Target, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Broker = null);

/// <summary>How the profile was taken: K_max, the stopping rule, the round budget and the prompts.</summary>
public sealed record ProfileRunSettings(int KMax, double Tolerance, double Confidence, int MinRounds, int MaxRounds, int TokensPerPrompt, string PromptSource, int PromptCount) : IContract
{
    public void Validate()
    {
        Check.DraftLength(KMax, "k_max");
        Check.AtLeast(MinRounds, 0, "min_rounds");
        Check.AtLeast(MaxRounds, 0, "max_rounds");
    }
}

/// <summary>A mean with its confidence interval (null ends: not enough samples for one).</summary>
public sealed record ProfileEstimate(double Mean, double? CiLow, double? CiHigh, int N);

/// <summary>Round timing for one K, seconds.</summary>
public sealed record ProfileTiming(
    int K, int Rounds, [property: JsonPropertyName("round_trip_median_s")] double RoundTripMedian, [property: JsonPropertyName("round_trip_p95_s")] double RoundTripP95,
    [property: JsonPropertyName("server_median_s")] double ServerMedian, [property: JsonPropertyName("network_median_s")] double NetworkMedian,
    [property: JsonPropertyName("wait_mean_s")] double WaitMean, [property: JsonPropertyName("draft_mean_s")] double DraftMean);

/// <summary>
/// The chain pass: pipelined blocks of K with up to D in flight; acceptance by chain position (drafts since the last
/// target token, across chained blocks) out to K·D, and the round trip of blocks sent chained to one still in flight.
/// </summary>
public sealed record ProfileChain(
    int K, int Depth, int Blocks, IReadOnlyList<double?> AcceptanceByPosition, IReadOnlyList<long> ReachedByPosition,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ProfileTiming? ChainedVerify = null) : IContract
{
    public void Validate()
    {
        Check.DraftLength(K, "chain.k");
        Check.PipelineDepth(Depth, "chain.depth");
        Check.Present(AcceptanceByPosition, "chain.acceptance_by_position");
        Check.Present(ReachedByPosition, "chain.reached_by_position");
        if (AcceptanceByPosition.Count != ReachedByPosition.Count || AcceptanceByPosition.Any(a => a is { } v && !(v is >= 0 and <= 1)))
        {
            throw Check.Invalid("chain.acceptance_by_position", "one rate in 0..1 (or null) per entry of chain.reached_by_position");
        }
    }
}

public sealed record ProfileDraftPower([property: JsonPropertyName("draft_w")] double DraftWatts, double Joules, double Seconds, int Windows);

/// <summary>The measurements of one draft model (one quantisation) at K_max.</summary>
public sealed record ProfileConfiguration(
    string Draft, string Quant, string File, long FileBytes, string Sha256, [property: JsonPropertyName("load_s")] double LoadSeconds,
    [property: JsonPropertyName("resident_mb")] double ResidentMegabytes, int Rounds, int Tokens, int Prompts,
    [property: JsonPropertyName("draft_tokens_per_s")] ProfileEstimate DraftTokensPerSecond, ProfileEstimate MeanAccepted,
    [property: JsonPropertyName("draft_overhead_s")] double DraftOverheadSeconds, [property: JsonPropertyName("draft_s_by_k")] IReadOnlyList<double> DraftSecondsByK,
    bool Converged, IReadOnlyList<double?> AcceptanceByPosition, IReadOnlyList<long> ReachedByPosition, ProfileTiming Verify, IReadOnlyList<ProfileTiming> TimingByK,
    ProfileDraftPower? Power, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ProfileChain? Chain = null) : IContract
{
    public void Validate()
    {
        Check.Text(Draft, "draft");
        Check.Text(Sha256, "sha256");
        Check.Present(DraftTokensPerSecond, "draft_tokens_per_s");
        Check.Present(MeanAccepted, "mean_accepted");
        Check.Present(Verify, "verify");
        Chain?.Validate();
    }
}
