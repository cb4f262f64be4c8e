using ConfigSpec.Interop;

namespace ConfigSpec.Profiling.Objectives;

/// <summary>
/// How a verification round is billed. By default every drafted token is billed at one price
/// (<see cref="BillBonusToken"/> adds the verifier's own token); with <see cref="OutputUsdPerMillion"/> the drafts
/// are billed as input and the verifier's token as output.
/// </summary>
public sealed record Pricing
{
    public const double DefaultUsdPerMillion = 0.10;

    /// <summary>Price of a billed (input) token, US dollars per million tokens.</summary>
    public double UsdPerMillion { get; init; } = DefaultUsdPerMillion;

    /// <summary>Price of the verifier's token, US dollars per million; null = not billed separately.</summary>
    public double? OutputUsdPerMillion { get; init; }

    /// <summary>Bill K + 1 tokens per round at <see cref="UsdPerMillion"/> instead of K.</summary>
    public bool BillBonusToken { get; init; }

    /// <summary>Dollars one round of block length <paramref name="k"/> costs.</summary>
    public double RoundCost(int k)
    {
        var input = (k + (BillBonusToken && OutputUsdPerMillion is null ? 1 : 0)) * UsdPerMillion / 1e6;
        return input + ((OutputUsdPerMillion ?? 0) / 1e6);
    }

    /// <summary>
    /// Dollars one block of <paramref name="k"/> drafts costs when verified; the block that ends a chain (a cut, or a
    /// block nothing is chained to) also brings the verifier's token, as every sequential round does.
    /// </summary>
    public double BlockCost(int k, bool endsChain) => endsChain ? RoundCost(k) : k * UsdPerMillion / 1e6;

    /// <summary>
    /// Dollars a pipelined episode costs: every draft of the <paramref name="blocks"/> blocks of <paramref name="k"/>
    /// the verifier computed, and one verifier token (the correction ending the episode). One block is
    /// <see cref="RoundCost"/>.
    /// </summary>
    public double EpisodeCost(double blocks, int k) => RoundCost(k) + ((blocks - 1) * k * UsdPerMillion / 1e6);

    public void Validate()
    {
        if (!(UsdPerMillion > 0) || double.IsInfinity(UsdPerMillion))
        {
            throw new SettingException("price_per_mtok", $"{UsdPerMillion} must be a positive number of US dollars per million tokens");
        }

        if (OutputUsdPerMillion is { } output && (!(output > 0) || double.IsInfinity(output)))
        {
            throw new SettingException("output_price_per_mtok", $"{output} must be a positive number of US dollars per million tokens");
        }
    }
}

/// <summary>
/// The three objectives of a speculative configuration, from per-position acceptance rates, drafting speed and
/// power, and the verification round time. Positions never reached while profiling count as rejected.
/// </summary>
public static class ObjectiveModel
{
    /// <summary>E_K = Σ_{i=1..K} Π_{j≤i} α_j: expected accepted drafts in a block of K.</summary>
    public static double ExpectedAccepted(IReadOnlyList<double?> alpha, int k)
    {
        ArgumentNullException.ThrowIfNull(alpha);
        if (k < 0 || k > alpha.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(k), k, $"K must lie in 0..{alpha.Count} (the profiled positions)");
        }

        double expected = 0, prefix = 1;
        for (var i = 0; i < k; i++)
        {
            prefix *= Math.Clamp(alpha[i] ?? 0, 0, 1);
            expected += prefix;
        }

        return expected;
    }

    /// <summary>α(K) = E_K / K, the mean acceptance of a block of K.</summary>
    public static double BlockAcceptance(IReadOnlyList<double?> alpha, int k) => k == 0 ? 0 : ExpectedAccepted(alpha, k) / k;

    /// <summary>G(K) = (E_K + 1) / (K / v_d + T_verify), tokens per second.</summary>
    public static double Goodput(double expectedAccepted, int k, double draftTokensPerSecond, double verifySeconds) =>
        GoodputFromTimes(expectedAccepted, k == 0 ? 0 : k / draftTokensPerSecond, verifySeconds);

    /// <summary>Goodput from a round's measured times: (E_K + 1) / (drafting a block + waiting for its verification).</summary>
    public static double GoodputFromTimes(double expectedAccepted, double draftSeconds, double verifySeconds) =>
        (expectedAccepted + 1) / (draftSeconds + verifySeconds);

    /// <summary>Tokens per dollar of verification: (E_K + 1) / cost of one round.</summary>
    public static double TokensPerUsd(double expectedAccepted, int k, Pricing pricing)
    {
        ArgumentNullException.ThrowIfNull(pricing);
        return (expectedAccepted + 1) / pricing.RoundCost(k);
    }

    /// <summary>
    /// Joules per generated token on the board: P · (K / v_d) / (E_K + 1), plus, when <paramref name="idleWatts"/>
    /// is given, the idle power drawn while the board waits <paramref name="verifySeconds"/> for verification.
    /// </summary>
    public static double JoulesPerToken(double expectedAccepted, int k, double draftTokensPerSecond, double draftWatts, double? idleWatts = null, double verifySeconds = 0) =>
        JoulesPerTokenFromTimes(expectedAccepted, k == 0 ? 0 : k / draftTokensPerSecond, draftWatts, idleWatts, verifySeconds);

    /// <summary>Energy per token from a round's measured times: drafting at <paramref name="draftWatts"/>, waiting at <paramref name="idleWatts"/> (if given).</summary>
    public static double JoulesPerTokenFromTimes(double expectedAccepted, double draftSeconds, double draftWatts, double? idleWatts, double verifySeconds) =>
        ((draftWatts * draftSeconds) + ((idleWatts ?? 0) * verifySeconds)) / (expectedAccepted + 1);
}
