using ConfigSpec.Interop.Llama;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Sampling;
using ConfigSpec.Tests.Infrastructure;
using Xunit.Abstractions;

namespace ConfigSpec.Tests.Speculative;

[Collection(ModelGroup.Name)]
public class GreedyLosslessTests(ModelFixture models, ITestOutputHelper log)
{
    public static TheoryData<string, int, int> Cases()
    {
        var data = new TheoryData<string, int, int>();
        foreach (var draft in ModelFixture.DraftNames)
        {
            foreach (var k in new[] { 1, 4, 8 })
            {
                foreach (var d in new[] { 1, 2, 3 })
                {
                    data.Add(draft, k, d);
                }
            }
        }

        return data;
    }

    /// <summary>
    /// Speculative greedy output must equal target-only greedy output. The verifier scores drafts in a
    /// multi-token batch while target-only decoding scores one token at a time; where the two can differ is a
    /// near-tie of the top two logits. Any divergence is therefore explained only if the target-only logits at
    /// that position have a top-2 margin below 1e-3; otherwise the test fails. With D ≥ 2 blocks in flight (pipelined
    /// speculation: chained blocks, cuts that drop later blocks on both sides) the output must be the same.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Speculative_greedy_output_equals_target_only_greedy_output(string draftName, int k, int d)
    {
        var prompt = models.Target.Tokenize("Once upon a time");
        var options = new GenerationOptions { MaxTokens = 200, DraftLength = k, ContextLength = 512, Pipeline = d };
        var reference = await LocalGeneration.RunAsync(models.Target, null, prompt, options with { DraftLength = 0 });
        var result = await LocalGeneration.RunAsync(models.Target, models.Drafts[draftName], prompt, options);

        Assert.Equal(200, reference.Tokens.Count);
        var divergence = FirstDifference(reference.Tokens, result.Tokens);
        if (divergence < 0)
        {
            Assert.Equal(reference.Tokens, result.Tokens);
            Assert.Equal(reference.Text, result.Text);
        }
        else
        {
            var margin = TargetMarginAt(prompt, reference.Tokens, divergence);
            log.WriteLine($"{draftName} K={k} D={d}: divergence at generated position {divergence}, target top-2 logit margin {margin:E2}");
            Assert.True(margin < 1e-3f, $"unexplained divergence at position {divergence} (top-2 margin {margin})");
        }

        Assert.All(result.Rounds, r => Assert.InRange(r.Accepted, 0, r.Drafted));
        Assert.Equal(k, result.Acceptance.ByPosition.Count);
        Assert.InRange(result.Pipeline, 1, d);
        Assert.True(d > 1 || result.DiscardedTokens == 0);
        Assert.Equal(200, reference.Rounds.Count);
        Assert.True(result.Rounds.Sum(r => r.Accepted + 1) >= 200);
    }

    private static int FirstDifference(IReadOnlyList<int> a, IReadOnlyList<int> b)
    {
        for (var i = 0; i < Math.Min(a.Count, b.Count); i++)
        {
            if (a[i] != b[i])
            {
                return i;
            }
        }

        return a.Count == b.Count ? -1 : Math.Min(a.Count, b.Count);
    }

    private float TargetMarginAt(int[] prompt, IReadOnlyList<int> generated, int position)
    {
        using var context = models.Target.CreateContext(new LlamaContextOptions { ContextLength = 512 });
        var prefix = prompt.Concat(generated.Take(position)).ToArray();
        context.Decode(prefix, 0);
        return TokenDistribution.TopTwoMargin(context.GetLogits(-1));
    }
}
