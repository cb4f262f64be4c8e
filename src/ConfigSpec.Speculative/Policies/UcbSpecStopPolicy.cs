using ConfigSpec.Contracts;
using System.Globalization;
using ConfigSpec.Interop;

namespace ConfigSpec.Speculative.Policies;

/// <summary>
/// Delay states: the verification wait (network round trip plus verifier time) in log-spaced buckets, so a state spans
/// a doubling of delay. Edges in milliseconds: 2, 5, 10, 20, 40, 80, 160, 320, 640 (state 0 below 2 ms, 9 above 640).
/// </summary>
public static class DelayStates
{
    public static readonly double[] EdgesMs = [2, 5, 10, 20, 40, 80, 160, 320, 640];

    public static int Count => EdgesMs.Length + 1;

    public static int Of(double waitSeconds)
    {
        var ms = waitSeconds * 1000;
        var s = 0;
        while (s < EdgesMs.Length && ms >= EdgesMs[s])
        {
            s++;
        }

        return s;
    }

    public static string Describe(int state) => state switch
    {
        0 => string.Create(CultureInfo.InvariantCulture, $"<{EdgesMs[0]} ms"),
        _ when state >= EdgesMs.Length => string.Create(CultureInfo.InvariantCulture, $">={EdgesMs[^1]} ms"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{EdgesMs[state - 1]}-{EdgesMs[state]} ms"),
    };
}

/// <summary>
/// <c>ucb-specstop</c>: an upper-confidence-bound bandit over draft lengths 1..K_max, contextualised by the delay.
/// <list type="bullet">
/// <item>State: an EWMA of the observed verification wait w (round time minus drafting time), weight β on the newest round
/// (default 1: the last wait, which reacts within one round to a delay switch; lower values smooth jitter), bucketed by
/// <see cref="DelayStates"/>; each state keeps the mean wait seen in it.</item>
/// <item>Reward: minus the time per generated token of a round, −(t_draft(K) + w) / (A + 1).</item>
/// <item>Structure exploited: the reward's delay-free parts are learned once for all states. Every round tells, for each
/// position it reached (all earlier drafts accepted), whether that position was accepted, so the conditional acceptance
/// rate α̂_i of every position is learned from blocks of any length; drafting time is fitted as t0 + j·τ by least squares
/// over rounds. The expected cost of K = j at wait w is (t0 + j·τ + w) / (E_j + 1), E_j = Σ_{i≤j} Π_{m≤i} α_m.</item>
/// <item>Index: each α_i is estimated as (a_i + m·α̃_{i−1}) / (r_i + m) — a_i acceptances in r_i rounds that reached position i,
/// shrunk with m = 4 pseudo-observations towards the previous position's estimate (0.5 for position 1), since acceptance
/// changes slowly with position and late positions are reached rarely — and replaced by its upper confidence bound
/// min(1, α̃_i + c·√(ln N / (r_i + m))) (N rounds so far); K = argmin of the resulting optimistic cost at the current wait.
/// Exploration constant c = 0.05 by default (in simulation c = 0.1 paid 1–2 points more regret under a switching delay,
/// and c = 0.02 settled on a K too short at a fixed 50 ms).</item>
/// <item>Threshold: the chosen K never falls below the choice for any lower-delay state already visited (K does not
/// decrease as delay grows).</item>
/// <item>Optional early stop: with a confidence threshold P &gt; 0 a block also stops once the draft's probability of its
/// token falls below P.</item>
/// <item>Optional link probe (<c>probe</c>): the wait of the last round is one round late when the delay switches, which
/// no policy that learns the delay from its own rounds can avoid (the oracle knows the state at once). With a probe —
/// a tiny message the link echoes, sent as the round begins (<see cref="ILinkProbe"/>) — the block's length is decided
/// while drafting: K is drafted up to K_max and, after each token, once the probe is back the block stops at the K
/// chosen for the wait it implies (its round trip plus the learned difference between the verdict's wait and the
/// probe's round trip); while it is still out, the wait is at least the time elapsed plus that difference, and the
/// block goes on to the K chosen for the last wait while that is consistent with the bound, or, once the probe is
/// overdue, for the mean wait of the lowest delay state seen above the bound. Without probes seen it behaves as without
/// the option.</item>
/// </list>
/// </summary>
public sealed class UcbSpecStopPolicy : IDraftLengthPolicy
{
    /// <summary>Pseudo-observations each position borrows from the one before it (position 1 from 0.5).</summary>
    private const double PriorWeight = 4;
    private readonly long[] _reached;
    private readonly long[] _acceptedAt;
    private readonly double[] _stateWaitSum;
    private readonly long[] _stateRounds;
    private double _ewmaWait = double.NaN;
    private long _rounds;
    private double _sx, _sy, _sxx, _sxy;
    private long _fits;
    private double _probeOffset;
    private long _probes;

    /// <summary>The exploration constant c unless given.</summary>
    public const double DefaultExploration = 0.05;

    public UcbSpecStopPolicy(int kMax, double exploration = DefaultExploration, double confidenceStop = 0, double smoothing = 1, bool probe = false)
    {
        UsesProbe = probe;
        if (smoothing is <= 0 or > 1 || double.IsNaN(smoothing))
        {
            throw new ConfigSpecException("ucb-specstop: the wait smoothing β must lie in (0, 1]");
        }

        Beta = smoothing;
        if (!DraftLength.IsValid(kMax))
        {
            throw new ConfigSpecException($"ucb-specstop: K_max {kMax} must be {DraftLength.Range}");
        }

        if (exploration < 0 || double.IsNaN(exploration))
        {
            throw new ConfigSpecException("ucb-specstop: the exploration constant must be zero or positive");
        }

        if (confidenceStop is < 0 or >= 1 || double.IsNaN(confidenceStop))
        {
            throw new ConfigSpecException("ucb-specstop: the early-stop confidence must lie in [0, 1)");
        }

        KMax = kMax;
        Exploration = exploration;
        ConfidenceStop = confidenceStop;
        _reached = new long[kMax + 1];
        _acceptedAt = new long[kMax + 1];
        _stateWaitSum = new double[DelayStates.Count];
        _stateRounds = new long[DelayStates.Count];
    }

    /// <summary>The spec it was built from: <c>ucb-specstop</c> with the options that differ from the defaults.</summary>
    public string Name
    {
        get
        {
            var options = new List<string>();
            if (Exploration != DefaultExploration)
            {
                options.Add(string.Create(CultureInfo.InvariantCulture, $"c={Exploration}"));
            }

            if (Beta != 1)
            {
                options.Add(string.Create(CultureInfo.InvariantCulture, $"beta={Beta}"));
            }

            if (ConfidenceStop > 0)
            {
                options.Add(string.Create(CultureInfo.InvariantCulture, $"stop={ConfidenceStop}"));
            }

            if (UsesProbe)
            {
                options.Add("probe");
            }

            return options.Count == 0 ? "ucb-specstop" : "ucb-specstop:" + string.Join(',', options);
        }
    }

    /// <summary>Decides the block's length while drafting from a link probe (see the class remarks).</summary>
    public bool UsesProbe { get; }

    public bool WantsLinkProbe => UsesProbe;

    public bool ReadsConfidence => ConfidenceStop > 0;

    /// <summary>The learned difference between a round's wait and its probe's round trip (verifier time, the far hop), seconds.</summary>
    public double ProbeOffsetSeconds => _probeOffset;

    public int KMax { get; }

    public double Exploration { get; }

    public double ConfidenceStop { get; }

    /// <summary>EWMA weight of the newest wait (1 = the last round's wait alone).</summary>
    public double Beta { get; }

    /// <summary>The current delay state (from the EWMA of the wait; state 0 before any round).</summary>
    public int State => double.IsNaN(_ewmaWait) ? 0 : DelayStates.Of(_ewmaWait);

    public int Choose()
    {
        // One full block first: it measures every position at once. With probes coming back, the block's length is decided
        // while drafting (StopDrafting), so the cap is K_max.
        return _rounds == 0 || (UsesProbe && _probes > 0) ? KMax : KFor(_ewmaWait);
    }

    /// <summary>The K for a wait: the best at that wait, and no less than the choice for any lower-delay state visited.</summary>
    private int KFor(double wait)
    {
        var state = DelayStates.Of(wait);
        var k = Best(wait);
        for (var lower = 0; lower < state; lower++)
        {
            if (_stateRounds[lower] > 0)
            {
                k = Math.Max(k, Best(_stateWaitSum[lower] / _stateRounds[lower]));
            }
        }

        return k;
    }

    public void Observe(RoundObservation round)
    {
        if (round.Drafted < 0 || round.Accepted < 0 || round.Accepted > round.Drafted)
        {
            throw new ArgumentOutOfRangeException(nameof(round), round, "accepted must lie in 0..drafted");
        }

        _rounds++;
        var drafted = Math.Min(round.Drafted, KMax);
        for (var i = 1; i <= Math.Min(drafted, round.Accepted + 1); i++)
        {
            _reached[i]++;
            if (i <= round.Accepted)
            {
                _acceptedAt[i]++;
            }
        }

        if (round.Drafted > 0)
        {
            _sx += round.Drafted;
            _sy += round.DraftSeconds;
            _sxx += (double)round.Drafted * round.Drafted;
            _sxy += round.Drafted * round.DraftSeconds;
            _fits++;
        }

        var w = round.WaitSeconds;
        if (UsesProbe && round.LinkRoundTripSeconds is { } probe && probe >= 0)
        {
            // The wait the verdict saw beyond the probe's round trip (verifier time and the hop past the broker).
            _probes++;
            var gap = Math.Max(0, w - probe);
            _probeOffset = _probes == 1 ? gap : _probeOffset + ((gap - _probeOffset) / Math.Min(_probes, 20));
        }

        _ewmaWait = double.IsNaN(_ewmaWait) ? w : ((1 - Beta) * _ewmaWait) + (Beta * w);
        var s = DelayStates.Of(_ewmaWait);
        _stateWaitSum[s] += _ewmaWait;
        _stateRounds[s]++;
    }

    public bool StopDrafting(in DraftProgress progress)
    {
        if (ConfidenceStop > 0 && progress.TopProbability < ConfidenceStop)
        {
            return true;
        }

        if (!UsesProbe || _probes == 0 || _rounds == 0)
        {
            return false; // the block is as long as chosen
        }

        var target = progress.LinkRoundTripSeconds is { } rtt
            ? KFor(rtt + _probeOffset)
            : KFor(WaitAtLeast(progress.ElapsedSeconds + _probeOffset));
        return progress.Drafted >= Math.Max(1, target);
    }

    /// <summary>
    /// The wait to plan for while the probe is out and the wait is known to be at least <paramref name="bound"/>: the last
    /// wait while that is consistent with the bound (a quarter and 1 ms of slack for jitter); once the probe is overdue, the
    /// mean wait of the lowest delay state visited that lies above the bound (the delay rose, most likely to a level seen
    /// before), or the bound itself.
    /// </summary>
    private double WaitAtLeast(double bound)
    {
        if (bound <= (1.25 * _ewmaWait) + 0.001)
        {
            return Math.Max(_ewmaWait, bound);
        }

        var next = double.PositiveInfinity;
        for (var s = 0; s < _stateRounds.Length; s++)
        {
            if (_stateRounds[s] > 0 && _stateWaitSum[s] / _stateRounds[s] is var mean && mean >= bound && mean < next)
            {
                next = mean;
            }
        }

        return double.IsPositiveInfinity(next) ? bound : next;
    }

    /// <summary>
    /// For pipelined rounds (blocks in flight, D ≥ 2): the model's seconds per generated token for (α by chain position,
    /// K, τ, t0, wait), set by the front end that pipelines; null = the sequential round's (t0 + K·τ + w) / (E_K + 1).
    /// The bandit's optimistic α per position (1..K_max) go in; the wait it observes is a block's send-to-verdict time.
    /// </summary>
    public Func<IReadOnlyList<double?>, int, double, double, double, double>? PipelinedCost { get; set; }

    /// <summary>The optimistic expected seconds per token of K = <paramref name="k"/> at wait <paramref name="wait"/>.</summary>
    public double OptimisticCost(int k, double wait)
    {
        var (t0, tau) = DraftTime();
        if (PipelinedCost is { } pipelined)
        {
            // A chain runs past K, so every position's optimistic rate matters; capped below 1, where the model would
            // follow a chain that never breaks (0.995: chains of ~200 tokens, long past any choice of K).
            var rates = new double?[KMax];
            double before = 0.5;
            var logN = Math.Log(_rounds + 1);
            for (var i = 1; i <= KMax; i++)
            {
                var shrunk = (_acceptedAt[i] + (PriorWeight * before)) / (_reached[i] + PriorWeight);
                before = shrunk;
                rates[i - 1] = Math.Min(0.995, shrunk + (Exploration * Math.Sqrt(logN / (_reached[i] + PriorWeight))));
            }

            return pipelined(rates, k, tau, t0, wait);
        }

        double expected = 0, prefix = 1, previous = 0.5;
        var log = Math.Log(_rounds + 1);
        for (var i = 1; i <= k; i++)
        {
            // Shrunk towards the previous position's rate (positions rarely reached borrow from their neighbour).
            var shrunk = (_acceptedAt[i] + (PriorWeight * previous)) / (_reached[i] + PriorWeight);
            previous = shrunk;
            var alpha = Math.Min(1, shrunk + (Exploration * Math.Sqrt(log / (_reached[i] + PriorWeight))));
            prefix *= alpha;
            expected += prefix;
        }

        return (t0 + (k * tau) + wait) / (expected + 1);
    }

    private int Best(double wait)
    {
        var best = 1;
        var bestCost = double.PositiveInfinity;
        for (var k = 1; k <= KMax; k++)
        {
            var cost = OptimisticCost(k, wait);
            if (cost < bestCost - 1e-15)
            {
                best = k;
                bestCost = cost;
            }
        }

        return best;
    }

    /// <summary>Drafting time t0 + K·τ by least squares over the rounds (τ alone while every block had the same length).</summary>
    private (double T0, double Tau) DraftTime()
    {
        if (_fits == 0)
        {
            return (0, 0);
        }

        var n = (double)_fits;
        var variance = _sxx - (_sx * _sx / n);
        if (variance > 1e-9)
        {
            var tau = (_sxy - (_sx * _sy / n)) / variance;
            var t0 = (_sy - (tau * _sx)) / n;
            if (tau > 0 && t0 >= 0)
            {
                return (t0, tau);
            }
        }

        return (0, _sx > 0 ? _sy / _sx : 0);
    }
}
