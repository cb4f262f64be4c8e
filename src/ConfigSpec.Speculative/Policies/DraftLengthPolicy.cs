using ConfigSpec.Contracts;
using System.Globalization;
using ConfigSpec.Interop;

namespace ConfigSpec.Speculative.Policies;

/// <summary>What a policy learns from one verification round.</summary>
/// <param name="Drafted">Drafts sent (the K used, or fewer when the block stopped early).</param>
/// <param name="Accepted">Length of the accepted prefix (0..Drafted).</param>
/// <param name="DraftSeconds">Time spent drafting the block.</param>
/// <param name="RoundSeconds">Drafting plus waiting for the verdict.</param>
/// <param name="LinkRoundTripSeconds">The round trip of the link probe sent when the round began, when one was sent and
/// came back before the verdict (see <see cref="ILinkProbe"/>).</param>
public readonly record struct RoundObservation(int Drafted, int Accepted, double DraftSeconds, double RoundSeconds, double? LinkRoundTripSeconds = null)
{
    /// <summary>The wait for verification: network round trip plus the verifier's time.</summary>
    public double WaitSeconds => Math.Max(0, RoundSeconds - DraftSeconds);

    /// <summary>Tokens the round added: the accepted drafts and the verifier's own token.</summary>
    public int Tokens => Accepted + 1;
}

/// <summary>Where a block stands after a drafted token: what <see cref="IDraftLengthPolicy.StopDrafting"/> decides on.</summary>
/// <param name="Drafted">Tokens drafted in this block so far (from 1).</param>
/// <param name="TopProbability">The draft's probability of the token just drafted.</param>
/// <param name="ElapsedSeconds">Time since the round began (drafting so far).</param>
/// <param name="LinkRoundTripSeconds">The round trip of this round's link probe once it is back; null while it is still
/// out (the round trip is then at least <paramref name="ElapsedSeconds"/>) or when no probe was sent.</param>
public readonly record struct DraftProgress(int Drafted, double TopProbability, double ElapsedSeconds = 0, double? LinkRoundTripSeconds = null);

/// <summary>
/// A probe of the link to the verifier: a tiny message sent when a round begins that the link echoes back, so the delay
/// in force now is known while the block is still being drafted, instead of one round late from the verdict.
/// </summary>
public interface ILinkProbe
{
    /// <summary>Sends a probe now; the previous one, if still out, is forgotten.</summary>
    void SendProbe();

    /// <summary>The round trip of the latest probe once it is back, else null.</summary>
    double? ProbeRoundTripSeconds { get; }
}

/// <summary>
/// Chooses the draft length K before each round and learns from its outcome. Implementations are not thread-safe:
/// one policy per generation stream.
/// </summary>
public interface IDraftLengthPolicy
{
    /// <summary>Its spec, e.g. <c>static:4</c> or <c>ucb-specstop</c>.</summary>
    string Name { get; }

    /// <summary>The largest K it may choose.</summary>
    int KMax { get; }

    /// <summary>K for the next round, in 1..<see cref="KMax"/>.</summary>
    int Choose();

    /// <summary>Learns from the round just verified.</summary>
    void Observe(RoundObservation round);

    /// <summary>
    /// Called after each drafted token with the draft's probability of it, the time so far and the link probe's news;
    /// true stops the block there (the tokens drafted so far are verified). The default never stops early.
    /// </summary>
    bool StopDrafting(in DraftProgress progress) => false;

    /// <summary>Whether it reads a link probe: the generator then sends one as each round begins (when the link can).</summary>
    bool WantsLinkProbe => false;

    /// <summary>
    /// Whether <see cref="StopDrafting"/> reads <see cref="DraftProgress.TopProbability"/>; when not, the drafter does not
    /// compute it (a softmax over the vocabulary per token) and passes NaN.
    /// </summary>
    bool ReadsConfidence => false;
}

/// <summary>A fixed K (<c>static:K</c>).</summary>
public sealed class StaticPolicy : IDraftLengthPolicy
{
    public StaticPolicy(int k)
    {
        if (!DraftLength.IsValid(k))
        {
            throw new ConfigSpecException($"static:{k}: K must be {DraftLength.Range}");
        }

        KMax = k;
    }

    public string Name => "static:" + KMax.ToString(CultureInfo.InvariantCulture);

    public int KMax { get; }

    public int Choose() => KMax;

    public void Observe(RoundObservation round)
    {
    }
}

/// <summary>
/// <c>confidence:P</c>: drafts until the draft's probability of its own token falls below P (llama.cpp's <c>p_min</c>),
/// at most K_max; the token that fell below P is still sent (it was drafted), and the block stops after it.
/// </summary>
public sealed class ConfidencePolicy : IDraftLengthPolicy
{
    public ConfidencePolicy(double threshold, int kMax)
    {
        if (threshold is <= 0 or >= 1 || double.IsNaN(threshold))
        {
            throw new ConfigSpecException($"confidence:{threshold.ToString(CultureInfo.InvariantCulture)}: P must lie strictly between 0 and 1");
        }

        if (!DraftLength.IsValid(kMax))
        {
            throw new ConfigSpecException($"confidence: K_max {kMax} must be {DraftLength.Range}");
        }

        Threshold = threshold;
        KMax = kMax;
    }

    public double Threshold { get; }

    public string Name => "confidence:" + Threshold.ToString(CultureInfo.InvariantCulture);

    public int KMax { get; }

    public int Choose() => KMax;

    public void Observe(RoundObservation round)
    {
    }

    public bool StopDrafting(in DraftProgress progress) => progress.TopProbability < Threshold;

    public bool ReadsConfidence => true;
}
