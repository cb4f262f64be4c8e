using System.Globalization;
using ConfigSpec.Interop;

namespace ConfigSpec.Speculative.Policies;

/// <summary>
/// <c>profile</c>: the K a profile predicts best, (t0 + K·τ + w) / (E_K + 1) minimal, for the wait w it assumes; when the
/// EWMA of the observed wait drifts from that assumption by more than <c>drift</c> (a fraction, 0.25 by default; at
/// least 1 ms), the assumption moves to the observed wait and K is chosen again.
/// </summary>
public sealed class ProfilePolicy : IDraftLengthPolicy
{
    private readonly double[] _expectedTokens;
    private readonly double _t0;
    private readonly double _tau;
    private readonly double _drift;
    private readonly Func<int, double, double>? _secondsPerToken;
    private double _assumedWait;
    private double _ewmaWait = double.NaN;
    private int _k;

    /// <param name="alpha">Per-position conditional acceptance rates from the profile (length = K_max).</param>
    /// <param name="secondsPerToken">
    /// The model's seconds per generated token for (K, wait), when it is not the sequential round's (pipelined rounds
    /// give their own); null = (t0 + K·τ + w) / (E_K + 1).
    /// </param>
    public ProfilePolicy(IReadOnlyList<double> alpha, double overheadSeconds, double secondsPerDraftToken, double assumedWaitSeconds, double drift = 0.25,
        Func<int, double, double>? secondsPerToken = null)
    {
        ArgumentNullException.ThrowIfNull(alpha);
        if (alpha.Count is < 1 or > 32 || alpha.Any(a => a is < 0 or > 1 || double.IsNaN(a)))
        {
            throw new ConfigSpecException("profile policy: 1..32 acceptance rates in [0, 1] are needed");
        }

        if (secondsPerDraftToken <= 0 || overheadSeconds < 0 || assumedWaitSeconds < 0 || drift <= 0)
        {
            throw new ConfigSpecException("profile policy: drafting time per token and drift must be positive, overhead and wait non-negative");
        }

        _expectedTokens = new double[alpha.Count + 1];
        double prefix = 1, sum = 0;
        for (var j = 1; j <= alpha.Count; j++)
        {
            prefix *= alpha[j - 1];
            sum += prefix;
            _expectedTokens[j] = sum + 1;
        }

        _t0 = overheadSeconds;
        _tau = secondsPerDraftToken;
        _drift = drift;
        _secondsPerToken = secondsPerToken;
        _assumedWait = assumedWaitSeconds;
        KMax = alpha.Count;
        _k = BestFor(_assumedWait);
    }

    public string Name => "profile";

    public int KMax { get; }

    /// <summary>Times K was chosen again after a drift.</summary>
    public int Reevaluations { get; private set; }

    public int Choose() => _k;

    public void Observe(RoundObservation round)
    {
        var w = round.WaitSeconds;
        _ewmaWait = double.IsNaN(_ewmaWait) ? w : (0.5 * _ewmaWait) + (0.5 * w);
        if (Math.Abs(_ewmaWait - _assumedWait) > _drift * Math.Max(_assumedWait, 0.001))
        {
            _assumedWait = _ewmaWait;
            var k = BestFor(_assumedWait);
            if (k != _k)
            {
                Reevaluations++;
            }

            _k = k;
        }
    }

    /// <summary>The model's best K for a wait.</summary>
    public int BestFor(double waitSeconds)
    {
        var best = 1;
        var bestCost = double.PositiveInfinity;
        for (var k = 1; k <= KMax; k++)
        {
            var cost = _secondsPerToken?.Invoke(k, waitSeconds) ?? (_t0 + (k * _tau) + waitSeconds) / _expectedTokens[k];
            if (cost < bestCost - 1e-15)
            {
                (best, bestCost) = (k, cost);
            }
        }

        return best;
    }
}

/// <summary>
/// <c>oracle</c> (evaluation only): the best fixed K for each true delay state, found in hindsight over the same run;
/// it is told the true state, which no deployable policy knows. <c>oracle:late</c> uses the same table with the state
/// of the round before (what a policy that learns the delay from its own rounds can know at best): the gap between the
/// two is the cost of learning a delay switch one round late.
/// </summary>
public sealed class OraclePolicy(IReadOnlyDictionary<int, int> bestByState, Func<int> trueState, int kMax, string name = "oracle") : IDraftLengthPolicy
{
    public string Name => name;

    public int KMax { get; } = kMax;

    public int Choose() => bestByState.TryGetValue(trueState(), out var k) ? k : KMax;

    public void Observe(RoundObservation round)
    {
    }
}

/// <summary>Policy specs as the command line and settings give them.</summary>
public static class DraftPolicies
{
    public const string Help = "static:K, profile, confidence:P, ucb-specstop[:c=0.05,beta=1,stop=P,probe], oracle, oracle:late";

    /// <summary>
    /// Splits a comma-separated list of specs, keeping a policy's own comma-separated options with it
    /// ("static:2,ucb-specstop:c=0.1,beta=1,oracle" → static:2 | ucb-specstop:c=0.1,beta=1 | oracle).
    /// </summary>
    public static List<string> SplitList(string list)
    {
        ArgumentNullException.ThrowIfNull(list);
        var specs = new List<string>();
        foreach (var part in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            // An option (name=value, or the bare flag probe) continues the spec before it.
            if (specs.Count > 0 && !part.Contains(':', StringComparison.Ordinal) && (part.Contains('=', StringComparison.Ordinal) || part == "probe"))
            {
                specs[^1] += "," + part;
            }
            else
            {
                specs.Add(part);
            }
        }

        return specs;
    }

    /// <summary>Builds a policy from its spec; <paramref name="profile"/> supplies the profile policy (null when no profile is at hand).</summary>
    public static IDraftLengthPolicy Parse(string spec, int kMax, Func<IDraftLengthPolicy>? profile = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        var s = spec.Trim();
        var colon = s.IndexOf(':', StringComparison.Ordinal);
        var name = colon < 0 ? s : s[..colon];
        var arg = colon < 0 ? null : s[(colon + 1)..];
        return name switch
        {
            "static" when int.TryParse(arg, NumberStyles.None, CultureInfo.InvariantCulture, out var k) => new StaticPolicy(k),
            "confidence" when double.TryParse(arg, NumberStyles.Float, CultureInfo.InvariantCulture, out var p) => new ConfidencePolicy(p, kMax),
            "ucb-specstop" => Ucb(spec, arg, kMax),
            "profile" when arg is null => profile?.Invoke() ?? throw SettingException.Naming("policy 'profile' needs a profile ({profile} FILE)"),
            "oracle" when arg is null or "late" => throw new ConfigSpecException($"policy '{spec}' exists only in evaluation (bench-policy), where the whole run is known"),
            _ => throw new ConfigSpecException($"unknown draft-length policy '{spec}' (known: {Help})"),
        };
    }

    private static UcbSpecStopPolicy Ucb(string spec, string? arg, int kMax)
    {
        double c = UcbSpecStopPolicy.DefaultExploration, stop = 0, beta = 1;
        var probe = false;
        foreach (var part in (arg ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var value = eq > 0 && double.TryParse(part[(eq + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : double.NaN;
            switch (eq > 0 ? part[..eq] : part)
            {
                case "c" when !double.IsNaN(value):
                    c = value;
                    break;
                case "stop" when !double.IsNaN(value):
                    stop = value;
                    break;
                case "beta" when !double.IsNaN(value):
                    beta = value;
                    break;
                case "probe" when eq < 0:
                    probe = true;
                    break;
                default:
                    throw new ConfigSpecException($"policy '{spec}': '{part}' is not c=NUMBER, beta=NUMBER, stop=P or probe");
            }
        }

        return new UcbSpecStopPolicy(kMax, c, stop, beta, probe);
    }
}
