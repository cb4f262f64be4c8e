using ConfigSpec.Speculative.Sampling;

namespace ConfigSpec.Speculative.Verification;

/// <summary>Decides whether a sampled draft token is kept, given target and draft probabilities and a uniform draw.</summary>
public delegate bool AcceptanceRule(double targetProbability, double draftProbability, double uniform);

/// <summary>The verification algorithms, free of any model or transport.</summary>
public static class SpeculativeVerification
{
    /// <summary>Exact speculative sampling: keep with probability min(1, p/q).</summary>
    public static AcceptanceRule RejectionSampling { get; } =
        (p, q, u) => q > 0 && u < Math.Min(1.0, p / q);

    /// <summary>
    /// Greedy: accept the longest prefix of drafts equal to the target's argmax; the next token is the
    /// argmax after that prefix. <paramref name="rowLogits"/>(i) gives the target logits that predict draft i
    /// (row <c>drafts.Count</c> predicts the bonus token). Without <paramref name="bonus"/> (a chained block follows), all
    /// accepted gives next -1 and that row is not read.
    /// </summary>
    public static (int Accepted, int Next) Greedy(IReadOnlyList<int> drafts, Func<int, float[]> rowLogits, bool bonus = true)
    {
        ArgumentNullException.ThrowIfNull(drafts);
        ArgumentNullException.ThrowIfNull(rowLogits);
        for (var i = 0; i < drafts.Count; i++)
        {
            var best = TokenDistribution.ArgMax(rowLogits(i));
            if (best != drafts[i])
            {
                return (i, best);
            }
        }

        return (drafts.Count, bonus ? TokenDistribution.ArgMax(rowLogits(drafts.Count)) : -1);
    }

    /// <summary>
    /// Stochastic verification by rejection sampling: draft i is accepted with probability min(1, p(x)/q(x));
    /// on the first rejection the next token is drawn from normalise(max(0, p − q)); if all are accepted it is
    /// drawn from p. <paramref name="targetRow"/>(i) is the target's dense, transformed distribution. Without
    /// <paramref name="bonus"/> (a chained block follows and its first draft takes the ratio test at that position), all
    /// accepted gives next -1 and draws nothing, so the random stream is exactly that of one longer block.
    /// </summary>
    public static (int Accepted, int Next) Stochastic(
        IReadOnlyList<int> drafts,
        IReadOnlyList<SparseDistribution> draftDistributions,
        Func<int, float[]> targetRow,
        Xoshiro256 random,
        AcceptanceRule? rule = null,
        bool bonus = true)
    {
        ArgumentNullException.ThrowIfNull(drafts);
        ArgumentNullException.ThrowIfNull(draftDistributions);
        ArgumentNullException.ThrowIfNull(targetRow);
        ArgumentNullException.ThrowIfNull(random);
        rule ??= RejectionSampling;
        for (var i = 0; i < drafts.Count; i++)
        {
            var p = targetRow(i);
            var q = draftDistributions[i];
            var token = drafts[i];
            if (rule(p[token], q.ProbabilityOf(token), random.NextDouble()))
            {
                continue;
            }

            var residual = new float[p.Length];
            Array.Copy(p, residual, p.Length);
            for (var j = 0; j < q.Tokens.Length; j++)
            {
                residual[q.Tokens[j]] = Math.Max(0f, residual[q.Tokens[j]] - q.Probabilities[j]);
            }

            var hasMass = false;
            foreach (var r in residual)
            {
                if (r > 0f)
                {
                    hasMass = true;
                    break;
                }
            }

            // p == q leaves no residual mass (a rejection then has probability zero); fall back to p.
            return (i, TokenDistribution.Sample(hasMass ? residual : p, random));
        }

        return (drafts.Count, bonus ? TokenDistribution.Sample(targetRow(drafts.Count), random) : -1);
    }
}
