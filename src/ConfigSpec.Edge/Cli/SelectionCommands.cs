using ConfigSpec.Contracts;
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ConfigSpec.Interop;
using ConfigSpec.Profiling;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Profiling.Reports;
using ConfigSpec.Profiling.Selection;

namespace ConfigSpec.Edge.Cli;

/// <summary><c>select</c> and <c>report</c>: rank a profile's configurations for an objective; draw the trade-offs.</summary>
internal static class SelectionCommands
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static Command Select(TextWriter output)
    {
        var profile = new Option<string>("--profile") { Description = "profile JSON written by `profile`", Required = true };
        var json = new Option<bool>("--json") { Description = "print one JSON object: ranked and chosen" };
        var top = new Option<int>("--top") { Description = "rows to print (text output)", DefaultValueFactory = _ => 10 };
        var sweep = new Option<string?>("--sweep-t-verify") { Description = "show how the choice moves with the verification wait, e.g. 1ms,20ms,100ms" };
        var selection = new SelectionOptions();
        var command = new Command("select", "rank every (draft, quant, K, D) for an objective under constraints, mark the Pareto front and explain the choice")
        {
            profile, json, top, sweep,
        };
        selection.AddTo(command);
        command.SetAction(parse =>
        {
            var board = ProfileJson.Load(parse.GetValue(profile)!);
            var settings = selection.Read(parse);
            var result = Selector.Select(board, settings);
            var sweepText = parse.GetValue(sweep);
            var sweepResults = sweepText is null ? [] : SelectionOptions.ParseSweep(sweepText, "sweep_t_verify")
                .Select(t => (Seconds: t, Result: Selector.Select(board, settings with { VerifySeconds = t }))).ToList();
            if (parse.GetValue(json))
            {
                JsonOutput.Write(output, new SelectionReport(settings.Objective.ToString().ToLowerInvariant(), board.Device.Id, board.Power.Estimated, result.Excluded,
                    [.. result.Ranked.Select(c => Candidate(c, null))], Candidate(result.Chosen, result.Reason),
                    sweepResults.Count > 0 ? [.. sweepResults.Select(s => new SweepPoint(s.Seconds, Candidate(s.Result.Chosen, null)))] : null));
                return EdgeCli.ExitOk;
            }

            output.WriteLine(string.Create(C, $"{board.Device}: {result.Ranked.Count} configurations meet the constraints, {result.Excluded} excluded; objective {settings.Objective.ToString().ToLowerInvariant()}"));
            output.WriteLine(string.Create(C, $"{"#",3} {"draft",-28} {"quant",-7} {"K",2} {"D",2} {"E_K",5} {"tokens/s",9} {"tokens/USD",11} {"mJ/token",9} {"MB",6} pareto"));
            var rank = 0;
            foreach (var c in result.Ranked.Take(Math.Max(1, parse.GetValue(top))))
            {
                output.WriteLine(string.Create(C,
                    $"{++rank,3} {Clip(c.Draft, 28),-28} {c.Quant,-7} {c.K,2} {c.Pipeline,2} {c.ExpectedAccepted,5:0.00} {c.Goodput,9:0.0} {Figures.Count(c.TokensPerUsd),11} {(c.JoulesPerToken is { } j ? (j * 1000).ToString("0.###", C) : "-"),9} {c.MemoryMegabytes,6:0.0} {(c.Pareto ? "*" : string.Empty)}"));
            }

            output.WriteLine();
            output.WriteLine("chosen: " + Selector.Name(result.Chosen));
            output.WriteLine("why: " + result.Reason);
            if (board.Power.Estimated)
            {
                output.WriteLine($"note: energy figures are ESTIMATED ({board.Power.Source}), not measured");
            }

            foreach (var (seconds, sweepResult) in sweepResults)
            {
                var c = sweepResult.Chosen;
                output.WriteLine(string.Create(C, $"T_verify {seconds * 1000,8:0.###} ms -> {Selector.Name(c)}: {c.Goodput:0.0} tokens/s, {Figures.Count(c.TokensPerUsd)} tokens/USD"));
            }

            return EdgeCli.ExitOk;
        });
        return command;
    }

    public static Command Report(TextWriter output)
    {
        var profile = new Option<string>("--profile") { Description = "profile JSON written by `profile`", Required = true };
        var outDir = new Option<string>("--out") { Description = "folder for report.html and its CSV files", Required = true };
        var top = new Option<int>("--top") { Description = "rows per objective table", DefaultValueFactory = _ => 5 };
        var selection = new SelectionOptions();
        var command = new Command("report", "an HTML page with SVG charts of the trade-offs (goodput, cost, energy against K; the Pareto front) and CSV beside it")
        {
            profile, outDir, top,
        };
        selection.AddTo(command, constraints: false);
        command.SetAction(parse =>
        {
            var board = ProfileJson.Load(parse.GetValue(profile)!);
            var settings = selection.Read(parse);
            if (board.Configurations.Count == 0)
            {
                throw new ConfigSpecException($"profile {parse.GetValue(profile)} has no configurations to report");
            }

            var dir = Path.GetFullPath(parse.GetValue(outDir)!);
            Directory.CreateDirectory(dir);
            var html = Path.Combine(dir, "report.html");
            AtomicFile.Write(html, HtmlReport.Render(board, settings, Math.Max(1, parse.GetValue(top))));
            AtomicFile.Write(Path.Combine(dir, "ranked.csv"), CsvExport.Ranked(Selector.Select(board, settings)));
            AtomicFile.Write(Path.Combine(dir, "measurements.csv"), CsvExport.Measurements(board));
            output.WriteLine($"report: {html}");
            output.WriteLine($"CSV: {Path.Combine(dir, "ranked.csv")}, {Path.Combine(dir, "measurements.csv")}");
            return EdgeCli.ExitOk;
        });
        return command;
    }

    internal static CandidateReport Candidate(Candidate c, string? reason) => new(c.Draft, c.Quant, c.K, c.ExpectedAccepted, c.Goodput, c.TokensPerUsd,
        c.UsdPerMillionTokens, c.JoulesPerToken, c.DraftSeconds, c.VerifySeconds, c.MemoryMegabytes, c.Pareto, c.Score, reason, c.Pipeline);

    private static string Clip(string text, int width) => text.Length <= width ? text : text[..(width - 1)] + "…";
}
