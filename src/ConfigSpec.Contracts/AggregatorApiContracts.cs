using System.Text.Json;

namespace ConfigSpec.Contracts;

/// <summary><c>GET /api/health</c>: what the aggregator received, stored and refused, and its tables.</summary>
public sealed record AggregatorHealth(
    bool BrokerConnected, double UptimeS, long Received, long Stored, long Duplicates, long Ignored, long Failed, long Rejected,
    IReadOnlyDictionary<string, long> RejectedByReason, IReadOnlyList<RecentRejection> RecentRejections, IReadOnlyDictionary<string, long> Tables, int SchemaVersion) : IContract
{
    public void Validate() => Check.AtLeast(Rejected, 0, "rejected");
}

/// <summary>One refused message, as kept for <c>/api/health</c>.</summary>
public sealed record RecentRejection(string Time, string Topic, string Reason, string Detail);

/// <summary><c>GET /api/version</c>: increases whenever anything the dashboard shows changes.</summary>
public sealed record ApiVersion(long Version) : IContract
{
    public void Validate() => Check.AtLeast(Version, 0, "version");
}

/// <summary>A device as the aggregator knows it: state, its last configuration and metrics (as the board published them).</summary>
public sealed record FleetDevice(
    string Id, string? Board, string? BoardKey, string? Hostname, string State, string? Software, string? Objective, string? Detail,
    DateTimeOffset FirstSeen, DateTimeOffset LastSeen, JsonElement? Config, JsonElement? Metrics) : IContract
{
    public void Validate() => Check.Text(Id, "id");
}

/// <summary><c>GET /api/devices</c>.</summary>
public sealed record FleetDevices(IReadOnlyList<FleetDevice> Devices) : IContract
{
    public void Validate() => Check.Present(Devices, "devices");
}

/// <summary>One point of a device's predicted curve over K.</summary>
public sealed record CurvePoint(int K, double Goodput, double TokensPerUsd, double? JoulesPerToken, double ExpectedAccepted);

/// <summary>A draft configuration's predicted figures over K, from the device's profile.</summary>
public sealed record DeviceCurve(string Draft, string Quant, string Sha256, IReadOnlyList<CurvePoint> Points);

/// <summary>What a device's latest profile is.</summary>
public sealed record DeviceProfileSummary(DateTimeOffset Created, DateTimeOffset Updated, string PowerSource, bool PowerEstimated, string Target, int Configurations);

/// <summary>One stored metrics message of a device.</summary>
public sealed record DeviceMetricsPoint(DateTimeOffset Time, double? Goodput, double? Acceptance, int K, double? Watts, double? JoulesPerToken, int Tokens);

/// <summary><c>GET /api/devices/{id}</c>: the device, its curves, its profile and recent metrics.</summary>
public sealed record FleetDeviceDetail(FleetDevice Device, IReadOnlyList<DeviceCurve> Curves, DeviceProfileSummary? Profile, IReadOnlyList<DeviceMetricsPoint> Metrics) : IContract
{
    public void Validate() => Check.Within("device", Check.Present(Device, "device").Validate);
}

/// <summary>One board model's ranking for an objective: its recommendation (null when none is backed) and the ranked rows.</summary>
public sealed record BoardRanking(string Board, RecommendedConfig? Recommendation, IReadOnlyList<RankedRow> Rows);

/// <summary>A configuration's three fleet medians, with whether it is on the Pareto front.</summary>
public sealed record ParetoPoint(string Board, string Draft, int K, double Goodput, double? TokensPerUsd, double? JoulesPerToken, bool Front);

/// <summary><c>GET /api/rankings</c>.</summary>
public sealed record FleetRankings(string Objective, int Profiles, IReadOnlyList<BoardRanking> Boards, IReadOnlyList<ParetoPoint> Pareto) : IContract
{
    public void Validate() => Check.Text(Objective, "objective");
}
