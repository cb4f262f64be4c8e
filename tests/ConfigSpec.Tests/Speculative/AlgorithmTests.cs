using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Sampling;
using ConfigSpec.Speculative.Verification;

namespace ConfigSpec.Tests.Speculative;

public class AlgorithmTests
{
    [Fact]
    public void Acceptance_by_position_is_conditional_on_reaching_the_position()
    {
        var rounds = new[]
        {
            new RoundMetrics(4, 4, 0, 0), // all accepted
            new RoundMetrics(4, 1, 0, 0), // position 2 rejected
            new RoundMetrics(4, 0, 0, 0), // position 1 rejected
            new RoundMetrics(2, 2, 0, 0), // a short final block
            new RoundMetrics(0, 0, 0, 0), // target-only round, ignored
        };
        var stats = AcceptanceStatistics.From(rounds, 4);
        Assert.Equal([4L, 3, 1, 1], stats.Reached);
        Assert.Equal([3L, 2, 1, 1], stats.AcceptedAt);
        Assert.Equal(0.75, stats.ByPosition[0]!.Value, 6);
        Assert.Equal(2.0 / 3.0, stats.ByPosition[1]!.Value, 6);
        Assert.Equal(1.0, stats.ByPosition[2]!.Value, 6);
        Assert.Null(AcceptanceStatistics.From([new RoundMetrics(2, 0, 0, 0)], 4).ByPosition[1]);
        Assert.Equal(7.0 / 4.0, stats.MeanAccepted, 6);
    }

    [Fact]
    public void Acceptance_by_chain_position_counts_drafts_since_the_last_target_token_across_chained_blocks()
    {
        var rounds = new[]
        {
            new RoundMetrics(4, 4, 0, 0),                  // a chain starts: positions 1..4 accepted
            new RoundMetrics(4, 4, 0, 0, ChainOffset: 4),  // chained: 5..8 accepted
            new RoundMetrics(4, 1, 0, 0, ChainOffset: 8),  // chained: 9 accepted, 10 rejected (the chain is cut)
            new RoundMetrics(4, 0, 0, 0),                  // a new chain: position 1 rejected
            new RoundMetrics(4, 4, 0, 0, ChainOffset: 20), // past the positions asked for: ignored
        };
        var stats = AcceptanceStatistics.ByChainPosition(rounds, 12);
        Assert.Equal([2L, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], stats.Reached);
        Assert.Equal([1L, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], stats.AcceptedAt);
        Assert.Equal(0.5, stats.ByPosition[0]!.Value, 6);
        Assert.Equal(1.0, stats.ByPosition[8]!.Value, 6);
        Assert.Equal(0.0, stats.ByPosition[9]!.Value, 6);
        Assert.Null(stats.ByPosition[10]);
        // Without chain offsets it is the sequential count: every block from position 1.
        Assert.Equal(AcceptanceStatistics.From([.. rounds.Select(r => r with { ChainOffset = 0 })], 4).Reached,
            AcceptanceStatistics.ByChainPosition([.. rounds.Select(r => r with { ChainOffset = 0 })], 4).Reached);
    }

    [Fact]
    public void Greedy_verification_accepts_the_matching_prefix_and_adds_the_correction_or_bonus()
    {
        // Row i's argmax is token 10 + i.
        float[] Row(int i)
        {
            var row = new float[32];
            row[10 + i] = 1f;
            return row;
        }

        Assert.Equal((2, 12), SpeculativeVerification.Greedy([10, 11, 5, 13], Row));
        Assert.Equal((4, 14), SpeculativeVerification.Greedy([10, 11, 12, 13], Row));
        Assert.Equal((0, 10), SpeculativeVerification.Greedy([], Row));
    }

    [Fact]
    public void Dense_distribution_applies_temperature_and_top_k_with_ties_to_the_lower_id()
    {
        float[] logits = [1f, 3f, 3f, 2f, 3f];
        var p = new float[5];
        TokenDistribution.Dense(logits, new SamplingSettings(1f, 2), p);
        Assert.Equal([0f, 0.5f, 0.5f, 0f, 0f], p);

        TokenDistribution.Dense([0f, (float)Math.Log(3)], new SamplingSettings(1f), p.AsSpan(0, 2));
        Assert.Equal(0.25f, p[0], 5);
        TokenDistribution.Dense([0f, (float)Math.Log(3)], new SamplingSettings(0.5f), p.AsSpan(0, 2));
        Assert.Equal(0.1f, p[0], 5);
        Assert.Equal(2f, TokenDistribution.TopTwoMargin([1f, 5f, 3f]));
    }

    [Fact]
    public void Random_stream_is_reproducible_and_uniform_enough()
    {
        var a = new Xoshiro256(42);
        var b = new Xoshiro256(42);
        var values = Enumerable.Range(0, 10_000).Select(_ => a.NextDouble()).ToArray();
        Assert.Equal(values, Enumerable.Range(0, 10_000).Select(_ => b.NextDouble()));
        Assert.All(values, v => Assert.InRange(v, 0.0, 0.9999999999));
        Assert.InRange(values.Average(), 0.49, 0.51);
        Assert.NotEqual(Xoshiro256.ForStream(1, 1).NextUInt64(), Xoshiro256.ForStream(1, 2).NextUInt64());
    }

    /// <summary>With synthetic p and q, the next token after one draft must be distributed exactly as p.</summary>
    [Fact]
    public void Rejection_sampling_turns_draft_samples_into_target_samples()
    {
        float[] p = [0.5f, 0.3f, 0.2f, 0f];
        float[] q = [0.1f, 0.2f, 0.3f, 0.4f];
        var sparseQ = TokenDistribution.ToSparse(q);
        var random = new Xoshiro256(9);
        var counts = new int[4];
        const int n = 40_000;
        for (var i = 0; i < n; i++)
        {
            var draft = TokenDistribution.Sample(q, random);
            var (accepted, next) = SpeculativeVerification.Stochastic([draft], [sparseQ], _ => p, random);
            counts[accepted == 1 ? draft : next]++;
        }

        for (var t = 0; t < 4; t++)
        {
            Assert.InRange(counts[t] / (double)n, p[t] - 0.01, p[t] + 0.01);
        }
    }
}
