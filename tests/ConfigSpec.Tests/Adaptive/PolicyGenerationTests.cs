using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Policies;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Adaptive;

/// <summary>Policies drive real generation with the shipped models; the output stays the target's.</summary>
[Collection(ModelGroup.Name)]
public sealed class PolicyGenerationTests(ModelFixture models)
{
    [Theory]
    [InlineData("ucb-specstop")]
    [InlineData("static:3")]
    [InlineData("confidence:0.9")]
    public async Task A_policy_chooses_K_per_round_and_greedy_output_is_unchanged(string spec)
    {
        var prompt = models.Target.Tokenize("Once upon a time");
        var options = new GenerationOptions { MaxTokens = 120, DraftLength = 8, ContextLength = 512 };
        var reference = await LocalGeneration.RunAsync(models.Target, models.Drafts["stories260K-Q8_0.gguf"], prompt, options);
        var policy = DraftPolicies.Parse(spec, 8);
        var result = await LocalGeneration.RunAsync(models.Target, models.Drafts["stories260K-Q8_0.gguf"], prompt, options with { Policy = policy });
        Assert.Equal(reference.Tokens, result.Tokens);
        Assert.All(result.Rounds.SkipLast(1), r => Assert.InRange(r.Drafted, 1, spec == "static:3" ? 3 : 8));
        if (spec.StartsWith("confidence", StringComparison.Ordinal))
        {
            // Blocks end at the first token the draft is less than 90 % sure of: some stop short of K_max, none is empty.
            Assert.Contains(result.Rounds.SkipLast(1), r => r.Drafted < 8);
        }
        else if (spec == "static:3")
        {
            Assert.All(result.Rounds.SkipLast(1), r => Assert.Equal(3, r.Drafted));
        }
        else
        {
            // The first block drafts K_max (it measures every position at once); the policy saw every round.
            Assert.Equal(8, result.Rounds[0].Drafted);
            var ucb = Assert.IsType<UcbSpecStopPolicy>(policy);
            Assert.True(double.IsFinite(ucb.OptimisticCost(8, 0.001)));
        }
    }
}
