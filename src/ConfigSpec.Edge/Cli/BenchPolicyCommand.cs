using ConfigSpec.Contracts;
using System.CommandLine;
using System.Globalization;
using System.Text;
using ConfigSpec.Interop;
using ConfigSpec.Profiling;
using ConfigSpec.Profiling.Adaptive;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Profiling.Selection;
using ConfigSpec.Speculative.Policies;

namespace ConfigSpec.Edge.Cli;

/// <summary>
/// <c>bench-policy</c>: draft-length policies against each other on the same delay trace, with the oracle and the best
/// single static K in hindsight. Runs in simulation (<c>--simulate</c>) from a profile's acceptance and drafting speed.
/// </summary>
internal static class BenchPolicyCommand
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static Command Create(TextWriter output)
    {
        var simulate = new Option<bool>("--simulate") { Description = "drive the policies with the profile's acceptance and speed instead of real models" };
        var profile = new Option<string?>("--profile") { Description = "profile: acceptance by position, drafting speed and overhead (simulation), the profile policy's model (both modes)" };
        var verifier = new Option<string?>("--verifier") { Description = "real mode: the broker a configspec-verifier serves on; a delay proxy in this process goes in front of it" };
        var targetId = new Option<string>("--target-id") { Description = "real mode: the target the verifier serves", DefaultValueFactory = _ => "stories260K" };
        var draftFile = new Option<string?>("--draft-file") { Description = "real mode: the draft GGUF" };
        var kMaxOption = new Option<int>("--k-max") { Description = "real mode without a profile: the largest K", DefaultValueFactory = _ => 8 };
        var draft = new Option<string?>("--draft") { Description = "the profiled draft (file name, name or sha256; default: the first)" };
        var speed = new Option<double?>("--draft-tokens-per-s") { Description = "drafting speed to stand for another board (simulation: default the profile's; real mode: drafting is held to this pace)" };
        var verifyMs = new Option<double>("--verify-ms") { Description = "verifier time per round in ms (added to twice the one-way delay)", DefaultValueFactory = _ => 5 };
        var policies = new Option<string>("--policies") { Description = $"comma-separated: {DraftPolicies.Help}", DefaultValueFactory = _ => "static:2,static:6,profile,confidence:0.6,ucb-specstop,ucb-specstop:probe,oracle" };
        var delay = new Option<string>("--delay") { Description = "one-way delay: fixed:MS, jitter:MS,J, markov:LOW,HIGH,DWELL_S or a time_s,delay_ms CSV", Required = true };
        var tokens = new Option<int>("--tokens") { Description = "tokens generated per policy", DefaultValueFactory = _ => 20_000 };
        var seed = new Option<ulong>("--seed") { Description = "random seed (the same for every policy)", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "print one JSON object" };
        var parallel = new Option<int>("--parallel") { Description = "real mode: runs at once (each with its own proxy and connection; the verifier serves them together)", DefaultValueFactory = _ => 1 };
        var csv = new Option<string?>("--csv") { Description = "write every round of every policy to this CSV" };
        var svg = new Option<string?>("--svg") { Description = "write a chart of K over time against the delay to this SVG" };
        var pipeline = new Option<int>("--pipeline")
        {
            Description = $"blocks in flight at once ({PipelineDepth.Range}): every policy chooses K per block of pipelined rounds; 1 = sequential rounds",
            DefaultValueFactory = _ => 1,
        };
        var command = new Command("bench-policy", "compare draft-length policies (static, profile, confidence, ucb-specstop) with the oracle on one delay trace")
        {
            simulate, profile, draft, speed, verifyMs, policies, delay, tokens, seed, json, csv, svg, verifier, targetId, draftFile, kMaxOption, parallel, pipeline,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (!parse.GetValue(simulate))
            {
                return await RealAsync(parse, output, verifier, targetId, draftFile, kMaxOption, profile, draft, speed, verifyMs, policies, delay, tokens, seed, json, csv, svg,
                    parallel, pipeline, cancellationToken).ConfigureAwait(false);
            }

            var p = ProfileJson.Load(parse.GetValue(profile) ?? throw new ConfigSpecException("--simulate needs --profile FILE"));
            var c = Pick(p, parse.GetValue(draft));
            var alpha = c.AcceptanceByPosition.Select(a => a ?? 0).ToList();
            var v = parse.GetValue(speed) ?? c.DraftTokensPerSecond.Mean;
            if (v <= 0)
            {
                throw new ConfigSpecException("--draft-tokens-per-s must be positive");
            }

            var settings = new SimulationSettings
            {
                Alpha = alpha,
                DraftTokensPerSecond = v,
                OverheadSeconds = parse.GetValue(speed) is null ? c.DraftOverheadSeconds : 0,
                VerifySeconds = parse.GetValue(verifyMs) / 1000,
                Delay = DelayTrace.Parse(parse.GetValue(delay)!, parse.GetValue(seed)),
                Tokens = parse.GetValue(tokens),
                Seed = parse.GetValue(seed),
                Pipeline = parse.GetValue(pipeline),
            };
            settings.Validate();
            var specs = DraftPolicies.SplitList(parse.GetValue(policies)!);
            var makers = Makers(specs, alpha.Count, ProfileMaker(c, parse.GetValue(speed), settings.Delay, settings.VerifySeconds, settings.Pipeline), settings.Pipeline);
            var result = PolicySimulator.Evaluate(makers, settings, specs.Contains("oracle:late"));
            return Report(output, specs, result, parse.GetValue(json), parse.GetValue(csv), parse.GetValue(svg), alpha.Count, string.Create(C,
                $"simulation: {c.Draft} ({c.Quant}), v_d {v:0.#} tokens/s, overhead {settings.OverheadSeconds * 1000:0.##} ms, verifier {settings.VerifySeconds * 1000:0.##} ms, delay {settings.Delay.Spec} one way, {settings.Tokens} tokens per policy, seed {settings.Seed}{Pipelined(settings.Pipeline)}"));
        });
        return command;
    }

    private static int Report(TextWriter output, List<string> specs, PolicyEvaluation result, bool json, string? csv, string? svg, int kMax, string header)
    {
        var shown = new List<PolicyRun>();
        foreach (var s in specs)
        {
            shown.Add(s switch
            {
                "oracle" => result.Oracle,
                "oracle:late" => result.LateOracle!,
                _ => result.Runs[shown.Count(r => r.Policy is not ("oracle" or "oracle:late"))],
            });
        }

        if (csv is not null)
        {
            AtomicFile.Write(csv, Csv(shown));
        }

        if (svg is not null)
        {
            AtomicFile.Write(svg, Chart(shown, kMax));
        }

        if (json)
        {
            JsonOutput.Write(output, new PolicyBenchReport(
                [.. shown.Select(r => new PolicyFigures(r.Policy, Math.Round(r.MeanMsPerToken, 4), Math.Round(r.P95MsPerToken, 4), Math.Round(r.MeanK, 4),
                    Math.Round(r.Acceptance, 4), Math.Round(r.RegretPct ?? 0, 3)))],
                new BestStatic(result.BestStatic.Policy, Math.Round(result.BestStatic.MeanMsPerToken, 4), Math.Round(result.BestStatic.RegretPct ?? 0, 3))));
            return EdgeCli.ExitOk;
        }

        output.WriteLine(header);
        output.WriteLine(string.Create(C, $"{"policy",-26} {"ms/token",9} {"p95",9} {"mean K",7} {"accept",7} {"regret %",9}"));
        foreach (var r in shown.Append(result.BestStatic with { Policy = "best static (" + result.BestStatic.Policy + ")" }))
        {
            output.WriteLine(string.Create(C, $"{r.Policy,-26} {r.MeanMsPerToken,9:0.000} {r.P95MsPerToken,9:0.000} {r.MeanK,7:0.00} {r.Acceptance,7:0.000} {r.RegretPct,9:+0.00;-0.00;0.00}"));
        }

        var advantage = result.BestStatic.MeanMsPerToken - result.Oracle.MeanMsPerToken;
        foreach (var r in shown.Where(r => r.Policy.StartsWith("ucb", StringComparison.Ordinal) || r.Policy == "oracle:late"))
        {
            if (advantage <= 0)
            {
                output.WriteLine(string.Create(C, $"{r.Policy}: {r.RegretPct:+0.00;-0.00}% from the oracle, which is no better than the best static K on this trace"));
                continue;
            }

            var captured = (result.BestStatic.MeanMsPerToken - r.MeanMsPerToken) / advantage;
            output.WriteLine(string.Create(C,
                $"{r.Policy}: {r.RegretPct:+0.00;-0.00}% from the oracle; the oracle is {100 * advantage / result.BestStatic.MeanMsPerToken:0.0}% ahead of the best static K and {r.Policy} captures {captured * 100:0}% of that"));
        }

        output.WriteLine("oracle K per delay state (round-trip wait): " + string.Join(", ", result.OracleTable.OrderBy(p => p.Key).Select(p => $"{DelayStates.Describe(p.Key)} → {p.Value}")));
        return EdgeCli.ExitOk;
    }

    /// <summary>Real mode: the shipped draft drafts, a configspec-verifier verifies through a delay proxy in this process.</summary>
    private static async Task<int> RealAsync(ParseResult parse, TextWriter output, Option<string?> verifier, Option<string> targetId, Option<string?> draftFile,
        Option<int> kMaxOption, Option<string?> profile, Option<string?> draft, Option<double?> speed, Option<double> verifyMs, Option<string> policies, Option<string> delay,
        Option<int> tokens, Option<ulong> seed, Option<bool> json, Option<string?> csv, Option<string?> svg, Option<int> parallel, Option<int> pipelineOption,
        CancellationToken cancellationToken)
    {
        var depth = parse.GetValue(pipelineOption);
        if (!PipelineDepth.IsValid(depth))
        {
            throw new ConfigSpecException($"--pipeline {depth} is out of range ({PipelineDepth.Range})");
        }

        var url = parse.GetValue(verifier) ?? throw new ConfigSpecException("real mode needs --verifier mqtt://HOST:PORT (or --simulate with --profile)");
        var draftPath = parse.GetValue(draftFile) ?? throw new ConfigSpecException("real mode needs --draft-file FILE");
        var p = parse.GetValue(profile) is { } pf ? ProfileJson.Load(pf) : null;
        var c = p is null ? null : Pick(p, parse.GetValue(draft));
        var kMax = c?.AcceptanceByPosition.Count ?? parse.GetValue(kMaxOption);
        if (!DraftLength.IsValid(kMax))
        {
            throw new ConfigSpecException($"--k-max {kMax} must be {DraftLength.Range}");
        }

        var verifySeconds = parse.GetValue(verifyMs) / 1000;
        var delaySpec = parse.GetValue(delay)!;
        var trace = DelayTrace.Parse(delaySpec, parse.GetValue(seed));
        var specs = DraftPolicies.SplitList(parse.GetValue(policies)!);
        var pace = parse.GetValue(speed);
        if (pace is <= 0)
        {
            throw new ConfigSpecException("--draft-tokens-per-s must be positive");
        }

        var makers = Makers(specs, kMax, c is null ? null : ProfileMaker(c, pace, trace, verifySeconds, depth), depth);
        var n = parse.GetValue(tokens);
        if (n < 1)
        {
            throw new ConfigSpecException("--tokens must be positive");
        }

        var at = parse.GetValue(parallel);
        if (at is < 1 or > 64)
        {
            throw new ConfigSpecException($"--parallel {at} must be 1..64");
        }

        using var draftModel = EdgeCli.LoadModel(parse, draftPath, "--draft-file");
        var result = await RealPolicyBench.RunAsync(EdgeCli.Broker(parse, url, "--verifier"), parse.GetValue(targetId)!, draftModel, delaySpec, parse.GetValue(seed),
            n, kMax, verifySeconds, makers, pace, at, specs.Contains("oracle:late"), depth, cancellationToken).ConfigureAwait(false);
        var paced = (pace is { } v ? string.Create(C, $", drafting held to {v:0.#} tokens/s") : string.Empty)
            + (at > 1 ? string.Create(C, $", {at} runs at once") : string.Empty);
        return Report(output, specs, result, parse.GetValue(json), parse.GetValue(csv), parse.GetValue(svg), kMax,
            $"real models: draft {Path.GetFileName(draftPath)} against target {parse.GetValue(targetId)} via {url}, delay {delaySpec} one way (proxy in this process){paced}, {n} tokens per policy, K_max {kMax}{Pipelined(depth)}");
    }

    private static string Pipelined(int depth) => depth > 1 ? string.Create(C, $", pipelined: up to {depth} blocks in flight") : string.Empty;

    /// <summary>A fresh policy per run for every spec but the oracle (the evaluation adds it); bad specs fail here, before any run.</summary>
    private static List<Func<IDraftLengthPolicy>> Makers(List<string> specs, int kMax, Func<IDraftLengthPolicy>? profile, int pipeline)
    {
        var makers = specs.Where(s => s is not ("oracle" or "oracle:late"))
            .Select(s => (Func<IDraftLengthPolicy>)(() => Profiling.Objectives.PipelinedPolicies.Adapt(DraftPolicies.Parse(s, kMax, profile), pipeline))).ToList();
        _ = makers.Select(m => m()).ToList();
        return makers;
    }

    /// <summary>
    /// The profile policy for a profiled draft: the profile's acceptance, its drafting speed and overhead (or, for a board
    /// stood in for by <paramref name="speed"/>, that speed and no overhead), assuming the trace's first delay.
    /// </summary>
    private static Func<IDraftLengthPolicy> ProfileMaker(ConfigurationProfile c, double? speed, DelayTrace delay, double verifySeconds, int pipeline)
    {
        var alpha = c.AcceptanceByPosition.Select(a => a ?? 0).ToList();
        var wait0 = (2 * delay.DelayMs(0) / 1000) + verifySeconds;
        var overhead = speed is null ? c.DraftOverheadSeconds : 0;
        var tau = 1 / (speed ?? c.DraftTokensPerSecond.Mean);
        // With blocks in flight the model is the pipelined one: the K whose episodes give the most tokens per second.
        Func<int, double, double>? pipelined = pipeline > 1
            ? (k, wait) => 1 / Profiling.Objectives.PipelinedModel.Episode(c.AcceptanceByPosition, k, pipeline, tau, overhead, wait, Selector.PooledAcceptance(c)).Goodput
            : null;
        return () => new ProfilePolicy(alpha, overhead, tau, wait0, secondsPerToken: pipelined);
    }

    private static ConfigurationProfile Pick(BoardProfile profile, string? draft)
    {
        if (profile.Configurations.Count == 0)
        {
            throw new ConfigSpecException("the profile has no configurations");
        }

        if (draft is null)
        {
            return profile.Configurations[0];
        }

        return profile.Configurations.FirstOrDefault(c => c.Sha256 == draft || c.Draft == draft || Path.GetFileName(c.File) == draft)
            ?? throw new ConfigSpecException($"--draft {draft}: not in the profile (has {string.Join(", ", profile.Configurations.Select(c => c.Draft))})");
    }

    private static string Csv(IEnumerable<PolicyRun> runs)
    {
        var sb = new StringBuilder("policy,time_s,k,drafted,accepted,round_ms,delay_ms\n");
        foreach (var run in runs)
        {
            foreach (var r in run.Rounds)
            {
                sb.Append(C, $"{run.Policy},{r.Start:0.######},{r.K},{r.Drafted},{r.Accepted},{r.RoundSeconds * 1000:0.####},{r.DelayMs:0.###}\n");
            }
        }

        return sb.ToString();
    }

    /// <summary>
    /// K drafted per round over the first 60 s: one panel per policy other than the static ones (a step line, K axis on the
    /// left), each over the one-way delay of its own run (grey area, delay axis on the right), with a shared time axis.
    /// </summary>
    private static string Chart(List<PolicyRun> runs, int kMax)
    {
        const double W = 900, Left = 60, Right = 70, Top = 40, PanelH = 110, Gap = 22, Bottom = 45;
        var shown = runs.Where(r => !r.Policy.StartsWith("static", StringComparison.Ordinal)).ToList();
        if (shown.Count == 0)
        {
            shown = runs;
        }

        var span = Math.Max(1e-3, Math.Min(60, runs.Max(r => r.Seconds)));
        var maxDelay = Math.Max(1, runs.SelectMany(r => r.Rounds).Where(r => r.Start <= span).Select(r => r.DelayMs).DefaultIfEmpty(1).Max());
        var h = Top + (shown.Count * (PanelH + Gap)) - Gap + Bottom;
        double X(double t) => Left + (Math.Min(t, span) / span * (W - Left - Right));
        string[] colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"];
        var sb = new StringBuilder();
        sb.Append(C, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" font-family=\"sans-serif\" font-size=\"11\">\n");
        sb.Append(C, $"<rect width=\"{W}\" height=\"{h}\" fill=\"white\"/>\n");
        sb.Append(C, $"<text class=\"title\" x=\"{Left}\" y=\"22\" font-size=\"13\">K drafted per round (line, left axis) against the one-way delay (grey, right axis), first {span:0.#} s</text>\n");
        for (var i = 0; i < shown.Count; i++)
        {
            var run = shown[i];
            var top = Top + (i * (PanelH + Gap));
            var bottom = top + PanelH;
            double Yk(double k) => bottom - (k / kMax * PanelH);
            double Yd(double d) => bottom - (d / maxDelay * PanelH);
            var color = colors[i % colors.Length];
            var name = System.Security.SecurityElement.Escape(run.Policy);
            sb.Append(C, $"<g class=\"panel\" data-policy=\"{name}\">\n");
            sb.Append(C, $"<rect class=\"frame\" x=\"{Left}\" y=\"{top}\" width=\"{W - Left - Right}\" height=\"{PanelH}\" fill=\"none\" stroke=\"#ccc\"/>\n");
            // Each round holds from its start to the next round's (the last to its own end).
            var rounds = run.Rounds.Where(r => r.Start <= span).ToList();
            var steps = rounds.Select((r, j) => (From: X(r.Start), To: X(j + 1 < rounds.Count ? rounds[j + 1].Start : r.Start + r.RoundSeconds), r.DelayMs, r.Drafted)).ToList();
            if (steps.Count > 0)
            {
                sb.Append(C, $"<path class=\"delay\" fill=\"#e6e6e6\" stroke=\"#bbb\" d=\"M{steps[0].From:0.#},{bottom}");
                foreach (var step in steps)
                {
                    sb.Append(C, $" L{step.From:0.#},{Yd(step.DelayMs):0.#} L{step.To:0.#},{Yd(step.DelayMs):0.#}");
                }

                sb.Append(C, $" L{steps[^1].To:0.#},{bottom} Z\"/>\n");
                sb.Append(C, $"<path class=\"k\" data-policy=\"{name}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" d=\"M{steps[0].From:0.#},{Yk(steps[0].Drafted):0.#}");
                foreach (var step in steps)
                {
                    sb.Append(C, $" L{step.From:0.#},{Yk(step.Drafted):0.#} L{step.To:0.#},{Yk(step.Drafted):0.#}");
                }

                sb.Append("\"/>\n");
            }

            foreach (var k in new[] { 1, (kMax + 1) / 2, kMax }.Distinct())
            {
                sb.Append(C, $"<text class=\"k-tick\" x=\"{Left - 6}\" y=\"{Yk(k) + 4:0.#}\" text-anchor=\"end\">{k}</text><line x1=\"{Left - 3}\" x2=\"{Left}\" y1=\"{Yk(k):0.#}\" y2=\"{Yk(k):0.#}\" stroke=\"#888\"/>\n");
            }

            sb.Append(C, $"<text class=\"delay-tick\" x=\"{W - Right + 6}\" y=\"{top + 10}\" fill=\"#888\">{maxDelay:0} ms</text><text class=\"delay-tick\" x=\"{W - Right + 6}\" y=\"{bottom}\" fill=\"#888\">0 ms</text>\n");
            sb.Append(C, $"<text class=\"label\" x=\"{Left + 6}\" y=\"{top - 5}\" fill=\"{color}\" font-weight=\"bold\">{name}</text><text x=\"{W - Right}\" y=\"{top - 5}\" text-anchor=\"end\" fill=\"#555\">mean K {run.MeanK:0.00}, {run.MeanMsPerToken:0.0} ms/token</text>\n");
            sb.Append("</g>\n");
        }

        var axis = Top + (shown.Count * (PanelH + Gap)) - Gap;
        var tick = span > 30 ? 10 : span > 10 ? 5 : span > 2 ? 1 : span / 4;
        for (var t = 0.0; t <= span + 1e-9; t += tick)
        {
            sb.Append(C, $"<line x1=\"{X(t):0.#}\" x2=\"{X(t):0.#}\" y1=\"{axis}\" y2=\"{axis + 4}\" stroke=\"#888\"/><text class=\"t-tick\" x=\"{X(t):0.#}\" y=\"{axis + 16}\" text-anchor=\"middle\">{t:0.##}</text>\n");
        }

        sb.Append(C, $"<text x=\"{(Left + W - Right) / 2}\" y=\"{axis + 34}\" text-anchor=\"middle\">time (s)</text>\n");
        sb.Append("</svg>\n");
        return sb.ToString();
    }
}
