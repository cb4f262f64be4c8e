using System.Globalization;
using System.Reflection;
using System.Text.Json;
using ConfigSpec.Aggregator.Ingest;
using ConfigSpec.Aggregator.Ranking;
using ConfigSpec.Aggregator.Storage;
using ConfigSpec.Fleet;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Profiling;
using ConfigSpec.Profiling.Selection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace ConfigSpec.Aggregator.Web;

/// <summary>The aggregator's HTTP API (its replies are contract records, source-generated: native-AOT clean) and its dashboard page.</summary>
public static class FleetApi
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;
    private static readonly Lazy<string> Dashboard = new(() =>
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("ConfigSpec.Aggregator.dashboard.html")!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    public static void Map(IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet("/", () => Results.Content(Dashboard.Value, "text/html; charset=utf-8"));
        app.MapGet("/healthz", (FleetStore store) => store.SchemaVersion == FleetStore.LatestSchemaVersion ? Results.Text("ok\n") : Results.StatusCode(503));
        app.MapGet("/api/health", Health);
        app.MapGet("/api/version", (FleetState state) => Json(new ApiVersion(state.Version)));
        app.MapGet("/api/devices", (FleetStore store) => Json(new FleetDevices([.. store.Devices().Select(ToDevice)])));
        app.MapGet("/api/devices/{id}", Device);
        app.MapGet("/api/rankings", Rankings);
    }

    private static IResult Health(FleetStore store, FleetState state)
    {
        var (tables, rejected, recent) = store.Health();
        return Json(new AggregatorHealth(state.BrokerConnected, Math.Round((DateTimeOffset.UtcNow - state.Started).TotalSeconds, 1), state.Received, state.Stored,
            state.Duplicates, state.Ignored, state.Failed, rejected.Values.Sum(), rejected, [.. recent.Select(r => new RecentRejection(r.Time, r.Topic, r.Reason, r.Detail))],
            tables, store.SchemaVersion));
    }

    private static IResult Device(string id, FleetStore store)
    {
        var device = store.Devices(id) is [var d, ..] ? d : null;
        if (device is null)
        {
            return Json(new ErrorReply($"no device '{id}' has published"), StatusCodes.Status404NotFound);
        }

        var profile = store.Profiles(id) is [var p, ..] ? p : null;
        var curves = profile is null ? [] : Selector.Predict(profile.Profile, new SelectionSettings()).GroupBy(c => c.Configuration.Sha256).Select(group =>
            new DeviceCurve(group.First().Draft, group.First().Quant, group.Key, [.. group.OrderBy(c => c.K).Select(c =>
                new CurvePoint(c.K, Math.Round(c.Goodput, 4), Math.Round(c.TokensPerUsd, 1), c.JoulesPerToken, Math.Round(c.ExpectedAccepted, 4)))])).ToList();
        var summary = profile?.Profile is { } pp
            ? new DeviceProfileSummary(pp.Created, pp.Updated, pp.Power.Source, pp.Power.Estimated, pp.Verifier.Target, pp.Configurations.Count)
            : null;
        var metrics = store.Metrics(id, 120).Select(m => new DeviceMetricsPoint(m.Time, m.Goodput, m.Acceptance, m.K, m.Watts, m.JoulesPerToken, m.Tokens)).ToList();
        return Json(new FleetDeviceDetail(ToDevice(device), curves, summary, metrics));
    }

    private static IResult Rankings(string? objective, string? board, int? top, string? format, FleetState state)
    {
        objective ??= "goodput";
        if (!FleetRanker.Objectives.Contains(objective))
        {
            return Json(new ErrorReply($"objective '{objective}' is not one of {string.Join(", ", FleetRanker.Objectives)}"), StatusCodes.Status400BadRequest);
        }

        var limit = top is > 0 ? top.Value : int.MaxValue;
        var ranking = state.Ranking;
        var all = ranking?.Rows ?? [];
        var rows = all.Where(r => r.Objective == objective && (board is null || r.Board == FleetTopics.BoardKey(board))).ToList();
        if (format == "text")
        {
            return Results.Text(RankingText(objective, rows, limit), "text/plain; charset=utf-8");
        }

        var boards = rows.GroupBy(r => r.Board).Select(g => new BoardRanking(g.Key,
            ranking?.Recommendations.TryGetValue(g.Key, out var rec) == true && rec.Objectives.TryGetValue(objective, out var best) ? best : null,
            [.. g.OrderBy(r => r.Rank).Take(limit).Select(r => new RankedRow(r.Rank, r.Draft, r.Quant, r.Sha256, r.K, r.Value, r.Unit, r.Devices, r.Spread, r.Backed, r.Pareto))])).ToList();
        // The fleet Pareto view: every configuration's three medians, front flagged.
        var pareto = all.Where(r => r.Objective == "goodput" && (board is null || r.Board == FleetTopics.BoardKey(board))).Select(r => new ParetoPoint(r.Board, r.Draft, r.K, r.Value,
            all.FirstOrDefault(x => x.Objective == "cost" && x.Board == r.Board && x.Sha256 == r.Sha256 && x.K == r.K)?.Value,
            all.FirstOrDefault(x => x.Objective == "energy" && x.Board == r.Board && x.Sha256 == r.Sha256 && x.K == r.K)?.Value, r.Pareto)).ToList();
        return Json(new FleetRankings(objective, ranking?.Profiles ?? 0, boards, pareto));
    }

    /// <summary>The ranking as an aligned plain-text table (for scripts and terminals: <c>?format=text</c>).</summary>
    private static string RankingText(string objective, List<RankedConfig> rows, int limit)
    {
        var sb = new System.Text.StringBuilder();
        if (rows.Count == 0)
        {
            return $"no profiles yet for {objective}\n";
        }

        foreach (var g in rows.GroupBy(r => r.Board))
        {
            sb.Append(C, $"{g.Key}: best for {objective}\n");
            sb.Append(C, $"  {"rank",4}  {"draft",-28} {"quant",-7} {"K",2}  {"fleet median",20}  {"devices",7}\n");
            foreach (var r in g.OrderBy(r => r.Rank).Take(limit))
            {
                sb.Append(C, $"  {r.Rank,4}  {r.Draft,-28} {r.Quant,-7} {r.K,2}  {ConfigSpec.Profiling.Selection.Figures.WithUnit(r.Value, r.Unit),20}  {r.Devices,7}{(r.Backed ? "" : " (too few devices)")}\n");
            }
        }

        return sb.ToString();
    }

    private static FleetDevice ToDevice(DeviceRow d) => new(d.Id, d.Board, d.Board is null ? null : FleetTopics.BoardKey(d.Board), d.Hostname, d.State, d.Software,
        d.Objective, d.Detail, d.FirstSeen, d.LastSeen, Raw(d.ConfigJson), Raw(d.LastMetricsJson));

    /// <summary>A message as the board published it (stored after validation), or null.</summary>
    private static JsonElement? Raw(string? json)
    {
        if (json is null)
        {
            return null;
        }

        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private static IResult Json<T>(T body, int status = StatusCodes.Status200OK) =>
        Results.Text(Contract.Write(body), "application/json; charset=utf-8", statusCode: status);
}
