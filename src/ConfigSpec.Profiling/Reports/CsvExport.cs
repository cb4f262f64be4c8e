using System.Globalization;
using System.Text;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Profiling.Selection;

namespace ConfigSpec.Profiling.Reports;

/// <summary>CSV beside the JSON profile and the HTML report (RFC 4180 quoting, invariant numbers).</summary>
public static class CsvExport
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    /// <summary>One row per profiled configuration: the measurements.</summary>
    public static string Measurements(BoardProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        var kMax = profile.Settings.KMax;
        var sb = new StringBuilder();
        sb.Append("device,draft,quant,file_bytes,sha256,rounds,tokens,draft_tokens_per_s,draft_tokens_per_s_ci_low,draft_tokens_per_s_ci_high,mean_accepted,mean_accepted_ci_low,mean_accepted_ci_high,converged,")
            .Append(string.Join(",", Enumerable.Range(1, kMax).Select(i => $"alpha_{i}")))
            .Append(",verify_median_s,verify_p95_s,network_median_s,server_median_s,wait_mean_s,draft_w,idle_w,power_estimated,load_s,resident_mb\n");
        foreach (var c in profile.Configurations)
        {
            var fields = new List<string>
            {
                profile.Device.Id, c.Draft, c.Quant, N(c.FileBytes), c.Sha256, N(c.Rounds), N(c.Tokens),
                N(c.DraftTokensPerSecond.Mean), N(c.DraftTokensPerSecond.Low), N(c.DraftTokensPerSecond.High),
                N(c.MeanAccepted.Mean), N(c.MeanAccepted.Low), N(c.MeanAccepted.High), c.Converged ? "true" : "false",
            };
            fields.AddRange(c.AcceptanceByPosition.Select(a => a is { } v ? N(v) : string.Empty));
            fields.AddRange([N(c.Verify.RoundTripMedian), N(c.Verify.RoundTripP95), N(c.Verify.NetworkMedian), N(c.Verify.ServerMedian), N(c.Verify.WaitMean),
                c.Power is { } p ? N(p.DraftWatts) : string.Empty, profile.Power.IdleWatts is { } idle ? N(idle) : string.Empty,
                profile.Power.Estimated ? "true" : "false", N(c.LoadSeconds), N(c.ResidentMegabytes)]);
            sb.Append(string.Join(",", fields.Select(Quote))).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>One row per (draft, quant, K, D): the predicted objectives and the rank under the objective in force.</summary>
    public static string Ranked(SelectionResult selection)
    {
        ArgumentNullException.ThrowIfNull(selection);
        var sb = new StringBuilder("rank,draft,quant,k,expected_accepted,goodput_tokens_per_s,tokens_per_usd,usd_per_mtok,joules_per_token,memory_mb,pareto,score,pipeline\n");
        var rank = 0;
        foreach (var c in selection.Ranked)
        {
            rank++;
            sb.Append(string.Join(",", new[]
            {
                N(rank), Quote(c.Draft), Quote(c.Quant), N(c.K), N(c.ExpectedAccepted), N(c.Goodput), N(c.TokensPerUsd), N(c.UsdPerMillionTokens),
                c.JoulesPerToken is { } j ? N(j) : string.Empty, N(c.MemoryMegabytes), c.Pareto ? "true" : "false", c.Score is { } s ? N(s) : string.Empty, N(c.Pipeline),
            })).Append('\n');
        }

        return sb.ToString();
    }

    private static string N(double value) => double.IsFinite(value) ? value.ToString("R", C) : string.Empty;

    private static string N(long value) => value.ToString(C);

    private static string Quote(string field) =>
        field.AsSpan().IndexOfAny(",\"\n\r") >= 0 ? "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : field;
}
