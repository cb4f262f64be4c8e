using System.CommandLine;
using ConfigSpec.Contracts;
using ConfigSpec.Profiling.Objectives;
using ConfigSpec.Profiling.Selection;

namespace ConfigSpec.Edge.Cli;

/// <summary>The objective, prices and constraints shared by select, validate and report.</summary>
internal sealed class SelectionOptions
{
    public Option<string> Objective { get; } = new("--objective") { Description = "goodput | cost | energy | weighted", DefaultValueFactory = _ => "goodput" };

    public Option<string> Weights { get; } = new("--weights") { Description = "weights g,c,e of goodput, cost efficiency and energy for --objective weighted", DefaultValueFactory = _ => "1,1,1" };

    public Option<string?> VerifySeconds { get; } = new("--t-verify") { Description = "what-if verification wait per round: a duration such as 20ms, or seconds (default: measured)" };

    public Option<double> Price { get; } = new("--price-per-mtok") { Description = "US dollars per million billed tokens", DefaultValueFactory = _ => Pricing.DefaultUsdPerMillion };

    public Option<double?> OutputPrice { get; } = new("--output-price-per-mtok") { Description = "bill the verifier's token as output at this price (drafts as input at --price-per-mtok)" };

    public Option<string> Billed { get; } = new("--billed-tokens") { Description = "tokens billed per round: k or k+1", DefaultValueFactory = _ => "k" };

    public Option<bool> IdleEnergy { get; } = new("--include-idle") { Description = "charge idle power while waiting for verification to energy per token" };

    public Option<double?> MinGoodput { get; } = new("--min-goodput") { Description = "keep configurations with at least this many tokens/s" };

    public Option<double?> MaxJoules { get; } = new("--max-joules-per-token") { Description = "keep configurations using at most this many joules per token" };

    public Option<double?> MaxUsd { get; } = new("--max-usd-per-mtok") { Description = "keep configurations costing at most this many US dollars per million generated tokens" };

    public Option<double?> MaxMemory { get; } = new("--max-memory-mb") { Description = "keep drafts adding at most this much resident memory, MB" };

    public Option<int> Pipeline { get; } = new("--pipeline")
    {
        Description = $"consider up to D blocks in flight ({PipelineDepth.Range}; pipelined speculation); 1 = sequential rounds only",
        DefaultValueFactory = _ => 1,
    };

    public void AddTo(Command command, bool constraints = true)
    {
        ArgumentNullException.ThrowIfNull(command);
        Option[] pricing = [Objective, Weights, VerifySeconds, Price, OutputPrice, Billed, IdleEnergy, Pipeline];
        foreach (var option in pricing)
        {
            command.Options.Add(option);
        }

        if (constraints)
        {
            foreach (var option in new Option[] { MinGoodput, MaxJoules, MaxUsd, MaxMemory })
            {
                command.Options.Add(option);
            }
        }
    }

    public SelectionSettings Read(ParseResult parse)
    {
        var billed = parse.GetValue(Billed)!.Trim().ToUpperInvariant();
        if (billed is not ("K" or "K+1"))
        {
            throw new ConfigSpecException($"--billed-tokens '{parse.GetValue(Billed)}' must be k or k+1");
        }

        var objective = SelectionSettings.ParseObjective(parse.GetValue(Objective)!);
        var settings = new SelectionSettings
        {
            Objective = objective,
            Weights = SelectionSettings.ParseWeights(parse.GetValue(Weights)!),
            VerifySeconds = parse.GetValue(VerifySeconds) is { } wait ? Durations.ParseSeconds(wait, "t_verify") : null,
            Pricing = new Pricing { UsdPerMillion = parse.GetValue(Price), OutputUsdPerMillion = parse.GetValue(OutputPrice), BillBonusToken = billed == "K+1" },
            IncludeIdleEnergy = parse.GetValue(IdleEnergy),
            MinGoodput = parse.GetValue(MinGoodput),
            MaxJoulesPerToken = parse.GetValue(MaxJoules),
            MaxUsdPerMillion = parse.GetValue(MaxUsd),
            MaxMemoryMegabytes = parse.GetValue(MaxMemory),
            MaxPipeline = parse.GetValue(Pipeline),
        };
        settings.Validate();
        return settings;
    }

    /// <summary>Parses a comma-separated list of seconds ("0.001,0.02,0.1") or durations ("1ms,20ms,100ms").</summary>
    public static IReadOnlyList<double> ParseSweep(string text, string setting) =>
        [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(part => Durations.ParseSeconds(part, setting))];
}
