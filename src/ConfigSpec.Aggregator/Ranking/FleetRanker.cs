using ConfigSpec.Aggregator.Storage;
using ConfigSpec.Fleet;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Profiling.Selection;

namespace ConfigSpec.Aggregator.Ranking;

/// <summary>One configuration (draft file by hash, K) on one board model, with the fleet's figure for one objective.</summary>
/// <param name="Value">Median over the devices whose profile covers this configuration.</param>
/// <param name="Spread">Median absolute deviation over those devices.</param>
/// <param name="Backed">True when at least half of the board model's profiled devices cover it (only these are recommended).</param>
public sealed record RankedConfig(string Board, string Objective, string Draft, string Quant, string Sha256, int K, double Value, string Unit, int Devices,
    double Spread, int Rank, bool Backed, bool Pareto);

/// <summary>Every objective's ranking of every board model, and the recommendations drawn from them.</summary>
public sealed record FleetRanking(IReadOnlyList<RankedConfig> Rows, IReadOnlyDictionary<string, RecommendationMessage> Recommendations, int Profiles);

/// <summary>
/// Ranks configurations per board model and objective across devices. Each device's latest profile is predicted with
/// the same model the boards select with (<see cref="Selector.Predict"/>); the fleet figure of a (draft sha256, K) is the
/// median over the devices that profiled that draft, with the median absolute deviation as its spread and the count
/// of devices behind it. A configuration is recommended only when at least half of that board model's devices back it,
/// so one odd device cannot set the fleet's choice. Energy is ranked only over devices whose profile has power.
/// </summary>
public static class FleetRanker
{
    public static readonly string[] Objectives = ["goodput", "cost", "energy"];

    public static FleetRanking Rank(IReadOnlyList<StoredProfile> profiles, DateTimeOffset now, SelectionSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(profiles);
        settings ??= new SelectionSettings();
        var rows = new List<RankedConfig>();
        var recommendations = new Dictionary<string, RecommendationMessage>(StringComparer.Ordinal);
        foreach (var board in profiles.GroupBy(p => FleetTopics.BoardKey(p.Board), StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var devices = board.Count();
            // (sha, K) → per device (draft name, quant, goodput, tokens/USD, J/token)
            var figures = new Dictionary<(string Sha, int K), List<(string Draft, string Quant, double Goodput, double Cost, double? Energy)>>();
            foreach (var p in board)
            {
                foreach (var c in Selector.Predict(p.Profile, settings))
                {
                    var key = (c.Configuration.Sha256, c.K);
                    if (!figures.TryGetValue(key, out var list))
                    {
                        figures[key] = list = [];
                    }

                    list.Add((c.Draft, c.Quant, c.Goodput, c.TokensPerUsd, c.JoulesPerToken));
                }
            }

            var boardRows = new List<RankedConfig>();
            foreach (var objective in Objectives)
            {
                var candidates = new List<RankedConfig>();
                foreach (var ((sha, k), list) in figures)
                {
                    var values = objective switch
                    {
                        "goodput" => list.Select(x => x.Goodput).ToList(),
                        "cost" => list.Select(x => x.Cost).ToList(),
                        _ => list.Where(x => x.Energy is not null).Select(x => x.Energy!.Value).ToList(),
                    };
                    if (values.Count == 0)
                    {
                        continue;
                    }

                    var median = Median(values);
                    var spread = Median(values.Select(v => Math.Abs(v - median)).ToList());
                    var unit = objective switch { "goodput" => "tokens/s", "cost" => "tokens/USD", _ => "J/token" };
                    candidates.Add(new RankedConfig(board.Key, objective, list[0].Draft, list[0].Quant, sha, k, median, unit, values.Count, spread, 0,
                        2 * values.Count >= devices, false));
                }

                var ordered = objective == "energy"
                    ? candidates.OrderByDescending(c => c.Backed).ThenBy(c => c.Value).ThenByDescending(c => c.Devices).ThenBy(c => c.K)
                    : candidates.OrderByDescending(c => c.Backed).ThenByDescending(c => c.Value).ThenByDescending(c => c.Devices).ThenBy(c => c.K);
                boardRows.AddRange(ordered.Select((c, i) => c with { Rank = i + 1 }));
            }

            boardRows = MarkPareto(boardRows);
            rows.AddRange(boardRows);
            var best = boardRows.Where(r => r.Rank == 1 && r.Backed).ToDictionary(
                r => r.Objective, r => new RecommendedConfig(r.Draft, r.Quant, r.Sha256, r.K, r.Value, r.Unit, r.Devices, r.Spread), StringComparer.Ordinal);
            if (best.Count > 0)
            {
                recommendations[board.Key] = new RecommendationMessage(board.Key, now, best);
            }
        }

        return new FleetRanking(rows, recommendations, profiles.Count);
    }

    /// <summary>Flags the goodput rows whose (goodput, tokens/USD, J/token) fleet medians no other configuration of the board dominates.</summary>
    private static List<RankedConfig> MarkPareto(List<RankedConfig> rows)
    {
        var points = rows.GroupBy(r => (r.Sha256, r.K)).Select(g => (
            Key: g.Key,
            Goodput: g.FirstOrDefault(r => r.Objective == "goodput")?.Value ?? 0,
            Cost: g.FirstOrDefault(r => r.Objective == "cost")?.Value ?? 0,
            Energy: g.FirstOrDefault(r => r.Objective == "energy")?.Value)).ToList();
        var front = new HashSet<(string, int)>();
        foreach (var p in points)
        {
            var dominated = points.Any(q => !q.Key.Equals(p.Key)
                && q.Goodput >= p.Goodput && q.Cost >= p.Cost && (p.Energy is null || (q.Energy is { } qe && qe <= p.Energy))
                && (q.Goodput > p.Goodput || q.Cost > p.Cost || (p.Energy is { } pe && q.Energy is { } qe2 && qe2 < pe)));
            if (!dominated)
            {
                front.Add(p.Key);
            }
        }

        return rows.Select(r => r with { Pareto = front.Contains((r.Sha256, r.K)) }).ToList();
    }

    internal static double Median(List<double> values)
    {
        values.Sort();
        var n = values.Count;
        return n % 2 == 1 ? values[n / 2] : (values[(n / 2) - 1] + values[n / 2]) / 2;
    }
}
