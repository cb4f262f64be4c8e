using ConfigSpec.Interop;
using ConfigSpec.Profiling.Adaptive;
using ConfigSpec.Speculative.Policies;
using ConfigSpec.Speculative.Sampling;

namespace ConfigSpec.Tests.Adaptive;

/// <summary>Deterministic (seeded) tests of the draft-length policies on synthetic rounds.</summary>
public sealed class PolicyTests
{
    private static readonly double[] Alpha = [0.88, 0.87, 0.86, 0.85, 0.85, 0.84, 0.83, 0.82];

    /// <summary>Seconds per token of K under the model, for the best-arm check.</summary>
    private static double Cost(int k, double tau, double wait)
    {
        double e = 0, prefix = 1;
        for (var i = 0; i < k; i++)
        {
            prefix *= Alpha[i];
            e += prefix;
        }

        return ((k * tau) + wait) / (e + 1);
    }

    private static int BestK(double tau, double wait) => Enumerable.Range(1, Alpha.Length).MinBy(k => Cost(k, tau, wait));

    /// <summary>Feeds a policy synthetic rounds: acceptance from <see cref="Alpha"/>, drafting tau per token, a fixed wait.</summary>
    private static List<int> Drive(UcbSpecStopPolicy policy, Xoshiro256 rng, int rounds, double tau, Func<int, double> wait)
    {
        var chosen = new List<int>();
        for (var r = 0; r < rounds; r++)
        {
            var k = policy.Choose();
            chosen.Add(k);
            var accepted = 0;
            while (accepted < k && rng.NextDouble() < Alpha[accepted])
            {
                accepted++;
            }

            policy.Observe(new RoundObservation(k, accepted, k * tau, (k * tau) + wait(r)));
        }

        return chosen;
    }

    [Theory]
    [InlineData(0.040, 0.045)]   // a small board, 20 ms each way: K = 1
    [InlineData(0.040, 0.305)]   // the same at 150 ms each way: a long block
    [InlineData(0.002, 0.020)]   // a fast board: a long block already at 10 ms each way
    [InlineData(0.010, 0.0005)]  // verification nearly free: K = 1
    public void The_bandit_settles_on_the_best_K_for_a_fixed_delay(double tau, double wait)
    {
        var policy = new UcbSpecStopPolicy(8);
        var chosen = Drive(policy, new Xoshiro256(7), 600, tau, _ => wait);
        var best = BestK(tau, wait);
        var late = chosen.Skip(400).ToList();
        var share = late.Count(k => k == best) / (double)late.Count;
        // Near-ties are allowed: the K it settles on must cost within 1% of the best.
        var settled = late.GroupBy(k => k).MaxBy(g => g.Count())!.Key;
        Assert.True(Cost(settled, tau, wait) <= Cost(best, tau, wait) * 1.01,
            $"settled on K={settled}, best K={best} (share of best {share:P0}); optimistic costs {string.Join(" ", Enumerable.Range(1, 8).Select(k => policy.OptimisticCost(k, wait).ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture)))}; true {string.Join(" ", Enumerable.Range(1, 8).Select(k => Cost(k, tau, wait).ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture)))}");
        Assert.All(chosen, k => Assert.InRange(k, 1, 8));
    }

    [Fact]
    public void The_bandit_never_chooses_zero_or_more_than_k_max()
    {
        foreach (var kMax in new[] { 1, 3, 8, 16 })
        {
            var policy = new UcbSpecStopPolicy(kMax);
            var rng = new Xoshiro256(3);
            for (var r = 0; r < 300; r++)
            {
                var k = policy.Choose();
                Assert.InRange(k, 1, kMax);
                var accepted = (int)(rng.NextDouble() * (k + 1));
                policy.Observe(new RoundObservation(k, Math.Min(accepted, k), k * 0.01, (k * 0.01) + (r % 50 == 0 ? 1.0 : 0.02)));
            }
        }
    }

    [Fact]
    public void The_bandit_follows_a_delay_switch_within_two_rounds_and_K_grows_with_delay()
    {
        const double Tau = 0.040;
        var policy = new UcbSpecStopPolicy(8);
        var rng = new Xoshiro256(11);
        // Learn at low delay, then switch to high, then back.
        var low = Drive(policy, rng, 300, Tau, _ => 0.045);
        var high = Drive(policy, rng, 40, Tau, _ => 0.305);
        var back = Drive(policy, rng, 40, Tau, _ => 0.045);
        var bestLow = BestK(Tau, 0.045);
        var bestHigh = BestK(Tau, 0.305);
        Assert.True(bestHigh > bestLow);
        // After a switch, at most two rounds keep the old choice (the first round after it reveals the new wait).
        Assert.True(high.Skip(2).Take(20).All(k => k >= bestHigh - 1), $"after the switch up: {string.Join(",", high.Take(22))}");
        Assert.True(back.Skip(2).Take(20).All(k => k <= bestLow + 1), $"after the switch down: {string.Join(",", back.Take(22))}");
        // Threshold structure: the mean K in the high-delay phase exceeds the low-delay phase's.
        Assert.True(high.Skip(2).Average() > low.Skip(100).Average());
    }

    [Fact]
    public void The_choice_never_falls_as_the_delay_state_rises()
    {
        const double Tau = 0.030;
        var policy = new UcbSpecStopPolicy(8);
        var rng = new Xoshiro256(5);
        Drive(policy, rng, 400, Tau, r => new[] { 0.003, 0.012, 0.05, 0.2, 0.7 }[r % 5]);
        var byWait = new[] { 0.003, 0.012, 0.05, 0.2, 0.7 }.Select(w =>
        {
            policy.Observe(new RoundObservation(1, 1, Tau, Tau + w));
            return policy.Choose();
        }).ToList();
        Assert.Equal(byWait.Order(), byWait);
    }

    [Fact]
    public void The_confidence_policy_stops_at_the_first_token_below_its_threshold()
    {
        var policy = new ConfidencePolicy(0.6, 8);
        Assert.Equal(8, policy.Choose());
        Assert.False(policy.StopDrafting(new DraftProgress(1, 0.95)));
        Assert.False(policy.StopDrafting(new DraftProgress(2, 0.6)));
        Assert.True(policy.StopDrafting(new DraftProgress(3, 0.59)));
        Assert.Throws<ConfigSpecException>(() => new ConfidencePolicy(1.0, 8));
        // In simulation it drafts fewer than K_max on average and never more.
        var run = PolicySimulator.Run(policy, Settings("fixed:20", 2000));
        Assert.InRange(run.MeanK, 1, 7.99);
        Assert.All(run.Rounds, r => Assert.InRange(r.Drafted, 1, 8));
    }

    [Fact]
    public void The_oracle_uses_the_best_static_K_of_each_delay_state_and_beats_every_static_K()
    {
        var s = Settings("markov:20,150,3", 6000);
        var evaluation = PolicySimulator.Evaluate([() => new StaticPolicy(2), () => new UcbSpecStopPolicy(8)], s);
        // The table: for each state, the K whose static run spent the least time per token in that state.
        var statics = Enumerable.Range(1, 8).Select(k => PolicySimulator.Run(new StaticPolicy(k), s)).ToList();
        foreach (var (state, k) in evaluation.OracleTable)
        {
            var rates = statics.Select(run => run.Rounds.Where(r => r.TrueState == state).ToList())
                .Select(rs => rs.Count == 0 ? double.MaxValue : rs.Sum(r => r.RoundSeconds) / rs.Sum(r => r.Accepted + 1)).ToList();
            Assert.Equal(rates.IndexOf(rates.Min()) + 1, k);
        }

        Assert.True(evaluation.OracleTable.Count >= 2);
        Assert.True(evaluation.OracleTable.OrderBy(p => p.Key).Select(p => p.Value).Order().SequenceEqual(evaluation.OracleTable.OrderBy(p => p.Key).Select(p => p.Value)));
        Assert.All(statics, st => Assert.True(evaluation.Oracle.MeanMsPerToken <= st.MeanMsPerToken, $"{st.Policy} {st.MeanMsPerToken} < oracle {evaluation.Oracle.MeanMsPerToken}"));
        Assert.Equal(statics.Min(st => st.MeanMsPerToken), evaluation.BestStatic.MeanMsPerToken, 9);
        Assert.Equal(0, evaluation.Oracle.RegretPct);
        Assert.All(evaluation.Runs, r => Assert.True(r.RegretPct >= -1e-9));
    }

    [Fact]
    public void The_simulation_is_deterministic_for_a_seed_and_its_acceptance_matches_the_profile()
    {
        var a = PolicySimulator.Run(new StaticPolicy(1), Settings("fixed:20", 20000));
        var b = PolicySimulator.Run(new StaticPolicy(1), Settings("fixed:20", 20000));
        Assert.Equal(a.MeanMsPerToken, b.MeanMsPerToken);
        // K = 1 measures α_1 directly: within 1.5 points of 0.88 over ~10,000 rounds.
        Assert.InRange(a.Acceptance, Alpha[0] - 0.015, Alpha[0] + 0.015);
        // A round at K=1 costs 1/v_d + 2·20 ms + 5 ms: time per token = that over (1 + α_1).
        Assert.InRange(a.MeanMsPerToken, (40 + 45) / 1.895, (40 + 45) / 1.865);
    }

    [Theory]
    [InlineData("fixed:-1")]
    [InlineData("markov:20,150")]
    [InlineData("sometimes")]
    [InlineData("file:/nonexistent/trace.csv")]
    public void Bad_delay_traces_are_refused_naming_the_spec(string spec) =>
        Assert.Contains(spec.Split(':')[0], Assert.Throws<ConfigSpecException>(() => DelayTrace.Parse(spec)).Message, StringComparison.Ordinal);

    [Fact]
    public void Markov_and_file_traces_give_the_delays_they_describe()
    {
        var markov = DelayTrace.Parse("markov:20,150,3", 9);
        var samples = Enumerable.Range(0, 6000).Select(i => markov.DelayMs(i * 0.1)).ToList();
        Assert.All(samples, d => Assert.Contains(d, new[] { 20.0, 150.0 }));
        var switches = samples.Zip(samples.Skip(1)).Count(p => p.First != p.Second);
        Assert.InRange(switches, 100, 300); // 600 s at a mean dwell of 3 s: about 200 switches
        var path = Path.Combine(Infrastructure.TestEnvironment.NewTemporaryDirectory(), "trace.csv");
        File.WriteAllText(path, "time_s,delay_ms\n0,10\n2,100\n4,30\n");
        var file = DelayTrace.Parse(path);
        Assert.Equal([10.0, 10.0, 100.0, 30.0, 10.0], new[] { 0, 1.9, 2, 4.5, 6.1 }.Select(file.DelayMs));
    }

    [Fact]
    public void Policy_specs_parse_with_their_options()
    {
        Assert.Equal(["static:2", "ucb-specstop:c=0.2,beta=0.5", "oracle"], DraftPolicies.SplitList("static:2, ucb-specstop:c=0.2,beta=0.5, oracle"));
        Assert.Equal(["ucb-specstop:c=0.2,probe", "ucb-specstop:probe", "oracle:late"], DraftPolicies.SplitList("ucb-specstop:c=0.2,probe,ucb-specstop:probe,oracle:late"));
        var ucb = Assert.IsType<UcbSpecStopPolicy>(DraftPolicies.Parse("ucb-specstop:c=0.2,beta=0.5,stop=0.3", 6));
        Assert.Equal((0.2, 0.5, 0.3, 6), (ucb.Exploration, ucb.Beta, ucb.ConfidenceStop, ucb.KMax));
        Assert.Contains("unknown draft-length policy", Assert.Throws<ConfigSpecException>(() => DraftPolicies.Parse("greedy", 8)).Message, StringComparison.Ordinal);
        Assert.Contains("needs a profile", Assert.Throws<SettingException>(() => DraftPolicies.Parse("profile", 8)).Message, StringComparison.Ordinal);
        Assert.Contains("evaluation", Assert.Throws<ConfigSpecException>(() => DraftPolicies.Parse("oracle", 8)).Message, StringComparison.Ordinal);
        Assert.Contains("'oracle:late' exists only in evaluation", Assert.Throws<ConfigSpecException>(() => DraftPolicies.Parse("oracle:late", 8)).Message, StringComparison.Ordinal);
        Assert.Throws<ConfigSpecException>(() => DraftPolicies.Parse("static:0", 8));
        var probe = Assert.IsType<UcbSpecStopPolicy>(DraftPolicies.Parse("ucb-specstop:probe", 8));
        Assert.True(probe.UsesProbe && probe.WantsLinkProbe);
        Assert.Equal("ucb-specstop:probe", probe.Name);
        Assert.False(Assert.IsType<UcbSpecStopPolicy>(DraftPolicies.Parse("ucb-specstop", 8)).WantsLinkProbe);
        // Only policies that stop on confidence make the drafter compute it.
        Assert.Equal((false, true, true), (DraftPolicies.Parse("ucb-specstop", 8).ReadsConfidence, ucb.ReadsConfidence, DraftPolicies.Parse("confidence:0.6", 8).ReadsConfidence));
        Assert.Contains("probe", Assert.Throws<ConfigSpecException>(() => DraftPolicies.Parse("ucb-specstop:probe=1", 8)).Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Drafts one block as the generator does: up to Choose(), asking StopDrafting after each token with the time so far and
    /// the probe's round trip once it is back (probeRtt after the round began). Returns the block's length.
    /// </summary>
    private static int DraftBlock(UcbSpecStopPolicy policy, Xoshiro256 rng, double tau, double wait, double probeRtt)
    {
        var k = policy.Choose();
        var n = 0;
        while (n < k)
        {
            n++;
            var elapsed = n * tau;
            if (policy.StopDrafting(new DraftProgress(n, 0.9, elapsed, probeRtt <= elapsed ? probeRtt : null)))
            {
                break;
            }
        }

        var accepted = 0;
        while (accepted < n && rng.NextDouble() < Alpha[accepted])
        {
            accepted++;
        }

        policy.Observe(new RoundObservation(n, accepted, n * tau, (n * tau) + wait, probeRtt));
        return n;
    }

    [Theory]
    [InlineData(0.040)] // 25 tokens/s: the first token ends as a fast probe would be back, so a rise shows one round late
    [InlineData(0.080)] // 12.5 tokens/s: a probe still out after the first token means the delay rose, in the same round
    public void With_a_link_probe_the_block_follows_a_delay_switch_in_the_same_round(double tau)
    {
        // Verifier 5 ms; 20 ms or 150 ms each way (waits 45 and 305 ms, probes back after 40 and 300 ms).
        var (lowK, highK) = (BestK(tau, 0.045), BestK(tau, 0.305));
        Assert.True(highK > lowK + 2);
        var policy = new UcbSpecStopPolicy(8, probe: true);
        var plain = new UcbSpecStopPolicy(8);
        var rng = new Xoshiro256(11);
        for (var r = 0; r < 600; r++)
        {
            var high = r / 50 % 2 == 1;
            DraftBlock(policy, rng, tau, high ? 0.305 : 0.045, high ? 0.300 : 0.040);
            DraftBlock(plain, rng, tau, high ? 0.305 : 0.045, high ? 0.300 : 0.040);
        }

        Assert.InRange(policy.ProbeOffsetSeconds, 0.0049, 0.0051); // the verifier's 5 ms beyond the probe's round trip
        Feed(0.045, 0.040);
        // The delay rises. Without a probe the block is the fast state's, one round late.
        Assert.Equal(lowK, DraftBlock(plain, rng, tau, 0.305, 0.300));
        var rising = DraftBlock(policy, rng, tau, 0.305, 0.300);
        if (tau > 0.045)
        {
            Assert.InRange(rising, highK - 1, highK + 1); // the probe was overdue after the first token: drafting went on
        }
        else
        {
            Assert.Equal(lowK, rising);
        }

        Feed(0.305, 0.300);
        // The delay falls. Without a probe the long block is drafted once more; with it the block stops at the first token
        // drafted after the probe is back.
        Assert.InRange(DraftBlock(plain, rng, tau, 0.045, 0.040), highK - 1, highK + 1);
        Assert.Equal(Math.Max(lowK, (int)Math.Ceiling(0.040 / tau)), DraftBlock(policy, rng, tau, 0.045, 0.040));
        Assert.Equal(lowK, DraftBlock(policy, rng, tau, 0.045, 0.040));
        // Never K = 0 and never above K_max, whatever the probe says.
        Assert.Equal(1, DraftBlock(policy, rng, tau, 0.0, 0.0));
        Assert.InRange(DraftBlock(policy, rng, tau, 5.0, 4.9), 1, 8);

        void Feed(double wait, double probe)
        {
            for (var r = 0; r < 5; r++)
            {
                DraftBlock(policy, rng, tau, wait, probe);
                DraftBlock(plain, rng, tau, wait, probe);
            }
        }
    }

    [Fact]
    public void In_simulation_the_probe_closes_most_of_the_gap_to_the_oracle_under_a_switching_delay()
    {
        var s = Settings("markov:20,150,3", 20_000);
        var result = PolicySimulator.Evaluate([() => new UcbSpecStopPolicy(8), () => new UcbSpecStopPolicy(8, probe: true)], s, lateOracle: true);
        var (plain, probe) = (result.Runs[0], result.Runs[1]);
        // The oracle's own table one round late: what learning the delay from the verdicts costs at best. The plain bandit
        // learns it that way and does not beat it by more than noise; the probe learns it within the round and does better
        // than the bandit without it.
        var late = Assert.IsType<PolicyRun>(result.LateOracle);
        Assert.Equal("oracle:late", late.Policy);
        Assert.True(late.RegretPct > 1, $"oracle:late {late.RegretPct} %");
        Assert.True(plain.RegretPct > late.RegretPct - 0.5, $"without the probe {plain.RegretPct} %, oracle:late {late.RegretPct} %");
        Assert.True(probe.MeanMsPerToken < plain.MeanMsPerToken, $"probe {probe.MeanMsPerToken} ms/token, without {plain.MeanMsPerToken}");
        Assert.True(probe.RegretPct < 3, $"regret with the probe {probe.RegretPct} %, without {plain.RegretPct} %");
        Assert.True(probe.MeanMsPerToken < result.BestStatic.MeanMsPerToken);
    }

    /// <summary>
    /// The pipelined simulation agrees with the pipelined model (a static K at a fixed delay, where the model is exact
    /// but for the token in progress when a cut arrives), beats sequential rounds where the round trip is long, and
    /// commits exactly the tokens it reports.
    /// </summary>
    [Theory]
    [InlineData(0.87, 2, 8, 100)]
    [InlineData(0.87, 4, 4, 100)]
    [InlineData(0.96, 8, 4, 100)]
    [InlineData(0.96, 4, 2, 20)]
    public void The_pipelined_simulation_agrees_with_the_pipelined_model(double alpha, int k, int d, double delayMs)
    {
        var a = Enumerable.Repeat(alpha, 12).ToList();
        var s = Settings($"fixed:{delayMs}", 60_000) with { Alpha = a, Pipeline = d };
        var run = PolicySimulator.Run(new StaticPolicy(k), s);
        var wait = (2 * delayMs / 1000) + s.VerifySeconds;
        var model = ConfigSpec.Profiling.Objectives.PipelinedModel.Episode([.. a.Select(x => (double?)x)], k, d, 1 / s.DraftTokensPerSecond, 0, wait);
        var simulated = 1000 / run.MeanMsPerToken;
        Assert.True(Math.Abs(simulated - model.Goodput) / model.Goodput < 0.04, $"simulated {simulated:0.00} tokens/s, model {model.Goodput:0.00}");
        Assert.Equal(run.Tokens, run.Rounds.Sum(r => r.Yield));
        // Of the drafts verified, a share below α: the drafts after a rejection in its block count as drafted too.
        Assert.InRange(run.Acceptance, 0.5, alpha + 0.01);
        var sequential = PolicySimulator.Run(new StaticPolicy(k), s with { Pipeline = 1 });
        if (delayMs >= 100)
        {
            Assert.True(run.MeanMsPerToken < sequential.MeanMsPerToken, $"pipelined {run.MeanMsPerToken:0.00} ms/token, sequential {sequential.MeanMsPerToken:0.00}");
        }
    }

    /// <summary>The policies choose K per block of a pipeline: ucb-specstop and the profile policy come near the oracle at a fixed long delay.</summary>
    [Fact]
    public void Policies_choose_K_per_block_in_a_pipeline_near_the_oracle()
    {
        var s = Settings("fixed:100", 20_000) with { Pipeline = 4 };
        var alpha = Alpha.Select(x => (double?)x).ToList();
        var result = PolicySimulator.Evaluate([
            () => ConfigSpec.Profiling.Objectives.PipelinedPolicies.Adapt(new UcbSpecStopPolicy(8), 4),
            () => new ProfilePolicy(Alpha, 0, 1 / s.DraftTokensPerSecond, 0.205, secondsPerToken: (k, w) =>
                1 / ConfigSpec.Profiling.Objectives.PipelinedModel.Episode(alpha, k, 4, 1 / s.DraftTokensPerSecond, 0, w).Goodput),
        ], s);
        var (ucb, profile) = (result.Runs[0], result.Runs[1]);
        Assert.True(profile.RegretPct < 3, $"profile {profile.RegretPct:0.00} % over the oracle (K {profile.MeanK:0.00}, best static {result.BestStatic.Policy})");
        Assert.True(ucb.RegretPct < 10, $"ucb-specstop {ucb.RegretPct:0.00} % over the oracle (K {ucb.MeanK:0.00}, best static {result.BestStatic.Policy})");
        var sequential = PolicySimulator.Evaluate([() => new UcbSpecStopPolicy(8)], s with { Pipeline = 1 });
        Assert.True(result.Oracle.MeanMsPerToken < sequential.Oracle.MeanMsPerToken,
            $"pipelined oracle {result.Oracle.MeanMsPerToken:0.00} ms/token, sequential {sequential.Oracle.MeanMsPerToken:0.00}");
    }

    private static SimulationSettings Settings(string delay, int tokens) => new()
    {
        Alpha = Alpha,
        DraftTokensPerSecond = 25,
        VerifySeconds = 0.005,
        Delay = DelayTrace.Parse(delay, 1),
        Tokens = tokens,
        Seed = 1,
    };

    /// <summary>
    /// The pace holds: a token due at 1/300 s is not released before then (a sleep truncated to whole milliseconds gave
    /// 3 ms, and a paced run measured a little over the rate asked for).
    /// </summary>
    [Fact]
    public void A_paced_token_is_not_released_before_its_time()
    {
        var paced = new PacedPolicy(new StaticPolicy(4), 300);
        for (var i = 0; i < 20; i++)
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            paced.StopDrafting(new DraftProgress(1, double.NaN, 0));
            Assert.True(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds >= 1.0 / 300, "released early");
        }
    }
}
