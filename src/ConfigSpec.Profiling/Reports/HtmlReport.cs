using System.Globalization;
using System.Net;
using System.Text;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Profiling.Selection;

namespace ConfigSpec.Profiling.Reports;

/// <summary>
/// A self-contained HTML report: SVG charts drawn here (no scripts, no external files) of goodput, cost efficiency
/// and energy against K per draft configuration with each optimum starred, the Pareto front, and the top
/// configurations per objective. Every plotted number also sits in a <c>data-value</c> attribute.
/// </summary>
public static class HtmlReport
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    private static readonly string[] Palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

    public static string Render(BoardProfile profile, SelectionSettings settings, int top = 5)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(settings);
        var candidates = Selector.MarkPareto(Selector.Predict(profile, settings));
        var hasEnergy = candidates.All(c => c.JoulesPerToken is not null);
        // One series per draft and pipeline depth (D is named only when the selection offers pipelines).
        var series = candidates.GroupBy(c => (c.Draft, c.Quant, c.Pipeline))
            .Select((g, i) => (Name: $"{g.Key.Draft} ({g.Key.Quant}){(settings.MaxPipeline > 1 ? $" D={g.Key.Pipeline}" : string.Empty)}", Colour: Palette[i % Palette.Length],
                Points: g.OrderBy(c => c.K).ToList(), Draft: $"{g.Key.Draft} ({g.Key.Quant})")).ToList();
        var html = new StringBuilder();
        var title = $"ConfigSpec profile of {profile.Device}";
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>").Append(E(title)).Append("</title>\n<style>\n")
            .Append("body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}")
            .Append("table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:.25em .45em;text-align:right}th{background:#f3f3f3}td.name,th.name{text-align:left}")
            .Append(".estimated{background:#fff3cd;border:1px solid #e0c060;padding:.5em;margin:1em 0}.charts{display:flex;flex-wrap:wrap;gap:1em}")
            .Append("svg.chart{background:#fff;border:1px solid #ddd}svg text{font-size:11px;font-family:system-ui,sans-serif}.pareto{font-weight:bold}td.alpha{font-family:monospace;max-width:14em}")
            .Append(".table-wrap{max-width:100%;overflow-x:auto}figure{margin:0}ul.legend{list-style:none;margin:.3em 0 0;padding:0;display:flex;flex-wrap:wrap;gap:.2em 1em;font-size:12px;max-width:600px}")
            .Append("ul.legend li{display:flex;align-items:center;gap:.35em}.swatch{display:inline-block;width:10px;height:10px;border-radius:50%;border:2px solid}.swatch.line{width:18px;height:0;border-radius:0;border-width:2px 0 0;border-style:dashed}\n</style>\n</head>\n<body>\n");
        html.Append("<h1>").Append(E(title)).Append("</h1>\n<p>");
        html.Append(E(string.Create(C,
            $"Measured {profile.Updated:yyyy-MM-dd HH:mm} UTC on {profile.Device.Hostname} ({profile.Device.Architecture}, {profile.Device.Cores} cores, {profile.Device.Os}); verifier {profile.Verifier.Kind} '{profile.Verifier.Target}'{(profile.Verifier.Broker is null ? string.Empty : " via " + profile.Verifier.Broker)}; K up to {profile.Settings.KMax}; {profile.Settings.PromptCount} prompts ({profile.Settings.PromptSource}); power: {profile.Power.Source} ({profile.Power.Scope}).")));
        html.Append("</p>\n");
        if (profile.Power.Estimated)
        {
            html.Append("<p class=\"estimated\" id=\"estimated-power\">Power figures are <b>ESTIMATED</b> from a board model, not measured: energy per token is indicative only.</p>\n");
        }

        html.Append("<p>").Append(E(Assumptions(settings))).Append("</p>\n");
        html.Append("<div class=\"charts\">\n");
        LineChart(html, "goodput", "Goodput against K", "tokens/s", series.Select(s => (s.Name, s.Colour, s.Points.Select(p => (p.K, p.Goodput)).ToList())).ToList(), higherIsBetter: true);
        LineChart(html, "cost", "Cost efficiency against K", "tokens per USD", series.Select(s => (s.Name, s.Colour, s.Points.Select(p => (p.K, p.TokensPerUsd)).ToList())).ToList(), higherIsBetter: true);
        if (hasEnergy)
        {
            LineChart(html, "energy", "Energy per token against K", "mJ per token", series.Select(s => (s.Name, s.Colour, s.Points.Select(p => (p.K, p.JoulesPerToken!.Value * 1000)).ToList())).ToList(), higherIsBetter: false);
        }

        ParetoChart(html, candidates, series.GroupBy(s => s.Draft, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Colour, StringComparer.Ordinal), hasEnergy);
        html.Append("</div>\n");

        foreach (var objective in hasEnergy ? new[] { Objective.Goodput, Objective.Cost, Objective.Energy } : [Objective.Goodput, Objective.Cost])
        {
            var ranked = Selector.Select(profile, settings with { Objective = objective, MinGoodput = null, MaxJoulesPerToken = null, MaxMemoryMegabytes = null, MaxUsdPerMillion = null });
            html.Append(CultureInfo.InvariantCulture, $"<h2>Top configurations by {Label(objective)}</h2>\n");
            html.Append(CultureInfo.InvariantCulture, $"<p class=\"reason\">{E(ranked.Reason)}</p>\n");
            CandidateTable(html, $"top-{objective.ToString().ToLowerInvariant()}", ranked.Ranked.Take(top));
        }

        html.Append("<h2>Measurements</h2>\n");
        MeasurementTable(html, profile);
        html.Append("<p>Goodput G(K) = (E_K + 1) / (K / v_d + T_verify); tokens per USD = (E_K + 1) / (billed cost of a round); energy per token = P · (K / v_d) / (E_K + 1); ")
            .Append("E_K = Σ_{i≤K} Π_{j≤i} α_j from the acceptance rates by position. Stars mark each configuration's best K; bold rows are on the three-objective Pareto front.</p>\n");
        html.Append("</body>\n</html>\n");
        return html.ToString();
    }

    private static string Assumptions(SelectionSettings s)
    {
        var billing = s.Pricing.OutputUsdPerMillion is { } output
            ? string.Create(C, $"drafts billed at {s.Pricing.UsdPerMillion} USD and the verifier's token at {output} USD per million tokens")
            : string.Create(C, $"{(s.Pricing.BillBonusToken ? "K + 1" : "K")} tokens billed per round at {s.Pricing.UsdPerMillion} USD per million");
        var wait = s.VerifySeconds is { } t ? string.Create(C, $"what-if T_verify {t * 1000:0.###} ms") : "measured T_verify";
        return $"Assumptions: {billing}; {wait}{(s.IncludeIdleEnergy ? "; idle power while waiting is charged to energy" : string.Empty)}.";
    }

    private static string Label(Objective objective) => objective switch
    {
        Objective.Goodput => "goodput",
        Objective.Cost => "cost efficiency",
        Objective.Energy => "energy per token",
        _ => "weighted score",
    };

    private static void LineChart(StringBuilder html, string id, string title, string unit, IReadOnlyList<(string Name, string Colour, List<(int K, double Value)> Points)> series, bool higherIsBetter)
    {
        const int width = 600, height = 320, left = 64, right = 210, topMargin = 30, bottom = 42;
        var plotW = width - left - right;
        var plotH = height - topMargin - bottom;
        var kMax = series.Max(s => s.Points.Max(p => p.K));
        var yMax = Nice(series.Max(s => s.Points.Max(p => p.Value)) * 1.05);
        double X(int k) => left + (kMax == 1 ? plotW / 2.0 : (k - 1) * plotW / (double)(kMax - 1));
        double Y(double v) => topMargin + plotH - (yMax == 0 ? 0 : v / yMax * plotH);
        html.Append(C, $"<svg class=\"chart\" id=\"chart-{id}\" data-chart=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{E(title)}\">\n");
        html.Append(C, $"<text x=\"{left}\" y=\"18\" font-weight=\"bold\">{E(title)}</text>\n");
        Axes(html, left, topMargin, plotW, plotH, yMax, unit);
        for (var k = 1; k <= kMax; k++)
        {
            html.Append(C, $"<text x=\"{X(k):0.#}\" y=\"{topMargin + plotH + 16}\" text-anchor=\"middle\">{k}</text>\n");
        }

        html.Append(C, $"<text x=\"{left + (plotW / 2)}\" y=\"{height - 6}\" text-anchor=\"middle\">K (drafts per round)</text>\n");
        for (var i = 0; i < series.Count; i++)
        {
            var (name, colour, points) = series[i];
            var best = higherIsBetter ? points.MaxBy(p => p.Value) : points.MinBy(p => p.Value);
            html.Append(C, $"<g class=\"series\" data-series=\"{E(name)}\">\n<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"");
            html.Append(string.Join(" ", points.Select(p => string.Create(C, $"{X(p.K):0.##},{Y(p.Value):0.##}"))));
            html.Append("\"/>\n");
            foreach (var (k, value) in points)
            {
                html.Append(C, $"<circle class=\"point\" cx=\"{X(k):0.##}\" cy=\"{Y(value):0.##}\" r=\"3\" fill=\"{colour}\" data-k=\"{k}\" data-value=\"{R(value)}\"><title>{E(name)} K={k}: {value:G4} {E(unit)}</title></circle>\n");
            }

            html.Append(C, $"<path class=\"optimum\" data-k=\"{best.K}\" data-value=\"{R(best.Value)}\" d=\"{Star(X(best.K), Y(best.Value), 9)}\" fill=\"{colour}\" stroke=\"#000\" stroke-width=\"0.8\"/>\n</g>\n");
            var ly = topMargin + 8 + (i * 16);
            html.Append(C, $"<rect x=\"{width - right + 10}\" y=\"{ly - 8}\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{width - right + 24}\" y=\"{ly + 1}\">{E(name)}</text>\n");
        }

        html.Append("</svg>\n");
    }

    private static void ParetoChart(StringBuilder html, IReadOnlyList<Candidate> candidates, Dictionary<string, string> colours, bool hasEnergy)
    {
        const int width = 600, height = 320, left = 64, right = 30, topMargin = 30, bottom = 42;
        var plotW = width - left - right;
        var plotH = height - topMargin - bottom;
        Func<Candidate, double> yOf = hasEnergy ? c => c.JoulesPerToken!.Value * 1000 : c => c.TokensPerUsd;
        var unit = hasEnergy ? "mJ per token" : "tokens per USD";
        var xMax = Nice(candidates.Max(c => c.Goodput) * 1.05);
        var yMax = Nice(candidates.Max(yOf) * 1.05);
        double X(double v) => left + (xMax == 0 ? 0 : v / xMax * plotW);
        double Y(double v) => topMargin + plotH - (yMax == 0 ? 0 : v / yMax * plotH);
        var title = hasEnergy ? "Pareto front: goodput against energy per token" : "Pareto front: goodput against cost efficiency";
        html.Append("<figure id=\"pareto\">\n");
        html.Append(C, $"<svg class=\"chart\" id=\"chart-pareto\" data-chart=\"pareto\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{E(title)}\">\n");
        html.Append(C, $"<text x=\"{left}\" y=\"18\" font-weight=\"bold\">{E(title)}</text>\n");
        Axes(html, left, topMargin, plotW, plotH, yMax, unit);
        for (var i = 0; i <= 4; i++)
        {
            var v = xMax * i / 4;
            html.Append(C, $"<text x=\"{X(v):0.#}\" y=\"{topMargin + plotH + 16}\" text-anchor=\"middle\">{Tick(v)}</text>\n");
        }

        html.Append(C, $"<text x=\"{left + (plotW / 2)}\" y=\"{height - 6}\" text-anchor=\"middle\">goodput, tokens/s</text>\n");
        var front = candidates.Where(c => c.Pareto).OrderBy(c => c.Goodput).ToList();
        if (front.Count > 1)
        {
            html.Append("<polyline class=\"front\" fill=\"none\" stroke=\"#444\" stroke-dasharray=\"4 3\" points=\"")
                .Append(string.Join(" ", front.Select(c => string.Create(C, $"{X(c.Goodput):0.##},{Y(yOf(c)):0.##}")))).Append("\"/>\n");
        }

        foreach (var c in candidates.OrderBy(c => c.Pareto))
        {
            var colour = colours[$"{c.Draft} ({c.Quant})"];
            html.Append(C, $"<circle class=\"{(c.Pareto ? "pareto-point" : "dominated-point")}\" cx=\"{X(c.Goodput):0.##}\" cy=\"{Y(yOf(c)):0.##}\" r=\"{(c.Pareto ? 5 : 3)}\" fill=\"{(c.Pareto ? colour : "#fff")}\" stroke=\"{colour}\" data-draft=\"{E(c.Draft)}\" data-quant=\"{E(c.Quant)}\" data-k=\"{c.K}\" data-goodput=\"{R(c.Goodput)}\"><title>{E(Selector.Name(c))}: {c.Goodput:G4} tokens/s, {yOf(c):G4} {unit}</title></circle>\n");
        }

        html.Append("</svg>\n<ul class=\"legend\" id=\"pareto-legend\">\n");
        foreach (var (name, colour) in colours)
        {
            html.Append(C, $"<li><span class=\"swatch\" style=\"background:{colour};border-color:{colour}\"></span>{E(name)}</li>\n");
        }

        html.Append("<li><span class=\"swatch\" style=\"background:#666;border-color:#666\"></span>filled: on the Pareto front</li>\n")
            .Append("<li><span class=\"swatch\" style=\"background:#fff;border-color:#666\"></span>hollow: dominated</li>\n")
            .Append("<li><span class=\"swatch line\" style=\"border-color:#444\"></span>the front</li>\n</ul>\n</figure>\n");
    }

    private static void Axes(StringBuilder html, int left, int top, int plotW, int plotH, double yMax, string unit)
    {
        html.Append(C, $"<line x1=\"{left}\" y1=\"{top + plotH}\" x2=\"{left + plotW}\" y2=\"{top + plotH}\" stroke=\"#444\"/>\n");
        html.Append(C, $"<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{top + plotH}\" stroke=\"#444\"/>\n");
        for (var i = 0; i <= 4; i++)
        {
            var v = yMax * i / 4;
            var y = top + plotH - (plotH * i / 4.0);
            html.Append(C, $"<line x1=\"{left}\" y1=\"{y:0.#}\" x2=\"{left + plotW}\" y2=\"{y:0.#}\" stroke=\"#eee\"/>\n<text x=\"{left - 6}\" y=\"{y + 4:0.#}\" text-anchor=\"end\">{Tick(v)}</text>\n");
        }

        html.Append(C, $"<text transform=\"translate(14,{top + (plotH / 2)}) rotate(-90)\" text-anchor=\"middle\">{E(unit)}</text>\n");
    }

    private static void CandidateTable(StringBuilder html, string id, IEnumerable<Candidate> candidates)
    {
        var list = candidates.ToList();
        var pipelined = list.Any(c => c.Pipeline > 1);
        candidates = list;
        html.Append(C, $"<table id=\"{id}\">\n<tr><th>#</th><th class=\"name\">draft</th><th class=\"name\">quant</th><th>K</th>{(pipelined ? "<th>D</th>" : string.Empty)}<th>E_K</th><th>goodput tokens/s</th><th>tokens per USD</th><th>USD per M tokens</th><th>mJ per token</th><th>memory MB</th><th>Pareto</th></tr>\n");
        var rank = 0;
        foreach (var c in candidates)
        {
            rank++;
            html.Append(C, $"<tr class=\"{(c.Pareto ? "pareto" : "dominated")}\" data-draft=\"{E(c.Draft)}\" data-quant=\"{E(c.Quant)}\" data-k=\"{c.K}\"><td>{rank}</td><td class=\"name\">{E(c.Draft)}</td><td class=\"name\">{E(c.Quant)}</td><td>{c.K}</td>{(pipelined ? $"<td>{c.Pipeline}</td>" : string.Empty)}")
                .Append(C, $"<td>{c.ExpectedAccepted:0.00}</td><td data-field=\"goodput_tokens_per_s\" data-value=\"{R(c.Goodput)}\">{c.Goodput:0.0}</td>")
                .Append(C, $"<td data-field=\"tokens_per_usd\" data-value=\"{R(c.TokensPerUsd)}\">{c.TokensPerUsd:0}</td><td>{c.UsdPerMillionTokens:0.####}</td>")
                .Append(C, $"<td data-field=\"joules_per_token\" data-value=\"{(c.JoulesPerToken is { } j ? R(j) : string.Empty)}\">{(c.JoulesPerToken is { } jj ? (jj * 1000).ToString("0.###", C) : "–")}</td>")
                .Append(C, $"<td>{c.MemoryMegabytes:0.0}</td><td>{(c.Pareto ? "yes" : "no")}</td></tr>\n");
        }

        html.Append("</table>\n");
    }

    private static void MeasurementTable(StringBuilder html, BoardProfile profile)
    {
        html.Append("<div class=\"table-wrap\">\n<table id=\"measurements\">\n<tr><th class=\"name\">draft</th><th class=\"name\">quant</th><th>rounds</th><th>v_d tokens/s (95% CI)</th><th>mean accepted (95% CI)</th><th class=\"name\">α by position</th><th>verify median / p95 ms</th><th>network / server ms</th><th>draft W</th><th>load s</th><th>file MB</th><th>resident MB</th><th class=\"name\">stopped</th></tr>\n");
        foreach (var c in profile.Configurations)
        {
            var v = c.Verify;
            html.Append(C, $"<tr data-draft=\"{E(c.Draft)}\"><td class=\"name\">{E(c.Draft)}</td><td class=\"name\">{E(c.Quant)}</td><td>{c.Rounds}</td>")
                .Append(C, $"<td data-field=\"draft_tokens_per_s\" data-value=\"{R(c.DraftTokensPerSecond.Mean)}\">{c.DraftTokensPerSecond.Mean:0.0} ({c.DraftTokensPerSecond.Low:0.0}–{c.DraftTokensPerSecond.High:0.0})</td>")
                .Append(C, $"<td>{c.MeanAccepted.Mean:0.00} ({c.MeanAccepted.Low:0.00}–{c.MeanAccepted.High:0.00})</td>")
                .Append(C, $"<td class=\"name alpha\">{string.Join(" ", c.AcceptanceByPosition.Select(a => a?.ToString("0.00", C) ?? "–"))}</td>")
                .Append(C, $"<td>{v.RoundTripMedian * 1000:0.00} / {v.RoundTripP95 * 1000:0.00}</td><td>{v.NetworkMedian * 1000:0.00} / {v.ServerMedian * 1000:0.00}</td>")
                .Append(C, $"<td>{(c.Power is { } p ? p.DraftWatts.ToString("0.00", C) : "–")}</td><td>{c.LoadSeconds:0.000}</td><td>{c.FileBytes / 1048576.0:0.00}</td><td>{c.ResidentMegabytes:0.0}</td><td class=\"name\" data-converged=\"{(c.Converged ? "true" : "false")}\">{(c.Converged ? "intervals met" : "round budget")}</td></tr>\n");
        }

        html.Append("</table>\n</div>\n<p>Stopped: <b>intervals met</b> when the 95% intervals of drafting speed and mean accepted length were within the tolerance; <b>round budget</b> when the round limit came first, and the figures hold with the wider intervals shown.</p>\n");
    }

    /// <summary>A five-pointed star centred on (x, y).</summary>
    private static string Star(double x, double y, double radius)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < 10; i++)
        {
            var r = i % 2 == 0 ? radius : radius * 0.45;
            var angle = (-Math.PI / 2) + (i * Math.PI / 5);
            sb.Append(C, $"{(i == 0 ? "M" : "L")}{x + (r * Math.Cos(angle)):0.##},{y + (r * Math.Sin(angle)):0.##}");
        }

        return sb.Append('Z').ToString();
    }

    /// <summary>A round axis maximum: 1, 2, 2.5 or 5 times a power of ten.</summary>
    internal static double Nice(double value)
    {
        if (!(value > 0) || !double.IsFinite(value))
        {
            return 1;
        }

        var power = Math.Pow(10, Math.Floor(Math.Log10(value)));
        foreach (var step in new[] { 1, 2, 2.5, 5, 10 })
        {
            if (step * power >= value)
            {
                return step * power;
            }
        }

        return 10 * power;
    }

    /// <summary>An axis label: 12.5, 850, 25k, 1.5M.</summary>
    internal static string Tick(double value) => Math.Abs(value) switch
    {
        >= 1e6 => (value / 1e6).ToString("0.##", C) + "M",
        >= 1e4 => (value / 1e3).ToString("0.##", C) + "k",
        _ => value.ToString("0.###", C),
    };

    private static string R(double value) => value.ToString("R", C);

    private static string E(string text) => WebUtility.HtmlEncode(text);
}
