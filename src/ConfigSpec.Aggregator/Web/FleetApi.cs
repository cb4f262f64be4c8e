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

/// <summary>The aggregator's HTTP API (JSON written by hand: native-AOT clean) and its dashboard page.</summary>
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
        app.MapGet("/api/version", (FleetState state) => Json(w => w.WriteNumber("version", state.Version)));
        app.MapGet("/api/devices", (FleetStore store) => Json(w => w.WriteArray("devices", store.Devices(), WriteDevice)));
        app.MapGet("/api/devices/{id}", Device);
        app.MapGet("/api/rankings", Rankings);
    }

    private static IResult Health(FleetStore store, FleetState state)
    {
        var (tables, rejected, recent) = store.Health();
        return Json(w =>
        {
            w.WriteBoolean("broker_connected", state.BrokerConnected);
            w.WriteNumber("uptime_s", Math.Round((DateTimeOffset.UtcNow - state.Started).TotalSeconds, 1));
            w.WriteNumber("received", state.Received);
            w.WriteNumber("stored", state.Stored);
            w.WriteNumber("duplicates", state.Duplicates);
            w.WriteNumber("ignored", state.Ignored);
            w.WriteNumber("failed", state.Failed);
            w.WriteNumber("rejected", rejected.Values.Sum());
            w.WriteStartObject("rejected_by_reason");
            foreach (var (reason, n) in rejected)
            {
                w.WriteNumber(reason, n);
            }

            w.WriteEndObject();
            w.WriteArray("recent_rejections", recent, (w, r) =>
            {
                w.WriteStartObject();
                w.WriteString("time", r.Time);
                w.WriteString("topic", r.Topic);
                w.WriteString("reason", r.Reason);
                w.WriteString("detail", r.Detail);
                w.WriteEndObject();
            });
            w.WriteStartObject("tables");
            foreach (var (table, n) in tables)
            {
                w.WriteNumber(table, n);
            }

            w.WriteEndObject();
            w.WriteNumber("schema_version", store.SchemaVersion);
        });
    }

    private static IResult Device(string id, FleetStore store)
    {
        var device = store.Devices(id) is [var d, ..] ? d : null;
        if (device is null)
        {
            return Json(w => w.WriteString("error", $"no device '{id}' has published"), StatusCodes.Status404NotFound);
        }

        var profile = store.Profiles(id) is [var p, ..] ? p : null;
        var metrics = store.Metrics(id, 120);
        return Json(w =>
        {
            w.WritePropertyName("device");
            WriteDevice(w, device);
            w.WriteStartArray("curves");
            if (profile is not null)
            {
                foreach (var group in Selector.Predict(profile.Profile, new SelectionSettings()).GroupBy(c => c.Configuration.Sha256))
                {
                    var first = group.First();
                    w.WriteStartObject();
                    w.WriteString("draft", first.Draft);
                    w.WriteString("quant", first.Quant);
                    w.WriteString("sha256", group.Key);
                    w.WriteArray("points", group.OrderBy(c => c.K), (w, c) =>
                    {
                        w.WriteStartObject();
                        w.WriteNumber("k", c.K);
                        w.WriteNumber("goodput", Math.Round(c.Goodput, 4));
                        w.WriteNumber("tokens_per_usd", Math.Round(c.TokensPerUsd, 1));
                        w.WriteNumberOrNull("joules_per_token", c.JoulesPerToken);
                        w.WriteNumber("expected_accepted", Math.Round(c.ExpectedAccepted, 4));
                        w.WriteEndObject();
                    });
                    w.WriteEndObject();
                }
            }

            w.WriteEndArray();
            if (profile is not null)
            {
                w.WriteStartObject("profile");
                w.WriteString("created", profile.Profile.Created.ToString("O", C));
                w.WriteString("updated", profile.Profile.Updated.ToString("O", C));
                w.WriteString("power_source", profile.Profile.Power.Source);
                w.WriteBoolean("power_estimated", profile.Profile.Power.Estimated);
                w.WriteString("target", profile.Profile.Verifier.Target);
                w.WriteNumber("configurations", profile.Profile.Configurations.Count);
                w.WriteEndObject();
            }
            else
            {
                w.WriteNull("profile");
            }

            w.WriteArray("metrics", metrics, (w, m) =>
            {
                w.WriteStartObject();
                w.WriteString("time", m.Time.ToString("O", C));
                w.WriteNumberOrNull("goodput", m.Goodput);
                w.WriteNumberOrNull("acceptance", m.Acceptance);
                w.WriteNumber("k", m.K);
                w.WriteNumberOrNull("watts", m.Watts);
                w.WriteNumberOrNull("joules_per_token", m.JoulesPerToken);
                w.WriteNumber("tokens", m.Tokens);
                w.WriteEndObject();
            });
        });
    }

    private static IResult Rankings(string? objective, string? board, int? top, string? format, FleetState state)
    {
        objective ??= "goodput";
        if (!FleetRanker.Objectives.Contains(objective))
        {
            return Json(w => w.WriteString("error", $"objective '{objective}' is not one of {string.Join(", ", FleetRanker.Objectives)}"), StatusCodes.Status400BadRequest);
        }

        var limit = top is > 0 ? top.Value : int.MaxValue;
        var ranking = state.Ranking;
        var rows = (ranking?.Rows ?? []).Where(r => r.Objective == objective && (board is null || r.Board == FleetTopics.BoardKey(board))).ToList();
        if (format == "text")
        {
            return Results.Text(RankingText(objective, rows, limit), "text/plain; charset=utf-8");
        }
        return Json(w =>
        {
            w.WriteString("objective", objective);
            w.WriteNumber("profiles", ranking?.Profiles ?? 0);
            w.WriteArray("boards", rows.GroupBy(r => r.Board), (w, g) =>
            {
                w.WriteStartObject();
                w.WriteString("board", g.Key);
                if (ranking?.Recommendations.TryGetValue(g.Key, out var rec) == true && rec.Objectives.TryGetValue(objective, out var best))
                {
                    w.WritePropertyName("recommendation");
                    w.WriteRawValue(Contract.Write(best));
                }
                else
                {
                    w.WriteNull("recommendation");
                }

                w.WriteArray("rows", g.OrderBy(r => r.Rank).Take(limit), (w, r) =>
                {
                    w.WriteRawValue(Contract.Write(new RankedRow(r.Rank, r.Draft, r.Quant, r.Sha256, r.K, r.Value, r.Unit, r.Devices, r.Spread, r.Backed, r.Pareto)));
                });
                w.WriteEndObject();
            });
            // The fleet Pareto view: every configuration's three medians, front flagged.
            w.WriteArray("pareto", (ranking?.Rows ?? []).Where(r => r.Objective == "goodput" && (board is null || r.Board == FleetTopics.BoardKey(board))), (w, r) =>
            {
                var cost = ranking!.Rows.FirstOrDefault(x => x.Objective == "cost" && x.Board == r.Board && x.Sha256 == r.Sha256 && x.K == r.K);
                var energy = ranking.Rows.FirstOrDefault(x => x.Objective == "energy" && x.Board == r.Board && x.Sha256 == r.Sha256 && x.K == r.K);
                w.WriteStartObject();
                w.WriteString("board", r.Board);
                w.WriteString("draft", r.Draft);
                w.WriteNumber("k", r.K);
                w.WriteNumber("goodput", r.Value);
                w.WriteNumberOrNull("tokens_per_usd", cost?.Value);
                w.WriteNumberOrNull("joules_per_token", energy?.Value);
                w.WriteBoolean("front", r.Pareto);
                w.WriteEndObject();
            });
        });
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
                var value = r.Unit == "J/token" ? r.Value.ToString("0.000000", C) : r.Value.ToString("0.0", C);
                sb.Append(C, $"  {r.Rank,4}  {r.Draft,-28} {r.Quant,-7} {r.K,2}  {value + " " + r.Unit,20}  {r.Devices,7}{(r.Backed ? "" : " (too few devices)")}\n");
            }
        }

        return sb.ToString();
    }

    private static void WriteDevice(Utf8JsonWriter w, DeviceRow d)
    {
        w.WriteStartObject();
        w.WriteString("id", d.Id);
        w.WriteString("board", d.Board);
        w.WriteString("board_key", d.Board is null ? null : FleetTopics.BoardKey(d.Board));
        w.WriteString("hostname", d.Hostname);
        w.WriteString("state", d.State);
        w.WriteString("software", d.Software);
        w.WriteString("objective", d.Objective);
        w.WriteString("detail", d.Detail);
        w.WriteString("first_seen", d.FirstSeen.ToString("O", C));
        w.WriteString("last_seen", d.LastSeen.ToString("O", C));
        WriteRawOrNull(w, "config", d.ConfigJson);
        WriteRawOrNull(w, "metrics", d.LastMetricsJson);
        w.WriteEndObject();
    }

    private static void WriteRawOrNull(Utf8JsonWriter w, string name, string? json)
    {
        w.WritePropertyName(name);
        if (json is null)
        {
            w.WriteNullValue();
        }
        else
        {
            w.WriteRawValue(json);
        }
    }

    private static IResult Json(Action<Utf8JsonWriter> body, int status = StatusCodes.Status200OK) =>
        Results.Text(FleetMessages.Json(body), "application/json; charset=utf-8", statusCode: status);
}
