using ConfigSpec.Interop;
using ConfigSpec.Profiling.Objectives;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Profiling.Selection;

namespace ConfigSpec.Tests.Profiling;

public class SelectorTests
{
    [Fact]
    public void Every_draft_and_k_is_predicted_and_the_goodput_winner_is_the_maximum()
    {
        var profile = ProfileFixtures.ThreeDrafts();
        var result = Selector.Select(profile, new SelectionSettings { Objective = Objective.Goodput });
        Assert.Equal(3 * 8, result.Ranked.Count);
        Assert.Equal(result.Ranked.Max(c => c.Goodput), result.Chosen.Goodput);
        var expected = ObjectiveModel.GoodputFromTimes(result.Chosen.ExpectedAccepted, result.Chosen.Configuration.DraftSeconds(result.Chosen.K), result.Chosen.VerifySeconds);
        Assert.Equal(expected, result.Chosen.Goodput, 9);
        Assert.Contains("gives the most goodput", result.Reason, StringComparison.Ordinal);
        Assert.Contains("verification dominates", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void The_pareto_front_holds_exactly_the_undominated_configurations()
    {
        var result = Selector.Select(ProfileFixtures.ThreeDrafts(), new SelectionSettings());
        bool Dominates(Candidate b, Candidate a) =>
            b.Goodput >= a.Goodput && b.TokensPerUsd >= a.TokensPerUsd && b.JoulesPerToken <= a.JoulesPerToken
            && (b.Goodput > a.Goodput || b.TokensPerUsd > a.TokensPerUsd || b.JoulesPerToken < a.JoulesPerToken);
        foreach (var a in result.Ranked)
        {
            var dominated = result.Ranked.Any(b => !ReferenceEquals(a, b) && Dominates(b, a));
            Assert.Equal(!dominated, a.Pareto);
        }

        Assert.Contains(result.Ranked, c => c.Pareto);
        Assert.Contains(result.Ranked, c => !c.Pareto);
        // The winner of each single objective is always on the front.
        foreach (var objective in new[] { Objective.Goodput, Objective.Cost, Objective.Energy })
        {
            Assert.True(Selector.Select(ProfileFixtures.ThreeDrafts(), new SelectionSettings { Objective = objective }).Chosen.Pareto, objective.ToString());
        }
    }

    [Fact]
    public void Slow_verification_moves_the_goodput_optimum_to_longer_blocks()
    {
        var fast = Selector.Select(ProfileFixtures.ThreeDrafts(), new SelectionSettings { VerifySeconds = 0.001 }).Chosen;
        var slow = Selector.Select(ProfileFixtures.ThreeDrafts(), new SelectionSettings { VerifySeconds = 0.5 }).Chosen;
        Assert.True(slow.K > fast.K, $"K* {fast.K} at 1 ms, {slow.K} at 500 ms");
        Assert.Equal(0.5, slow.VerifySeconds);
    }

    [Fact]
    public void Cost_and_energy_objectives_rank_by_their_own_figure()
    {
        var cost = Selector.Select(ProfileFixtures.ThreeDrafts(), new SelectionSettings { Objective = Objective.Cost });
        Assert.Equal(cost.Ranked.Max(c => c.TokensPerUsd), cost.Chosen.TokensPerUsd);
        Assert.Equal(1, cost.Chosen.K);
        var energy = Selector.Select(ProfileFixtures.ThreeDrafts(), new SelectionSettings { Objective = Objective.Energy });
        Assert.Equal(energy.Ranked.Min(c => c.JoulesPerToken), energy.Chosen.JoulesPerToken);
        Assert.Contains("least board energy", energy.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Weighted_scores_lie_in_0_1_and_a_single_weight_reproduces_that_objective()
    {
        var weighted = Selector.Select(ProfileFixtures.ThreeDrafts(), new SelectionSettings { Objective = Objective.Weighted, Weights = (1, 1, 1) });
        Assert.All(weighted.Ranked, c => Assert.InRange(c.Score!.Value, 0, 1));
        var goodputOnly = Selector.Select(ProfileFixtures.ThreeDrafts(), new SelectionSettings { Objective = Objective.Weighted, Weights = (1, 0, 0) });
        var goodput = Selector.Select(ProfileFixtures.ThreeDrafts(), new SelectionSettings { Objective = Objective.Goodput });
        Assert.Equal(Selector.Name(goodput.Chosen), Selector.Name(goodputOnly.Chosen));
        Assert.Equal(1.0, goodputOnly.Chosen.Score!.Value, 9);
        Assert.Contains("contributes most", weighted.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Constraints_filter_and_contradictory_ones_name_what_excluded_what()
    {
        var filtered = Selector.Select(ProfileFixtures.ThreeDrafts(), new SelectionSettings { MaxMemoryMegabytes = 500 });
        Assert.All(filtered.Ranked, c => Assert.True(c.MemoryMegabytes <= 500));
        Assert.Equal(8, filtered.Excluded);
        var ex = Assert.Throws<SettingException>(() => Selector.Select(ProfileFixtures.ThreeDrafts(),
            new SelectionSettings { MinGoodput = 1e6, MaxMemoryMegabytes = 500 }));
        Assert.Contains("min_goodput 1000000 excludes 24 of 24", ex.Message, StringComparison.Ordinal);
        Assert.Contains("max_memory_mb 500 excludes 8 of 24", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("--", ex.Message, StringComparison.Ordinal);
        Assert.Contains("--min-goodput 1000000 excludes 24 of 24", ex.CommandLineMessage, StringComparison.Ordinal);
        Assert.Contains("--max-memory-mb 500 excludes 8 of 24", ex.CommandLineMessage, StringComparison.Ordinal);
        Assert.Contains("the best is", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Energy_without_power_figures_is_refused_with_the_fix()
    {
        var profile = ProfileFixtures.Profile(ProfileFixtures.Configuration("d", "Q8_0", [0.9, 0.8], 20, 0.05, watts: null));
        var ex = Assert.Throws<SettingException>(() => Selector.Select(profile, new SelectionSettings { Objective = Objective.Energy }));
        Assert.Contains("power source", ex.Message, StringComparison.Ordinal);
        Assert.NotNull(Selector.Select(profile, new SelectionSettings { Objective = Objective.Goodput }).Chosen);
    }

    [Theory]
    [InlineData("speed", "'speed' is not known")]
    [InlineData("", "'' is not known")]
    public void Unknown_objectives_are_refused(string objective, string message)
    {
        // The library names its setting; a command line names its option (the daemon's MQTT answer carries the former).
        var ex = Assert.Throws<SettingException>(() => SelectionSettings.ParseObjective(objective));
        Assert.StartsWith("objective " + message, ex.Message, StringComparison.Ordinal);
        Assert.StartsWith("--objective " + message, ex.CommandLineMessage, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1,1")]
    [InlineData("1,-1,1")]
    [InlineData("a,b,c")]
    [InlineData("0,0,0")]
    public void Bad_weights_are_refused(string weights) =>
        Assert.Equal("weights", Assert.Throws<SettingException>(() => SelectionSettings.ParseWeights(weights)).Setting);

    [Fact]
    public void An_empty_profile_is_refused()
    {
        var ex = Assert.Throws<ConfigSpecException>(() => Selector.Select(ProfileFixtures.Profile(), new SelectionSettings()));
        Assert.Contains("no configurations", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pipelined_candidates_are_predicted_by_the_pipelined_model_and_chosen_where_the_wait_is_long()
    {
        // At 200 ms a verdict takes longer than drafting a block, so drafting through the wait wins.
        var profile = ProfileFixtures.ThreeDrafts(wait: 0.2);
        var result = Selector.Select(profile, new SelectionSettings { MaxPipeline = 4 });
        Assert.Equal(3 * 8 * 4, result.Ranked.Count);
        var chosen = result.Chosen;
        Assert.True(chosen.Pipeline > 1, $"chose {Selector.Name(chosen)}");
        var c = chosen.Configuration;
        var episode = PipelinedModel.Episode(c.AcceptanceByPosition, chosen.K, chosen.Pipeline, 1 / c.DraftTokensPerSecond.Mean, c.DraftOverheadSeconds, chosen.VerifySeconds);
        Assert.Equal(episode.Goodput, chosen.Goodput, 9);
        Assert.Contains($"D={chosen.Pipeline}", Selector.Name(chosen), StringComparison.Ordinal);
        Assert.Contains("blocks in flight", result.Reason, StringComparison.Ordinal);
        var sequential = result.Ranked.Where(x => x.Pipeline == 1).MaxBy(x => x.Goodput)!;
        Assert.True(chosen.Goodput > sequential.Goodput * 1.05, $"{chosen.Goodput} against sequential {sequential.Goodput}");

        // Every D = 1 candidate is today's sequential prediction, unchanged by offering deeper pipelines.
        var plain = Selector.Select(profile, new SelectionSettings());
        Assert.All(plain.Ranked, x => Assert.Equal(1, x.Pipeline));
        Assert.Equal(plain.Chosen.Goodput, sequential.Goodput, 9);
    }

    [Fact]
    public void The_chain_pass_sets_the_acceptance_a_pipeline_meets_past_k_max()
    {
        var plain = ProfileFixtures.ThreeDrafts(wait: 0.2).Configurations[0];
        // Without a chain pass: the profiled positions pooled (all reached alike here, so their mean).
        Assert.Equal(plain.AcceptanceByPosition.Average(a => a!.Value), Selector.PooledAcceptance(plain)!.Value, 9);
        // With one: its drafts past K_max (positions 9..16), pooled over what reached them, shrunk towards that mean.
        var prior = Selector.PooledAcceptance(plain)!.Value;
        var measured = plain with { Chain = ProfileFixtures.Chain(0.97) };
        var drafts = Enumerable.Range(8, 8).Sum(p => 40L - p);
        Assert.Equal(drafts, measured.ChainAcceptancePastKMax()!.Value.Drafts);
        Assert.Equal(((0.97 * drafts) + (prior * Selector.ChainPriorDrafts)) / (drafts + Selector.ChainPriorDrafts), Selector.PooledAcceptance(measured)!.Value, 9);
        // Many drafts set the rate; a few barely move it.
        var deep = plain with { Chain = ProfileFixtures.Chain(0.97, reached: 2000) };
        Assert.InRange(Selector.PooledAcceptance(deep)!.Value, 0.96, 0.97);
        var thin = plain with { Chain = ProfileFixtures.Chain(0.97, reached: 10) };
        Assert.InRange(Selector.PooledAcceptance(thin)!.Value, prior, prior + 0.005);

        // The pipelined prediction follows: chains that break less often past K_max give more tokens per episode.
        Candidate Best(ConfigurationProfile c) => Selector.Predict(ProfileFixtures.Profile(c) with { Settings = ProfileFixtures.ThreeDrafts().Settings },
            new SelectionSettings { MaxPipeline = 4, VerifySeconds = 0.2 }).Where(x => x.K == 8 && x.Pipeline == 4).Single();
        Assert.True(Best(measured).Episode.Tokens > Best(plain).Episode.Tokens + 1, $"{Best(measured).Episode.Tokens} against {Best(plain).Episode.Tokens}");
        Assert.Equal(Best(plain).Goodput, Best(thin).Goodput, Best(plain).Goodput * 0.01);
    }

    [Fact]
    public void Discarded_drafts_cost_energy_and_verified_blocks_cost_money_in_a_pipeline()
    {
        var profile = ProfileFixtures.ThreeDrafts(wait: 0.2);
        var all = Selector.Predict(profile, new SelectionSettings { MaxPipeline = 4 });
        foreach (var x in all.Where(x => x.Pipeline > 1))
        {
            var c = x.Configuration;
            var e = x.Episode;
            // Every token drafted in the episode, at the profiled speed and power, shared by the committed tokens.
            Assert.Equal(c.Power!.DraftWatts * e.DraftedTokens / c.DraftTokensPerSecond.Mean / e.Tokens, x.JoulesPerToken!.Value, 9);
            Assert.True(e.DraftedTokens >= e.Tokens - 1, $"{Selector.Name(x)} drafted {e.DraftedTokens} for {e.Tokens} tokens");
            var pricing = new Pricing();
            Assert.Equal(e.Tokens / ((e.VerifiedBlocks * x.K * pricing.UsdPerMillion / 1e6)), x.TokensPerUsd, 6);
        }

        // Drafting on past what will be cut is never free: with a poor draft, more blocks in flight cost more energy.
        var poor = all.Where(x => x.Draft == "tiny-draft" && x.K == 4).OrderBy(x => x.Pipeline).ToList();
        Assert.True(poor[^1].JoulesPerToken > poor[0].JoulesPerToken, string.Join(", ", poor.Select(x => $"D={x.Pipeline} {x.JoulesPerToken}")));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(17)]
    public void A_pipeline_outside_its_range_is_refused_naming_the_setting(int depth)
    {
        var ex = Assert.Throws<SettingException>(() => Selector.Select(ProfileFixtures.ThreeDrafts(), new SelectionSettings { MaxPipeline = depth }));
        Assert.Equal("pipeline", ex.Setting);
        Assert.StartsWith($"--pipeline {depth} is out of range (1..16)", ex.CommandLineMessage, StringComparison.Ordinal);
    }
}
