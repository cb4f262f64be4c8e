using System.Text.Json;
using System.Text.Json.Serialization;

namespace ConfigSpec.Contracts;

/// <summary>The header every board message carries: schema name, version, the sender, its sequence number and clock.</summary>
/// <param name="Seq">Per-device sequence number, increasing across restarts; 0 on the broker's last-will message.</param>
public sealed record MessageHeader(string Schema, int Version, string DeviceId, long Seq, DateTimeOffset Time) : IVersioned
{
    public void Validate()
    {
        Check.Text(Schema, "schema");
        Check.Text(DeviceId, "device_id");
        Check.AtLeast(Seq, 0, "seq");
    }
}

/// <summary>What a board is doing, as its status topic says.</summary>
[JsonConverter(typeof(StrictEnumConverter<BoardState>))]
public enum BoardState
{
    [JsonStringEnumMemberName("starting")]
    Starting,

    [JsonStringEnumMemberName("profiling")]
    Profiling,

    [JsonStringEnumMemberName("serving")]
    Serving,

    [JsonStringEnumMemberName("offline")]
    Offline,

    [JsonStringEnumMemberName("error")]
    Error,
}

/// <summary>A board's state (<c>.../status</c>, retained; the last will says offline).</summary>
public sealed record StatusMessage(BoardState State, string Board, string Hostname, string Software, string? Objective = null, string? Detail = null) : IContract
{
    /// <summary>The state's wire name: <c>starting</c>, <c>profiling</c>, <c>serving</c>, <c>offline</c>, <c>error</c>.</summary>
    public static string Name(BoardState state) => state switch
    {
        BoardState.Starting => "starting",
        BoardState.Profiling => "profiling",
        BoardState.Serving => "serving",
        BoardState.Offline => "offline",
        _ => "error",
    };

    public void Validate()
    {
        Check.Text(Board, "board");
        Check.Text(Hostname, "hostname");
        Check.Text(Software, "software");
    }
}

/// <summary>What a configuration is predicted to give (null: not predicted, e.g. without a profile).</summary>
public sealed record PredictedFigures(double? Goodput = null, double? TokensPerUsd = null, double? JoulesPerToken = null) : IContract
{
    public void Validate()
    {
        Check.NonNegative(Goodput, "predicted.goodput");
        Check.NonNegative(TokensPerUsd, "predicted.tokens_per_usd");
        Check.NonNegative(JoulesPerToken, "predicted.joules_per_token");
    }
}

/// <summary>
/// The configuration a board serves with, where it came from (<c>profile</c>, <c>fleet</c>, <c>command</c>, <c>saved</c>)
/// and why: the body of <c>.../config</c>, the <c>config</c> of <c>/v1/status</c> and of a command's result, and the
/// daemon's saved choice. One shape everywhere.
/// </summary>
/// <param name="Pipeline">Blocks in flight at once (D, <see cref="PipelineDepth"/>); 1, the default, is sequential rounds.</param>
public sealed record ServedConfig(string Objective, string Draft, string Quant, string Sha256, int K, PredictedFigures Predicted, string Reason, string Source,
    int Pipeline = 1) : IContract
{
    public void Validate()
    {
        Check.Text(Objective, "objective");
        Check.Draft(Draft, Quant, Sha256, K);
        Check.PipelineDepth(Pipeline, "pipeline");
        Check.Present(Predicted, "predicted").Validate();
        Check.Text(Reason, "reason");
        Check.Text(Source, "source");
    }
}

/// <summary>Serving figures over one interval (<c>.../metrics</c>).</summary>
/// <param name="K">The configuration's K in the interval; 0 when nothing was served.</param>
public sealed record MetricsMessage(
    [property: JsonPropertyName("window_s")] double WindowSeconds, int Requests, int Tokens, double? Goodput, double? Acceptance, double? MeanAccepted, int K,
    double? Watts, double? JoulesPerToken, bool PowerEstimated = false) : IContract
{
    public void Validate()
    {
        Check.NonNegative(WindowSeconds, "window_s");
        Check.AtLeast(Requests, 0, "requests");
        Check.AtLeast(Tokens, 0, "tokens");
        Check.NonNegative(Goodput, "goodput");
        Check.Rate(Acceptance, "acceptance");
        Check.NonNegative(MeanAccepted, "mean_accepted");
        if (K != 0)
        {
            Check.DraftLength(K, "k");
        }

        Check.NonNegative(Watts, "watts");
        Check.NonNegative(JoulesPerToken, "joules_per_token");
    }
}

/// <summary>What a command asks a board to do.</summary>
[JsonConverter(typeof(StrictEnumConverter<FleetCommand>))]
public enum FleetCommand
{
    [JsonStringEnumMemberName("reprofile")]
    Reprofile,

    [JsonStringEnumMemberName("set-objective")]
    SetObjective,

    [JsonStringEnumMemberName("apply")]
    Apply,
}

/// <summary>
/// A command to a board (<c>.../cmd</c>). <paramref name="Time"/> (optional) is when it was issued, so that a command
/// that waited too long for an absent board is refused; schema and version are optional (a console can send
/// <c>{"command": "reprofile"}</c>), and refused when present and wrong.
/// </summary>
public sealed record CommandMessage(
    FleetCommand Command, string? Id = null, string? Objective = null, string? Draft = null, int? K = null, DateTimeOffset? Time = null,
    string? Schema = CommandMessage.SchemaName, int? Version = Contract.Version, int? Pipeline = null) : IVersioned
{
    public const string SchemaName = "configspec.edge.cmd";

    /// <summary>The command's wire name: <c>reprofile</c>, <c>set-objective</c>, <c>apply</c>.</summary>
    public static string Name(FleetCommand command) => command switch
    {
        FleetCommand.Reprofile => "reprofile",
        FleetCommand.SetObjective => "set-objective",
        _ => "apply",
    };

    public void Validate()
    {
        if (Schema is not null and not SchemaName)
        {
            throw new ContractException(ContractFault.UnknownSchema, $"schema '{Schema}' where '{SchemaName}' belongs");
        }

        if (Version is not null and not Contract.Version)
        {
            throw new ContractException(ContractFault.UnsupportedVersion, $"command version {Version} is not supported (this build reads {Contract.Version})");
        }

        Check.Text(Id, "id");
        if (K is { } k)
        {
            Check.DraftLength(k, "k");
        }

        if (Pipeline is { } d)
        {
            Check.PipelineDepth(d, "pipeline");
        }

        switch (Command)
        {
            case FleetCommand.SetObjective when Objective is null:
                throw Check.Invalid("objective", "given with set-objective (goodput, cost, energy or weighted)");
            case FleetCommand.Apply when Draft is null || K is null:
                throw Check.Invalid(Draft is null ? "draft" : "k", $"given with apply (draft: a file name or sha256; k: {DraftLength.Range})");
        }

        Check.Text(Objective, "objective");
        Check.Text(Draft, "draft");
    }
}

/// <summary>The answer to a command, on its MQTT 5 response topic or <c>.../cmd/result</c>.</summary>
public sealed record CommandResult(string? Id, string Command, bool Ok, string? Error, ServedConfig? Config) : IContract
{
    public void Validate()
    {
        Check.Text(Command, "command");
        Config?.Validate();
    }
}

/// <summary>The fleet's best configuration for one objective on one board model.</summary>
/// <param name="Spread">Median absolute deviation of the figure across the devices behind it.</param>
public sealed record RecommendedConfig(string Draft, string Quant, string Sha256, int K, double Value, string Unit, int Devices, double Spread) : IContract
{
    public void Validate()
    {
        Check.Draft(Draft, Quant, Sha256, K);
        Check.NonNegative(Value, "value");
        Check.Text(Unit, "unit");
        Check.AtLeast(Devices, 0, "devices");
        Check.NonNegative(Spread, "spread");
    }
}

/// <summary>Retained on <c>configspec/v1/fleet/{board}/recommendation</c>.</summary>
public sealed record RecommendationMessage(string Board, DateTimeOffset Time, IReadOnlyDictionary<string, RecommendedConfig> Objectives,
    string Schema = RecommendationMessage.SchemaName, int Version = Contract.Version) : IVersioned
{
    public const string SchemaName = "configspec.fleet.recommendation";

    public void Validate()
    {
        if (Schema != SchemaName)
        {
            throw new ContractException(ContractFault.UnknownSchema, $"schema '{Schema}' where '{SchemaName}' belongs");
        }

        if (Version != Contract.Version)
        {
            throw new ContractException(ContractFault.UnsupportedVersion, $"recommendation version {Version} is not supported (this build reads {Contract.Version})");
        }

        Check.Text(Board, "board");
        foreach (var (objective, config) in Check.Present(Objectives, "objectives"))
        {
            Check.Text(objective, "objectives");
            Check.Present(config, $"objectives.{objective}");
            Check.Within($"objectives.{objective}", config.Validate);
        }
    }
}

/// <summary>The body of <c>.../profile</c>: the board model and its profile document (the <c>configspec.profile</c> schema).</summary>
public sealed record ProfileMessage(string Board, ProfileDocument Profile) : IContract
{
    public void Validate()
    {
        Check.Text(Board, "board");
        Check.Within("profile", Check.Present(Profile, "profile").Validate);
    }
}

/// <summary>The daemon's saved choice: the draft file it served with and its configuration, read back at start.</summary>
public sealed record SavedChoice(string DraftPath, ServedConfig Config) : IContract
{
    public void Validate()
    {
        Check.Text(DraftPath, "draft_path");
        Check.Within("config", Check.Present(Config, "config").Validate);
    }
}

/// <summary>One configuration of the aggregator's ranking (<c>GET /api/rankings</c> rows): a recommendation's members and its place.</summary>
/// <param name="Backed">Enough devices stand behind the figure for it to be recommended.</param>
/// <param name="Pareto">On the fleet's Pareto front of goodput, tokens per dollar and energy.</param>
public sealed record RankedRow(int Rank, string Draft, string Quant, string Sha256, int K, double Value, string Unit, int Devices, double Spread, bool Backed, bool Pareto) : IContract
{
    public void Validate() => new RecommendedConfig(Draft, Quant, Sha256, K, Value, Unit, Devices, Spread).Validate();
}
