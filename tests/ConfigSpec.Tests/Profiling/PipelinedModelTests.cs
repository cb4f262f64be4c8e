using ConfigSpec.Profiling.Objectives;

namespace ConfigSpec.Tests.Profiling;

/// <summary>The pipelined goodput model: its exact expectation against a seeded simulation of the same scheme, and what it says.</summary>
public sealed class PipelinedModelTests
{
    private static double?[] Constant(double a, int n = 16) => [.. Enumerable.Repeat<double?>(a, n)];

    [Theory]
    [InlineData(0.87, 4, 0.04, 0.205)]
    [InlineData(0.5, 1, 0.01, 0.02)]
    public void One_block_in_flight_is_the_sequential_round_with_its_bonus_token(double a, int k, double t, double verify)
    {
        var episode = PipelinedModel.Episode(Constant(a), k, 1, t, 0, verify);
        Assert.Equal(ObjectiveModel.Goodput(ObjectiveModel.ExpectedAccepted(Constant(a), k), k, 1 / t, verify), episode.Goodput, 9);
        Assert.Equal(k, episode.DraftedTokens);
    }

    /// <summary>A seeded simulation, episode by episode: draws each chain position, lays blocks out in time, and counts.</summary>
    [Theory]
    [InlineData(0.87, 3, 3, 0.04, 0.205)]
    [InlineData(0.96, 5, 2, 0.04, 0.105)]
    [InlineData(0.6, 2, 4, 0.01, 0.09)]
    public void The_expectation_agrees_with_a_simulation_of_the_scheme(double a, int k, int d, double t, double verify)
    {
        var random = new Random(17);
        double tokens = 0, seconds = 0, drafted = 0;
        for (var episode = 0; episode < 40_000; episode++)
        {
            var sends = new List<double> { 0 };
            var verdicts = new List<double> { double.NegativeInfinity };
            var position = 0;
            while (true)
            {
                var i = sends.Count;
                var start = Math.Max(sends[i - 1], i - d >= 1 ? verdicts[i - d] : 0);
                sends.Add(start + (k * t));
                verdicts.Add(start + (k * t) + verify);
                var cut = false;
                for (var q = 0; q < k && !cut; q++)
                {
                    position++;
                    cut = random.NextDouble() >= a;
                }

                if (!cut)
                {
                    continue;
                }

                var end = verdicts[i];
                tokens += position;
                // Everything drafted by the time the cutting verdict is acted on: blocks up to i, and the later ones in
                // progress, token by token: a token being drafted when the verdict arrives is finished first.
                drafted += i * k;
                var previous = sends[i];
                for (var j = i + 1; j < i + d; j++)
                {
                    var s = Math.Max(previous, j - d >= 1 ? verdicts[j - d] : 0);
                    if (s >= end)
                    {
                        break;
                    }

                    var n = 1; // the board asks after each token, so the first is always drafted
                    while (n < k && s + (n * t) < end)
                    {
                        n++;
                    }

                    drafted += n;
                    if (n < k || s + (k * t) > end)
                    {
                        end = Math.Max(end, s + (n * t));
                        break;
                    }

                    previous = s + (k * t);
                }

                seconds += end;
                break;
            }
        }

        var model = PipelinedModel.Episode(Constant(a), k, d, t, 0, verify);
        Assert.Equal(tokens / seconds, model.Goodput, model.Goodput * 0.02);
        Assert.Equal(drafted / 40_000, model.DraftedTokens, model.DraftedTokens * 0.03);
        Assert.True(model.DraftedTokens >= model.Tokens - 1, "every committed draft was drafted");
    }

    [Fact]
    public void Without_a_wait_to_hide_chaining_never_beats_sequential_rounds()
    {
        foreach (var a in new[] { 0.5, 0.87, 0.99 })
        {
            for (var k = 1; k <= 8; k++)
            {
                var sequential = PipelinedModel.Episode(Constant(a), k, 1, 0.04, 0.001, 0).Goodput;
                for (var d = 2; d <= 4; d++)
                {
                    Assert.True(PipelinedModel.Episode(Constant(a), k, d, 0.04, 0.001, 0).Goodput <= sequential + 1e-9, $"α {a}, K {k}, D {d}");
                }
            }
        }
    }

    /// <summary>
    /// The case the pipelined scheme is for: a 25 tokens/s board (40 ms a token), 100 ms each way plus 5 ms of
    /// verification. The best pipelined (K ≤ 12, D ≤ 8) against the best sequential configuration.
    /// </summary>
    [Theory]
    [InlineData(0.87, 100, 1.3, 1.45)]
    [InlineData(0.96, 100, 1.3, 1.45)]
    [InlineData(0.87, 20, 1.0, 1.02)]
    public void Pipelining_pays_on_a_long_link_and_not_on_a_short_one(double a, int oneWayMs, double low, double high)
    {
        var verify = (2 * oneWayMs / 1000.0) + 0.005;
        var sequential = Enumerable.Range(1, 12).Max(k => PipelinedModel.Episode(Constant(a, 12), k, 1, 0.04, 0, verify).Goodput);
        var pipelined = Enumerable.Range(1, 12).SelectMany(k => Enumerable.Range(1, 8).Select(d => PipelinedModel.Episode(Constant(a, 12), k, d, 0.04, 0, verify).Goodput)).Max();
        Assert.InRange(pipelined / sequential, low, high);
    }

    [Fact]
    public void A_draft_that_is_always_accepted_gives_a_finite_steady_goodput()
    {
        var episode = PipelinedModel.Episode(Constant(1.0), 4, 2, 0.04, 0, 0.205);
        Assert.True(double.IsFinite(episode.Goodput) && episode.Goodput > 0);
        // Two blocks of 4 in flight per 0.205 + 0.16 s cycle at most: about 8 / 0.365 tokens per second.
        Assert.InRange(episode.Goodput, 8 / 0.37, 8 / 0.36 + 1);
    }

    /// <summary>
    /// Finite generations, simulated as the board runs them: episodes until the tokens are in, the board drafting no
    /// further than the generation needs (its last block shorter), a cut acted on at its verdict or at the end of the
    /// token in progress, the last block's verdict carrying the target's token.
    /// </summary>
    [Theory]
    [InlineData(0.98, 1, 7, 0.04, 0.245, 64)]
    [InlineData(0.87, 3, 3, 0.04, 0.205, 40)]
    [InlineData(0.96, 8, 4, 0.04, 0.105, 100)]
    public void A_generation_of_n_tokens_agrees_with_a_simulation_of_it(double a, int k, int d, double t, double verify, int n)
    {
        var random = new Random(23);
        const int Generations = 20_000;
        double seconds = 0;
        for (var g = 0; g < Generations; g++)
        {
            var remaining = n;
            while (remaining > 0)
            {
                var drafts = remaining - 1;
                var blocks = Math.Max(1, (drafts + k - 1) / k);
                int Length(int i) => Math.Min(k, drafts - ((i - 1) * k));
                var sends = new List<double> { 0 };
                var verdicts = new List<double> { double.NegativeInfinity };
                for (var i = 1; i <= blocks; i++)
                {
                    var start = Math.Max(sends[i - 1], i - d >= 1 ? verdicts[i - d] : 0);
                    sends.Add(start + (Length(i) * t));
                    verdicts.Add(sends[i] + verify);
                }

                var cut = 0;
                for (var p = 1; p <= drafts && cut == 0; p++)
                {
                    cut = random.NextDouble() >= a ? p : 0;
                }

                if (cut == 0)
                {
                    seconds += verdicts[blocks];
                    remaining = 0;
                    continue;
                }

                var b = ((cut - 1) / k) + 1;
                var end = verdicts[b];
                var previous = sends[b];
                for (var j = b + 1; j < b + d && j <= blocks; j++)
                {
                    var s = Math.Max(previous, j - d >= 1 ? verdicts[j - d] : 0);
                    if (s >= verdicts[b])
                    {
                        break;
                    }

                    var done = 1;
                    while (done < Length(j) && s + (done * t) < verdicts[b])
                    {
                        done++;
                    }

                    if (done < Length(j) || s + (Length(j) * t) > verdicts[b])
                    {
                        end = Math.Max(end, s + (done * t));
                        break;
                    }

                    previous = s + (Length(j) * t);
                }

                seconds += end;
                remaining -= cut;
            }
        }

        var model = PipelinedModel.GenerationSeconds(Constant(a), k, d, t, 0, verify, n);
        Assert.Equal(seconds / Generations, model, model * 0.02);
        // A generation pays its last round trip once more than the steady state charges it.
        var steady = PipelinedModel.Episode(Constant(a), k, d, t, 0, verify).Goodput;
        Assert.True(n / model < steady, $"generation {n / model:0.00} tokens/s against steady {steady:0.00}");
    }

    [Fact]
    public void Long_generations_come_to_the_steady_state_and_sequential_ones_are_it()
    {
        var steady = PipelinedModel.Episode(Constant(0.9), 4, 4, 0.04, 0.001, 0.205).Goodput;
        Assert.Equal(steady, 5000 / PipelinedModel.GenerationSeconds(Constant(0.9), 4, 4, 0.04, 0.001, 0.205, 5000), steady * 0.01);
        var short64 = 64 / PipelinedModel.GenerationSeconds(Constant(0.9), 4, 4, 0.04, 0.001, 0.205, 64);
        Assert.True(short64 < steady * 0.99, $"64 tokens: {short64:0.00} against {steady:0.00}");
        var sequential = PipelinedModel.Episode(Constant(0.9), 4, 1, 0.04, 0.001, 0.205).Goodput;
        Assert.Equal(64 / sequential, PipelinedModel.GenerationSeconds(Constant(0.9), 4, 1, 0.04, 0.001, 0.205, 64), 9);
        Assert.Throws<ArgumentOutOfRangeException>(() => PipelinedModel.GenerationSeconds(Constant(0.9), 4, 4, 0.04, 0, 0.2, 0));
    }
}
