using ConfigSpec.Interop;
using ConfigSpec.Profiling.Measurement;
using ConfigSpec.Speculative.Policies;
using ConfigSpec.Speculative.Sampling;

namespace ConfigSpec.Profiling.Adaptive;

/// <summary>
/// A board and link for the simulation: per-position acceptance and drafting speed (from a profile, or given), the
/// verifier's own time, and the one-way delay over time.
/// </summary>
public sealed record SimulationSettings
{
    /// <summary>Conditional acceptance rate of each draft position (α_1..α_Kmax).</summary>
    public required IReadOnlyList<double> Alpha { get; init; }

    public required double DraftTokensPerSecond { get; init; }

    /// <summary>Fixed drafting cost per block (the first token after a wait), seconds.</summary>
    public double OverheadSeconds { get; init; }

    /// <summary>The verifier's own time per round, seconds (added to twice the one-way delay).</summary>
    public double VerifySeconds { get; init; } = 0.005;

    public required DelayTrace Delay { get; init; }

    /// <summary>Tokens to generate per policy.</summary>
    public int Tokens { get; init; } = 20_000;

    public ulong Seed { get; init; } = 1;

    /// <summary>Blocks in flight at once (D); 1 is sequential rounds.</summary>
    public int Pipeline { get; init; } = 1;

    public void Validate()
    {
        if (!Contracts.PipelineDepth.IsValid(Pipeline))
        {
            throw new SettingException("pipeline", $"{Pipeline} is out of range ({Contracts.PipelineDepth.Range})");
        }

        if (Alpha.Count is < 1 or > 32 || Alpha.Any(a => a is < 0 or > 1 || double.IsNaN(a)))
        {
            throw new ConfigSpecException("simulation: 1..32 acceptance rates in [0, 1] are needed");
        }

        if (DraftTokensPerSecond <= 0 || OverheadSeconds < 0 || VerifySeconds < 0 || Tokens < 1)
        {
            throw new ConfigSpecException("simulation: drafting speed and tokens must be positive, overhead and verify time non-negative");
        }
    }
}

/// <summary>
/// One simulated (or measured) round. In a pipeline, <see cref="RoundSeconds"/> is the time since the verdict before
/// (blocks overlap, so their own round trips do not add up) and <see cref="Committed"/> what the verdict committed: a
/// block accepted whole with a block chained after it brings no verifier token.
/// </summary>
public sealed record SimulatedRound(double Start, int K, int Drafted, int Accepted, double RoundSeconds, double DelayMs, int TrueState)
{
    /// <summary>Tokens the verdict committed; null is a sequential round's accepted drafts and the verifier's token.</summary>
    public int? Committed { get; init; }

    /// <summary>Tokens this round added to the output.</summary>
    public int Yield => Committed ?? Accepted + 1;
}

/// <summary>A policy's run: time per generated token (mean over all tokens, p95 over tokens), mean K, acceptance.</summary>
public sealed record PolicyRun(string Policy, double MeanMsPerToken, double P95MsPerToken, double MeanK, double Acceptance, int Tokens, double Seconds,
    IReadOnlyList<SimulatedRound> Rounds)
{
    /// <summary>Regret against the oracle's mean time per token, percent (null before the oracle is known).</summary>
    public double? RegretPct { get; init; }
}

/// <summary>
/// The policies of one evaluation, with the oracle and the best single static K found over every K, and (when asked
/// for) the oracle one round late.
/// </summary>
public sealed record PolicyEvaluation(IReadOnlyList<PolicyRun> Runs, PolicyRun Oracle, PolicyRun BestStatic, IReadOnlyDictionary<int, int> OracleTable)
{
    public PolicyRun? LateOracle { get; init; }
}

/// <summary>
/// Drives the same policy code as generation with a model of the board and the link. Per drafted token the draft's
/// probability of its own token is drawn as p ~ Beta(κα, κ(1 − α)) with κ = 2 (mean α, and the wide spread of real draft
/// confidences), and the token is accepted with probability p — a calibrated draft, so acceptance keeps rate α and the
/// confidence policy has a real signal (a modelling assumption: profiles do not record confidences). The first
/// rejection ends the accepted prefix. The draws are common random numbers: each is fixed by the seed, the output
/// position its block starts at and its position in the block, so two policies that draft the same block there meet
/// the same outcome and their difference is not buried in sampling noise. A policy that reads a link probe gets one
/// back twice the one-way delay after the round begins. A round costs overhead + drafted / v_d + 2 × delay(t) + verifier time.
/// </summary>
public static class PolicySimulator
{
    public static PolicyRun Run(IDraftLengthPolicy policy, SimulationSettings s, Action<int>? trueState = null)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(s);
        s.Validate();
        if (s.Pipeline > 1)
        {
            return RunPipelined(policy, s, trueState);
        }

        var rounds = new List<SimulatedRound>();
        double clock = 0;
        var tokens = 0;
        while (tokens < s.Tokens)
        {
            var delayMs = s.Delay.DelayMs(clock);
            var state = DelayStates.Of((2 * delayMs / 1000) + s.VerifySeconds);
            trueState?.Invoke(state);
            var k = Math.Clamp(policy.Choose(), 1, Math.Min(policy.KMax, s.Alpha.Count));
            // A link probe sent as the round begins comes back after the link's round trip (no verifier time).
            double? probe = policy.WantsLinkProbe ? 2 * delayMs / 1000 : null;
            var n = 0;
            var prefix = 0;
            var rejected = false;
            while (n < k)
            {
                // Common random numbers: the draw for a draft depends only on the seed, the output position the block
                // starts at and the position in the block, so policies meet the same luck wherever their blocks line up.
                var rng = Xoshiro256.ForStream(s.Seed, ((ulong)tokens * 64) + (ulong)n);
                var p = Beta(rng, Concentration * s.Alpha[n], Concentration * (1 - s.Alpha[n]));
                var accept = rng.NextDouble() < p;
                n++;
                if (!rejected && accept)
                {
                    prefix++;
                }
                else
                {
                    rejected = true;
                }

                var elapsed = s.OverheadSeconds + (n / s.DraftTokensPerSecond);
                if (policy.StopDrafting(new DraftProgress(n, p, elapsed, probe <= elapsed ? probe : null)))
                {
                    break;
                }
            }

            var draftSeconds = s.OverheadSeconds + (n / s.DraftTokensPerSecond);
            var roundSeconds = draftSeconds + (2 * delayMs / 1000) + s.VerifySeconds;
            policy.Observe(new RoundObservation(n, prefix, draftSeconds, roundSeconds, probe));
            rounds.Add(new SimulatedRound(clock, k, n, prefix, roundSeconds, delayMs, state));
            clock += roundSeconds;
            tokens += prefix + 1;
        }

        return Summarise(policy.Name, rounds);
    }

    /// <summary>
    /// Pipelined rounds, as generation runs them: the board drafts the next block (its K chosen by the policy) while
    /// verdicts travel, with up to D blocks in flight, each sent when drafted and verified in order, a block after one
    /// accepted whole as its continuation (the acceptance draws run on along the chain: position p of a chain has α_p,
    /// past K_max the mean of the profiled rates, with common random numbers keyed by where the chain starts). The first rejection cuts the chain
    /// when its block's verdict arrives: later blocks are discarded, and a block being drafted then stops at the end of
    /// the token in progress. The policy observes each verified block (its drafting time and send-to-verdict time).
    /// </summary>
    private static PolicyRun RunPipelined(IDraftLengthPolicy policy, SimulationSettings s, Action<int>? trueState)
    {
        var rounds = new List<SimulatedRound>();
        var inFlight = new List<SimBlock>();
        double clock = 0, lastVerdict = 0;
        var tokens = 0;
        var chainStart = 0;   // output position the chain starts at (the common random numbers' key)
        var chainDrafted = 0; // drafts in the chain so far
        var chainCut = false; // a draft of the chain was rejected (the board learns it with that block's verdict)
        while (tokens < s.Tokens)
        {
            // Verdicts that have arrived are applied in order.
            while (inFlight.Count > 0 && inFlight[0].Verdict <= clock)
            {
                var head = inFlight[0];
                inFlight.RemoveAt(0);
                var committed = head.Accepted + (head.Cut ? 1 : 0);
                rounds.Add(new SimulatedRound(head.Start, head.K, head.Drafted, head.Accepted, head.Verdict - lastVerdict, head.DelayMs, head.State) { Committed = committed });
                lastVerdict = head.Verdict;
                policy.Observe(new RoundObservation(head.Drafted, head.Accepted, head.DraftSeconds, head.Verdict - head.Start, head.Probe));
                tokens += committed;
                if (head.Cut)
                {
                    inFlight.Clear();
                    (chainStart, chainDrafted, chainCut) = (tokens, 0, false);
                }
            }

            if (tokens >= s.Tokens)
            {
                break;
            }

            if (inFlight.Count >= s.Pipeline)
            {
                clock = inFlight[0].Verdict;
                continue;
            }

            var delayMs = s.Delay.DelayMs(clock);
            var state = DelayStates.Of((2 * delayMs / 1000) + s.VerifySeconds);
            trueState?.Invoke(state);
            var k = Math.Clamp(policy.Choose(), 1, Math.Min(policy.KMax, s.Alpha.Count));
            double? probe = policy.WantsLinkProbe ? 2 * delayMs / 1000 : null;
            // The board hears of a cut when the verdict of the block holding the rejection arrives.
            var cutKnown = inFlight.FirstOrDefault(b => b.Cut)?.Verdict ?? double.PositiveInfinity;
            var start = clock;
            var n = 0;
            var accepted = 0;
            var voided = false;
            while (n < k)
            {
                var position = chainDrafted + n; // 0-based position in the chain
                var rng = Xoshiro256.ForStream(s.Seed, ((ulong)chainStart << 20) + (ulong)position);
                var alpha = position < s.Alpha.Count ? s.Alpha[position] : s.Alpha.Average(); // past the profiled positions, their mean (as the model)
                var p = Beta(rng, Concentration * alpha, Concentration * (1 - alpha));
                var accept = rng.NextDouble() < p;
                n++;
                if (!chainCut && accept && accepted == n - 1)
                {
                    accepted++;
                }

                var elapsed = s.OverheadSeconds + (n / s.DraftTokensPerSecond);
                if (start + elapsed >= cutKnown)
                {
                    voided = true; // the verdict came in while this token was drafted: the block is dropped
                    break;
                }

                if (policy.StopDrafting(new DraftProgress(n, p, elapsed, probe <= elapsed ? probe : null)))
                {
                    break;
                }
            }

            var draftSeconds = s.OverheadSeconds + (n / s.DraftTokensPerSecond);
            clock = start + draftSeconds;
            if (voided)
            {
                continue;
            }

            var cut = !chainCut && accepted < n;
            var verdict = Math.Max(clock + (2 * delayMs / 1000) + s.VerifySeconds, inFlight.Count > 0 ? inFlight[^1].Verdict : 0);
            inFlight.Add(new SimBlock(start, k, n, chainCut ? 0 : accepted, cut, draftSeconds, verdict, delayMs, state, probe));
            chainDrafted += n;
            chainCut |= cut;
        }

        return Summarise(policy.Name, rounds);
    }

    private sealed record SimBlock(double Start, int K, int Drafted, int Accepted, bool Cut, double DraftSeconds, double Verdict, double DelayMs, int State, double? Probe);

    /// <summary>
    /// Runs every static K from 1 to K_max (for the best static K in hindsight and the oracle's table: the best K for each
    /// true delay state over those runs), then the oracle, then the given policies; regrets are against the oracle.
    /// </summary>
    public static PolicyEvaluation Evaluate(IReadOnlyList<Func<IDraftLengthPolicy>> policies, SimulationSettings s, bool lateOracle = false)
    {
        ArgumentNullException.ThrowIfNull(s);
        return EvaluateAsync(policies, s.Alpha.Count, (policy, tellState) => Task.FromResult(Run(policy, s, tellState)), lateOracle: lateOracle).GetAwaiter().GetResult();
    }

    /// <summary>
    /// The evaluation with any way of running a policy (simulated or with real models): <paramref name="run"/> runs one
    /// policy over the whole trace, telling the second argument (when given) the true delay state before each round's K.
    /// With <paramref name="parallel"/> &gt; 1 that many runs go at once: first the static ones, then the oracle (whose
    /// table needs them) with the given policies. <paramref name="lateOracle"/> adds <c>oracle:late</c>.
    /// </summary>
    public static async Task<PolicyEvaluation> EvaluateAsync(IReadOnlyList<Func<IDraftLengthPolicy>> policies, int kMax,
        Func<IDraftLengthPolicy, Action<int>?, Task<PolicyRun>> run, int parallel = 1, bool lateOracle = false)
    {
        ArgumentNullException.ThrowIfNull(policies);
        ArgumentNullException.ThrowIfNull(run);
        if (parallel < 1)
        {
            throw new ConfigSpecException($"parallel runs {parallel} must be at least 1");
        }

        var statics = await RunAllAsync([.. Enumerable.Range(1, kMax).Select(k => (Func<Task<PolicyRun>>)(() => run(new StaticPolicy(k), null)))], parallel)
            .ConfigureAwait(false);
        var table = OracleTable(statics);
        var current = 0;
        int? lateNow = null, lateBefore = null;
        List<Func<Task<PolicyRun>>> jobs = [() => run(new OraclePolicy(table, () => current, kMax), state => current = state)];
        if (lateOracle)
        {
            // The state of the round before (the first round, with nothing before it, gets its own).
            jobs.Add(() => run(new OraclePolicy(table, () => lateBefore ?? lateNow ?? 0, kMax, "oracle:late"), state => (lateBefore, lateNow) = (lateNow, state)));
        }

        var first = jobs.Count;
        jobs.AddRange(policies.Select(make => (Func<Task<PolicyRun>>)(() => run(make(), null))));
        var rest = await RunAllAsync(jobs, parallel).ConfigureAwait(false);
        var oracle = rest[0];
        var runs = rest.Skip(first).Select(r => WithRegret(r, oracle)).ToList();
        var bestStatic = statics.MinBy(r => r.MeanMsPerToken)!;
        return new PolicyEvaluation(runs, oracle with { RegretPct = 0 }, WithRegret(bestStatic, oracle), table)
        {
            LateOracle = lateOracle ? WithRegret(rest[1], oracle) : null,
        };
    }

    /// <summary>Runs the jobs in order, at most <paramref name="parallel"/> at once; results in the jobs' order.</summary>
    private static async Task<List<PolicyRun>> RunAllAsync(List<Func<Task<PolicyRun>>> jobs, int parallel)
    {
        if (parallel == 1)
        {
            var done = new List<PolicyRun>(jobs.Count);
            foreach (var job in jobs)
            {
                done.Add(await job().ConfigureAwait(false));
            }

            return done;
        }

        using var gate = new SemaphoreSlim(parallel);
        var tasks = jobs.Select(async job =>
        {
            await gate.WaitAsync().ConfigureAwait(false);
            try
            {
                return await job().ConfigureAwait(false);
            }
            finally
            {
                gate.Release();
            }
        }).ToList();
        return [.. await Task.WhenAll(tasks).ConfigureAwait(false)];
    }

    private const double Concentration = 2;

    /// <summary>Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b); the edge cases a = 0 or b = 0 give 0 or 1.</summary>
    private static double Beta(Xoshiro256 rng, double a, double b)
    {
        if (a <= 0)
        {
            return 0;
        }

        if (b <= 0)
        {
            return 1;
        }

        var x = Gamma(rng, a);
        var y = Gamma(rng, b);
        return x + y > 0 ? x / (x + y) : a / (a + b);
    }

    /// <summary>Gamma(shape, 1) by Marsaglia and Tsang's method (shape &lt; 1 through Gamma(shape + 1)·U^(1/shape)).</summary>
    private static double Gamma(Xoshiro256 rng, double shape)
    {
        if (shape < 1)
        {
            return Gamma(rng, shape + 1) * Math.Pow(1 - rng.NextDouble(), 1 / shape);
        }

        var d = shape - (1.0 / 3);
        var c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do
            {
                // Box–Muller normal.
                x = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
                v = 1 + (c * x);
            }
            while (v <= 0);

            v = v * v * v;
            var u = 1 - rng.NextDouble();
            if (Math.Log(u) < (0.5 * x * x) + d - (d * v) + (d * Math.Log(v)))
            {
                return d * v;
            }
        }
    }

    private static double Regret(PolicyRun run, PolicyRun oracle) => 100 * (run.MeanMsPerToken - oracle.MeanMsPerToken) / oracle.MeanMsPerToken;

    /// <summary>Seconds per token over a set of rounds (NaN when empty).</summary>
    private static double Rate(List<SimulatedRound> rounds) =>
        rounds.Count == 0 || rounds.Sum(r => r.Yield) == 0 ? double.NaN : rounds.Sum(r => r.RoundSeconds) / rounds.Sum(r => r.Yield);

    /// <summary>
    /// A run's figures from its rounds (simulated or with real models): time per token over all tokens, its p95 over
    /// tokens (every token of a round took the round's time per token), mean K drafted, acceptance.
    /// </summary>
    public static PolicyRun Summarise(string name, IReadOnlyList<SimulatedRound> rounds)
    {
        ArgumentNullException.ThrowIfNull(rounds);
        var seconds = rounds.Sum(r => r.RoundSeconds);
        var tokens = rounds.Sum(r => r.Yield);
        var drafted = rounds.Sum(r => (long)r.Drafted);
        var accepted = rounds.Sum(r => (long)r.Accepted);
        var perToken = new List<double>(tokens);
        foreach (var r in rounds.Where(r => r.Yield > 0))
        {
            var ms = 1000 * r.RoundSeconds / r.Yield;
            for (var i = 0; i < r.Yield; i++)
            {
                perToken.Add(ms);
            }
        }

        return new PolicyRun(name, 1000 * seconds / tokens, Statistics.Percentile(perToken, 0.95), (double)drafted / rounds.Count,
            drafted > 0 ? (double)accepted / drafted : 0, tokens, seconds, [.. rounds]);
    }

    /// <summary>The oracle's table from runs at every static K: for each true state, the K with the least time per token there.</summary>
    public static Dictionary<int, int> OracleTable(IReadOnlyList<PolicyRun> statics)
    {
        ArgumentNullException.ThrowIfNull(statics);
        var table = new Dictionary<int, int>();
        foreach (var state in statics.SelectMany(r => r.Rounds).Select(r => r.TrueState).Distinct())
        {
            table[state] = statics
                .Select((run, i) => (K: i + 1, Rate: Rate(run.Rounds.Where(r => r.TrueState == state).ToList())))
                .Where(x => !double.IsNaN(x.Rate))
                .MinBy(x => x.Rate).K;
        }

        return table;
    }

    /// <summary>Regret of each run against the oracle, percent.</summary>
    public static PolicyRun WithRegret(PolicyRun run, PolicyRun oracle)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(oracle);
        return run with { RegretPct = Regret(run, oracle) };
    }
}
