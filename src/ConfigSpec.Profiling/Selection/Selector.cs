using System.Globalization;
using ConfigSpec.Interop;
using ConfigSpec.Profiling.Objectives;
using ConfigSpec.Profiling.Profiles;

namespace ConfigSpec.Profiling.Selection;

public enum Objective
{
    Goodput,
    Cost,
    Energy,
    Weighted,
}

/// <summary>What the deployment asks of a configuration.</summary>
public sealed record SelectionSettings
{
    public Objective Objective { get; init; } = Objective.Goodput;

    /// <summary>Weights of goodput, cost efficiency and energy for <see cref="Objective.Weighted"/>.</summary>
    public (double Goodput, double Cost, double Energy) Weights { get; init; } = (1, 1, 1);

    /// <summary>What-if verification wait in seconds for every K (null: the measured one).</summary>
    public double? VerifySeconds { get; init; }

    public Pricing Pricing { get; init; } = new();

    /// <summary>Charge idle power while waiting for verification to the energy per token.</summary>
    public bool IncludeIdleEnergy { get; init; }

    public double? MinGoodput { get; init; }

    public double? MaxJoulesPerToken { get; init; }

    /// <summary>Most dollars per million generated tokens.</summary>
    public double? MaxUsdPerMillion { get; init; }

    public double? MaxMemoryMegabytes { get; init; }

    /// <summary>
    /// The deepest pipeline to consider: every D in 1..this is predicted with <see cref="PipelinedModel"/> (1, the
    /// default, keeps to sequential rounds).
    /// </summary>
    public int MaxPipeline { get; init; } = 1;

    public static Objective ParseObjective(string text) => text?.Trim().ToUpperInvariant() switch
    {
        "GOODPUT" => Objective.Goodput,
        "COST" => Objective.Cost,
        "ENERGY" => Objective.Energy,
        "WEIGHTED" => Objective.Weighted,
        _ => throw new SettingException("objective", $"'{text}' is not known: use goodput, cost, energy or weighted"),
    };

    public static (double, double, double) ParseWeights(string text)
    {
        var parts = (text ?? string.Empty).Split(',', StringSplitOptions.TrimEntries);
        var values = new double[3];
        if (parts.Length != 3 || parts.Select((p, i) => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) && values[i] >= 0 && double.IsFinite(values[i])).Any(ok => !ok))
        {
            throw new SettingException("weights", $"'{text}' must be three non-negative numbers g,c,e (goodput, cost, energy), e.g. 1,1,0.5");
        }

        if (values.Sum() == 0)
        {
            throw new SettingException("weights", $"'{text}' are all zero: give at least one objective a positive weight");
        }

        return (values[0], values[1], values[2]);
    }

    public void Validate()
    {
        Pricing.Validate();
        if (!Contracts.PipelineDepth.IsValid(MaxPipeline))
        {
            throw new SettingException("pipeline", string.Create(CultureInfo.InvariantCulture, $"{MaxPipeline} is out of range ({Contracts.PipelineDepth.Range})"));
        }

        if (VerifySeconds is { } t && (!(t >= 0) || double.IsInfinity(t)))
        {
            throw new SettingException("t_verify", $"{t} must be zero or a positive number of seconds");
        }

        foreach (var (name, value) in new[] { ("min_goodput", MinGoodput), ("max_joules_per_token", MaxJoulesPerToken), ("max_usd_per_mtok", MaxUsdPerMillion), ("max_memory_mb", MaxMemoryMegabytes) })
        {
            if (value is { } v && (!(v > 0) || double.IsInfinity(v)))
            {
                throw new SettingException(name, $"{v.ToString(CultureInfo.InvariantCulture)} must be a positive number");
            }
        }
    }
}

/// <summary>One (draft, quant, K, D) with its three predicted objectives.</summary>
public sealed record Candidate
{
    public required ConfigurationProfile Configuration { get; init; }

    public string Draft => Configuration.Draft;

    public string Quant => Configuration.Quant;

    public required int K { get; init; }

    /// <summary>Blocks in flight at once (D); 1 is sequential rounds.</summary>
    public int Pipeline { get; init; } = 1;

    /// <summary>
    /// Tokens committed per episode (D ≥ 2: from one cut to the next; D = 1: per round, E_K + 1) and the episode's
    /// seconds and drafted tokens (discarded drafts included).
    /// </summary>
    public PipelineEpisode Episode { get; init; }

    public required double ExpectedAccepted { get; init; }

    public required double DraftSeconds { get; init; }

    public required double VerifySeconds { get; init; }

    public required double Goodput { get; init; }

    public required double TokensPerUsd { get; init; }

    /// <summary>Null when the profile has no power figures.</summary>
    public required double? JoulesPerToken { get; init; }

    public double UsdPerMillionTokens => 1e6 / TokensPerUsd;

    public double MemoryMegabytes => Configuration.ResidentMegabytes;

    public bool Pareto { get; init; }

    /// <summary>Weighted score 0..1 (weighted objective only).</summary>
    public double? Score { get; init; }
}

/// <summary>The ranked candidates, the one chosen, and why.</summary>
public sealed record SelectionResult(IReadOnlyList<Candidate> Ranked, Candidate Chosen, string Reason, SelectionSettings Settings, int Excluded);

/// <summary>Predicts every configuration of a profile, applies the constraints, ranks by the objective and explains the choice.</summary>
public static class Selector
{
    public static IReadOnlyList<Candidate> Predict(BoardProfile profile, SelectionSettings settings)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(settings);
        var list = new List<Candidate>();
        foreach (var c in profile.Configurations)
        {
            for (var k = 1; k <= c.AcceptanceByPosition.Count; k++)
            {
                var eK = ObjectiveModel.ExpectedAccepted(c.AcceptanceByPosition, k);
                var draft = c.DraftSeconds(k);
                var wait = settings.VerifySeconds ?? c.WaitSeconds(k);
                double? joules = c.Power is { } p
                    ? ObjectiveModel.JoulesPerTokenFromTimes(eK, draft, p.DraftWatts, settings.IncludeIdleEnergy ? profile.Power.IdleWatts : null, wait)
                    : null;
                var sequential = new Candidate
                {
                    Configuration = c,
                    K = k,
                    Episode = new PipelineEpisode(eK + 1, draft + wait, k, 1),
                    ExpectedAccepted = eK,
                    DraftSeconds = draft,
                    VerifySeconds = wait,
                    Goodput = ObjectiveModel.GoodputFromTimes(eK, draft, wait),
                    TokensPerUsd = ObjectiveModel.TokensPerUsd(eK, k, settings.Pricing),
                    JoulesPerToken = joules,
                };
                list.Add(sequential);
                for (var d = 2; d <= settings.MaxPipeline; d++)
                {
                    list.Add(Pipelined(profile, c, sequential, d, settings));
                }
            }
        }

        return list;
    }

    /// <summary>
    /// The pipelined case: an episode of chained blocks (<see cref="PipelinedModel"/>) drafting at the profiled speed,
    /// each verdict the profiled wait after its block. Cost bills every draft of every block the verifier computed and
    /// one verifier token per episode; energy counts every drafted token, discarded ones included, and (when asked)
    /// idle power for the part of the episode the board is not drafting.
    /// </summary>
    private static Candidate Pipelined(BoardProfile profile, ConfigurationProfile c, Candidate sequential, int d, SelectionSettings settings)
    {
        var perToken = 1 / c.DraftTokensPerSecond.Mean;
        var episode = PipelinedModel.Episode(c.AcceptanceByPosition, sequential.K, d, perToken, c.DraftOverheadSeconds, sequential.VerifySeconds, PooledAcceptance(c));
        var draftingSeconds = episode.DraftedTokens * perToken;
        double? joules = c.Power is { } p
            ? ((p.DraftWatts * draftingSeconds) + ((settings.IncludeIdleEnergy ? profile.Power.IdleWatts ?? 0 : 0) * Math.Max(0, episode.Seconds - draftingSeconds))) / episode.Tokens
            : null;
        return sequential with
        {
            Pipeline = d,
            Episode = episode,
            Goodput = episode.Goodput,
            TokensPerUsd = episode.Tokens / settings.Pricing.EpisodeCost(episode.VerifiedBlocks, sequential.K),
            JoulesPerToken = joules,
        };
    }

    /// <summary>
    /// Expected seconds a generation of <paramref name="tokens"/> tokens takes with this candidate, from its first draft
    /// to its last verdict: the steady state (<see cref="Candidate.Goodput"/>) for sequential rounds, and for pipelined
    /// ones <see cref="PipelinedModel.GenerationSeconds"/>, which charges the generation's last round trip.
    /// </summary>
    public static double GenerationSeconds(Candidate candidate, int tokens)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        var c = candidate.Configuration;
        return candidate.Pipeline <= 1
            ? tokens / candidate.Goodput
            : PipelinedModel.GenerationSeconds(c.AcceptanceByPosition, candidate.K, candidate.Pipeline, 1 / c.DraftTokensPerSecond.Mean, c.DraftOverheadSeconds,
                candidate.VerifySeconds, tokens, PooledAcceptance(c));
    }

    /// <summary>
    /// What a chain of blocks meets past K_max: the acceptance per token over every profiled position, weighted by how often
    /// each was reached (null when nothing was reached), and, with a chain pass, the chain's own acceptance of the drafts
    /// it verified past K_max, shrunk towards that pooled rate as if the pooled rate were <see cref="ChainPriorDrafts"/>
    /// more drafts: deep positions are reached by few chains, so a handful of drafts moves the rate little and hundreds
    /// set it (a Q4_0 chain pass with 64 such drafts read 0.81 against 0.87 pooled; a Q8_0 one with 677 read 0.984).
    /// </summary>
    public static double? PooledAcceptance(ConfigurationProfile c)
    {
        ArgumentNullException.ThrowIfNull(c);
        var pooled = ConfigurationProfile.Pool(c.AcceptanceByPosition, c.ReachedByPosition)?.Rate;
        if (c.ChainAcceptancePastKMax() is not { } chain)
        {
            return pooled;
        }

        return pooled is { } prior ? ((chain.Rate * chain.Drafts) + (prior * ChainPriorDrafts)) / (chain.Drafts + ChainPriorDrafts) : chain.Rate;
    }

    /// <summary>The weight of the profiled positions' pooled rate against the chain pass's drafts past K_max, in drafts.</summary>
    public const int ChainPriorDrafts = 100;

    public static SelectionResult Select(BoardProfile profile, SelectionSettings settings)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        if (profile.Configurations.Count == 0)
        {
            throw new ConfigSpecException("the profile has no configurations: run `configspec-edge profile` with at least one draft");
        }

        var all = Predict(profile, settings);
        var needsEnergy = settings.Objective == Objective.Energy || (settings.Objective == Objective.Weighted && settings.Weights.Energy > 0) || settings.MaxJoulesPerToken is not null;
        if (needsEnergy && all.Any(c => c.JoulesPerToken is null))
        {
            throw SettingException.Naming(
                "optimising energy needs power figures, but the profile was taken without a power source: profile again with {power} SOURCE (or use {objective} goodput|cost)");
        }

        var feasible = ApplyConstraints(all, settings);
        var marked = MarkPareto(feasible);
        var ranked = Rank(marked, settings);
        var chosen = ranked[0];
        return new SelectionResult(ranked, chosen, Explain(chosen, ranked, settings), settings, all.Count - feasible.Count);
    }

    private static List<Candidate> ApplyConstraints(IReadOnlyList<Candidate> all, SelectionSettings s)
    {
        var constraints = new List<(string Name, Func<Candidate, bool> Keeps, Func<IReadOnlyList<Candidate>, string> Best)>();
        var c = CultureInfo.InvariantCulture;
        if (s.MinGoodput is { } g)
        {
            constraints.Add(($"{{min_goodput}} {g.ToString(c)}", x => x.Goodput >= g, xs => string.Create(c, $"the best is {xs.Max(x => x.Goodput):0.0} tokens/s")));
        }

        if (s.MaxJoulesPerToken is { } j)
        {
            constraints.Add(($"{{max_joules_per_token}} {j.ToString(c)}", x => x.JoulesPerToken <= j, xs => string.Create(c, $"the lowest is {xs.Min(x => x.JoulesPerToken):0.######} J/token")));
        }

        if (s.MaxUsdPerMillion is { } u)
        {
            constraints.Add(($"{{max_usd_per_mtok}} {u.ToString(c)}", x => x.UsdPerMillionTokens <= u, xs => string.Create(c, $"the cheapest is {xs.Min(x => x.UsdPerMillionTokens):0.####} USD per million tokens")));
        }

        if (s.MaxMemoryMegabytes is { } m)
        {
            constraints.Add(($"{{max_memory_mb}} {m.ToString(c)}", x => x.MemoryMegabytes <= m, xs => string.Create(c, $"the smallest draft adds {xs.Min(x => x.MemoryMegabytes):0.0} MB")));
        }

        var feasible = all.Where(x => constraints.All(k => k.Keeps(x))).ToList();
        if (feasible.Count > 0)
        {
            return feasible;
        }

        var lines = constraints.Select(k =>
        {
            var excluded = all.Count(x => !k.Keeps(x));
            return $"{k.Name} excludes {excluded} of {all.Count} ({k.Best(all)})";
        });
        throw SettingException.Naming($"no configuration satisfies the constraints together: {string.Join("; ", lines)}");
    }

    /// <summary>Marks the candidates no other candidate beats on all three objectives (and strictly on one).</summary>
    internal static List<Candidate> MarkPareto(IReadOnlyList<Candidate> candidates)
    {
        var result = new List<Candidate>(candidates.Count);
        foreach (var a in candidates)
        {
            var dominated = candidates.Any(b => !ReferenceEquals(a, b) && Dominates(b, a));
            result.Add(a with { Pareto = !dominated });
        }

        return result;
    }

    private static bool Dominates(Candidate b, Candidate a)
    {
        var ja = a.JoulesPerToken ?? 0;
        var jb = b.JoulesPerToken ?? 0;
        var noWorse = b.Goodput >= a.Goodput && b.TokensPerUsd >= a.TokensPerUsd && jb <= ja;
        var better = b.Goodput > a.Goodput || b.TokensPerUsd > a.TokensPerUsd || jb < ja;
        return noWorse && better;
    }

    private static List<Candidate> Rank(List<Candidate> candidates, SelectionSettings s)
    {
        switch (s.Objective)
        {
            case Objective.Goodput:
                return [.. candidates.OrderByDescending(x => x.Goodput).ThenByDescending(x => x.TokensPerUsd)];
            case Objective.Cost:
                return [.. candidates.OrderByDescending(x => x.TokensPerUsd).ThenByDescending(x => x.Goodput)];
            case Objective.Energy:
                return [.. candidates.OrderBy(x => x.JoulesPerToken).ThenByDescending(x => x.Goodput)];
            default:
                var maxG = candidates.Max(x => x.Goodput);
                var maxC = candidates.Max(x => x.TokensPerUsd);
                var minJ = candidates.Min(x => x.JoulesPerToken ?? 0);
                var (wg, wc, we) = s.Weights;
                var total = wg + wc + we;
                return [.. candidates
                    .Select(x => x with
                    {
                        Score = ((wg * x.Goodput / maxG) + (wc * x.TokensPerUsd / maxC) + (we * (x.JoulesPerToken is { } j && j > 0 ? minJ / j : 0))) / total,
                    })
                    .OrderByDescending(x => x.Score).ThenByDescending(x => x.Goodput)];
        }
    }

    private static string Explain(Candidate chosen, IReadOnlyList<Candidate> ranked, SelectionSettings s)
    {
        var c = CultureInfo.InvariantCulture;
        var name = Name(chosen);
        var block = string.Create(c, $"E_K = {chosen.ExpectedAccepted:0.00} of {chosen.K} drafts accepted on average, so a round yields {chosen.ExpectedAccepted + 1:0.00} tokens");
        var runnerUp = ranked.Skip(1).FirstOrDefault();
        switch (s.Objective)
        {
            case Objective.Goodput when chosen.Pipeline > 1:
            {
                var e = chosen.Episode;
                return string.Create(c,
                    $"{name} gives the most goodput, {chosen.Goodput:0.0} tokens/s: with up to {chosen.Pipeline} blocks in flight the board drafts the next block ({chosen.DraftSeconds * 1000:0.00} ms) while a verdict travels ({chosen.VerifySeconds * 1000:0.00} ms), and blocks chained after a block accepted whole need no round of their own; from one cut to the next it commits {e.Tokens:0.00} tokens in {e.Seconds * 1000:0.0} ms, drafting {e.DraftedTokens:0.0} ({e.DraftedTokens - e.Tokens + 1:0.0} discarded or rejected){Neighbours(chosen, ranked)}")
                    + Compare(runnerUp, x => string.Create(c, $"{x.Goodput:0.0} tokens/s"));
            }

            case Objective.Goodput:
            {
                var draftMs = chosen.DraftSeconds * 1000;
                var waitMs = chosen.VerifySeconds * 1000;
                var dominant = waitMs >= draftMs
                    ? string.Create(c, $"a round waits {waitMs:0.00} ms for verification against {draftMs:0.00} ms drafting, so verification dominates")
                    : string.Create(c, $"a round spends {draftMs:0.00} ms drafting against {waitMs:0.00} ms waiting for verification, so drafting dominates");
                return string.Create(c, $"{name} gives the most goodput, {chosen.Goodput:0.0} tokens/s: {dominant}; {block}{Neighbours(chosen, ranked)}")
                    + Compare(runnerUp, x => string.Create(c, $"{x.Goodput:0.0} tokens/s"));
            }

            case Objective.Cost:
                return string.Create(c,
                    $"{name} gives the most tokens per dollar, {Figures.Count(chosen.TokensPerUsd)} ({chosen.UsdPerMillionTokens:0.####} USD per million): a round of {chosen.K} costs {s.Pricing.RoundCost(chosen.K) * 1e6:0.###} micro-USD and the verifier's own token comes free with every round, so short blocks with high acceptance are cheapest; {block}")
                    + Compare(runnerUp, x => string.Create(c, $"{Figures.Count(x.TokensPerUsd)} tokens/USD"));
            case Objective.Energy:
                return string.Create(c,
                    $"{name} uses the least board energy, {chosen.JoulesPerToken * 1000:0.###} mJ per token: drafting a block of {chosen.K} costs {chosen.JoulesPerToken * (chosen.ExpectedAccepted + 1) * 1000:0.###} mJ and is shared by the tokens a round yields, so every rejected draft is energy spent for nothing; {block}")
                    + Compare(runnerUp, x => string.Create(c, $"{x.JoulesPerToken * 1000:0.###} mJ/token"));
            default:
            {
                var (wg, wc, we) = s.Weights;
                var maxG = ranked.Max(x => x.Goodput);
                var maxC = ranked.Max(x => x.TokensPerUsd);
                var minJ = ranked.Min(x => x.JoulesPerToken ?? 0);
                var terms = new[]
                {
                    ("goodput", wg * chosen.Goodput / maxG),
                    ("cost efficiency", wc * chosen.TokensPerUsd / maxC),
                    ("energy", we * (chosen.JoulesPerToken is { } j && j > 0 ? minJ / j : 0)),
                };
                var top = terms.MaxBy(t => t.Item2);
                return string.Create(c,
                    $"{name} has the best weighted score, {chosen.Score:0.000} (weights {wg:0.##},{wc:0.##},{we:0.##}); {top.Item1} contributes most ({string.Join(", ", terms.Select(t => $"{t.Item1} {t.Item2 / (wg + wc + we):0.000}"))}); {block}")
                    + Compare(runnerUp, x => string.Create(c, $"score {x.Score:0.000}"));
            }
        }
    }

    /// <summary>Why K is not one longer or shorter: what the extra draft would cost in time and bring in tokens.</summary>
    private static string Neighbours(Candidate chosen, IReadOnlyList<Candidate> ranked)
    {
        var c = CultureInfo.InvariantCulture;
        var parts = new List<string>();
        foreach (var k in new[] { chosen.K + 1, chosen.K - 1 })
        {
            var other = ranked.FirstOrDefault(x => ReferenceEquals(x.Configuration, chosen.Configuration) && x.K == k && x.Pipeline == chosen.Pipeline);
            if (other is null)
            {
                continue;
            }

            if (chosen.Pipeline > 1)
            {
                parts.Add(string.Create(c, $"K={k} would give {other.Goodput:0.0} tokens/s"));
                continue;
            }

            var time = ((other.DraftSeconds + other.VerifySeconds) - (chosen.DraftSeconds + chosen.VerifySeconds)) * 1000;
            var gain = other.ExpectedAccepted - chosen.ExpectedAccepted;
            parts.Add(string.Create(c, $"K={k} would change the round by {time:+0.00;-0.00} ms for {gain:+0.00;-0.00} expected tokens ({other.Goodput:0.0} tokens/s)"));
        }

        return parts.Count == 0 ? string.Empty : "; " + string.Join("; ", parts);
    }

    private static string Compare(Candidate? runnerUp, Func<Candidate, string> figure) =>
        runnerUp is null ? string.Empty : $"; next best: {Name(runnerUp)} with {figure(runnerUp)}";

    public static string Name(Candidate candidate)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        return string.Create(CultureInfo.InvariantCulture, $"{candidate.Draft} ({candidate.Quant}) K={candidate.K}{(candidate.Pipeline > 1 ? $" D={candidate.Pipeline}" : string.Empty)}");
    }
}
