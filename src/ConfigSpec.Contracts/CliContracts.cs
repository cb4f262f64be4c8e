using System.Text.Json.Serialization;

namespace ConfigSpec.Contracts;

// What configspec-edge's commands print with --json: contract records like the services' messages (the README's
// command sections name their members).

/// <summary>A power source <c>power --detect</c> and <c>system</c> looked for: found or absent, and why.</summary>
public sealed record PowerSourceFound(string Spec, bool Available, string Detail);

/// <summary><c>configspec-edge system --json</c>: what this board is and what the program found on it.</summary>
public sealed record SystemReport(
    string Version, string Runtime, bool NativeAot, string Arch, string CpuModel, int CpuCount, IReadOnlyList<string> CpuFeatures, string Glibc, string Kernel,
    string Os, string Board, double? MemoryMb, string? LlamaDir, string? LlamaBuild, string? LlamaCpuVariant, IReadOnlyList<string> LlamaBackends,
    string? LlamaSystemInfo, IReadOnlyList<PowerSourceFound> PowerSources, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? LlamaError = null) : IContract
{
    public void Validate() => Check.Text(Version, "version");
}

/// <summary>Watts over a report: the (time-weighted) mean and the extremes.</summary>
public sealed record WattsRange(double Mean, double Min, double Max);

/// <summary>One rail's watts over a report.</summary>
public sealed record RailWatts(string Rail, double Mean, double Min, double Max);

/// <summary><c>configspec-edge power --json</c>: a live measurement, or a recording read on its own time line (<see cref="Recorded"/>).</summary>
public sealed record PowerReport(
    string Source, string Scope, bool Estimated, double DurationS, double IntervalMs, int Samples, double AchievedHz, int Failures, double EnergyJ, bool Complete,
    WattsRange TotalW, IReadOnlyList<RailWatts> Rails, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? Recorded = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? CpuPercent = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? IncompleteReason = null) : IContract
{
    public void Validate() => Check.NonNegative(EnergyJ, "energy_j");
}

/// <summary>The target-only run <c>generate --compare</c> measured beside the speculative one.</summary>
public sealed record TargetOnlyRun([property: JsonPropertyName("wall_s")] double WallSeconds, double TokensPerS, double Speedup, bool Identical);

/// <summary>The drafting energy charged to one generation.</summary>
public sealed record GenerationEnergy(
    string? Source, bool Estimated, double DraftJ, double DraftS, double DraftMeanW, double JPerDraftedToken, double JPerGeneratedToken, int Windows, int SparseWindows,
    int WindowsOverGaps, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? IdleW = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? DraftAboveIdleJ = null);

/// <summary><c>configspec-edge generate --json</c>.</summary>
/// <param name="TokensPerS">Tokens over the whole wall time, the session's opening included.</param>
/// <param name="GoodputTokensPerS">Tokens over the span from the first block's drafting to the last verdict.</param>
public sealed record GenerationReport(
    string Text, IReadOnlyList<int> Tokens, int PromptTokens, int K, int Rounds, string StopReason, double MeanAccepted, IReadOnlyList<double?> AcceptedByPosition,
    IReadOnlyList<long> ReachedByPosition, int DraftedTokens, double DraftTokensPerS, double DraftS, double VerifyS, double WallS, double TokensPerS,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] TargetOnlyRun? TargetOnly = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] GenerationEnergy? Energy = null,
    int Pipeline = 1, int DiscardedTokens = 0,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? PipelineNote = null, double GoodputTokensPerS = 0) : IContract
{
    public void Validate() => Check.AtLeast(Rounds, 0, "rounds");
}

/// <summary>One configuration as selection predicts it (and, for the chosen one, why).</summary>
public sealed record CandidateReport(
    string Draft, string Quant, int K, double ExpectedAccepted, double GoodputTokensPerS, double TokensPerUsd, double UsdPerMtok, double? JoulesPerToken,
    double DraftS, double TVerifyS, double MemoryMb, bool Pareto, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? Score = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Reason = null, int Pipeline = 1);

/// <summary>The choice at one what-if verification wait.</summary>
public sealed record SweepPoint(double TVerifyS, CandidateReport Chosen);

/// <summary><c>configspec-edge select --json</c>.</summary>
public sealed record SelectionReport(
    string Objective, string Device, bool PowerEstimated, int Excluded, IReadOnlyList<CandidateReport> Ranked, CandidateReport Chosen,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<SweepPoint>? Sweep = null) : IContract
{
    public void Validate() => Check.Present(Chosen, "chosen");
}

/// <summary>What a validation run measured for the configuration it checked.</summary>
public sealed record MeasuredFigures(
    double GoodputTokensPerS, double EndToEndTokensPerS, double TokensPerUsd, double? JoulesPerToken, double ExpectedAccepted, double DraftTokensPerS, double DraftS,
    double TVerifyS, int Rounds, int Tokens, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? PowerEstimated = null);

/// <summary><c>configspec-edge validate --json</c>: predicted against measured, and the errors in percent.</summary>
public sealed record ValidationReport(
    string Draft, string Quant, int K, CandidateReport Predicted, MeasuredFigures Measured, double GoodputErrorPct, double TokensPerUsdErrorPct,
    double? JoulesPerTokenErrorPct, int Pipeline = 1, int DiscardedTokens = 0,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? PredictedGenerationGoodputTokensPerS = null) : IContract
{
    public void Validate() => Check.DraftLength(K, "k");
}

/// <summary>One policy's figures in <c>bench-policy --json</c>.</summary>
public sealed record PolicyFigures(string Policy, double MeanMsPerToken, double P95MsPerToken, double MeanK, double Acceptance, double RegretPct);

/// <summary>The best single static K in hindsight.</summary>
public sealed record BestStatic(string Policy, double MeanMsPerToken, double RegretPct);

/// <summary><c>configspec-edge bench-policy --json</c>.</summary>
public sealed record PolicyBenchReport(IReadOnlyList<PolicyFigures> Policies, BestStatic BestStatic) : IContract
{
    public void Validate() => Check.Present(Policies, "policies");
}

/// <summary><c>configspec-edge model info --json</c>: what a GGUF file holds.</summary>
public sealed record ModelReport(
    string Path, string Architecture, string Description, long Parameters, long FileBytes, long TensorBytes, int ContextLengthTrained, int Layers,
    int EmbeddingLength, int Heads, int KvHeads, int VocabularySize, int Bos, int Eos, string VocabularyFingerprint, long GgufVersion, int TensorCount,
    IReadOnlyDictionary<string, int> TensorTypes) : IContract
{
    public void Validate() => Check.Text(Path, "path");
}

/// <summary>A Home Assistant MQTT discovery entry's device.</summary>
public sealed record DiscoveryDevice(IReadOnlyList<string> Identifiers, string Name, string Model, string Manufacturer, string SwVersion);

/// <summary>A Home Assistant MQTT discovery entry for one of a board's sensors (<c>homeassistant/sensor/.../config</c>).</summary>
public sealed record DiscoverySensor(
    string Name, string UniqueId, string StateTopic, string ValueTemplate, string StateClass, string AvailabilityTopic, string AvailabilityTemplate, DiscoveryDevice Device,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? UnitOfMeasurement = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? DeviceClass = null) : IContract
{
    public void Validate() => Check.Text(UniqueId, "unique_id");
}
