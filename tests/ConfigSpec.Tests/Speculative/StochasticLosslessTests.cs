using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Sampling;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Tests.Infrastructure;
using Xunit.Abstractions;

namespace ConfigSpec.Tests.Speculative;

[Collection(ModelGroup.Name)]
public class StochasticLosslessTests(ModelFixture models, ITestOutputHelper log)
{
    private const int Runs = 3000;
    private static readonly SamplingSettings Settings = new(Temperature: 1.5f, TopK: 24);
    private const string Prompt = "Lily and Ben went to the";

    /// <summary>
    /// The first generated token under speculative sampling (draft prune4, K=3) must follow the target's own
    /// sampling distribution p. The expected counts come from p computed exactly from the target's logits;
    /// the statistic is Pearson's chi-square with bins of expected count below 5 merged.
    /// </summary>
    [Fact]
    public async Task First_token_of_speculative_sampling_is_distributed_as_target_sampling()
    {
        var (observed, p) = await SampleFirstTokens(SpeculativeVerification.RejectionSampling);
        var (chi, df, critical) = ChiSquare(observed, p);
        log.WriteLine($"rejection sampling: chi2={chi:F1} df={df} critical(0.001)={critical:F1}");
        Assert.True(chi < critical, $"chi-square {chi:F1} exceeds {critical:F1} (df {df}): speculative sampling is not distributed as the target");
    }

    /// <summary>The same test must reject a wrong verifier that keeps every draft (so it outputs q, not p).</summary>
    [Fact]
    public async Task The_same_test_rejects_a_verifier_that_accepts_every_draft()
    {
        var (observed, p) = await SampleFirstTokens((_, _, _) => true);
        var (chi, df, critical) = ChiSquare(observed, p);
        log.WriteLine($"accept-all: chi2={chi:F1} df={df} critical(0.001)={critical:F1}");
        Assert.True(chi > critical, $"chi-square {chi:F1} should exceed {critical:F1} for a wrong acceptance rule");
    }

    /// <summary>
    /// Pipelined (D = 2, K = 1): the second token comes from a block chained to the first, checked as one longer block with
    /// no token of the target's between them. The joint distribution of the first two tokens must be the target's own,
    /// p(t1)·p(t2 | t1), computed exactly from the target's logits; and the same test must reject the accept-all rule.
    /// </summary>
    [Fact]
    public async Task Pipelined_sampling_gives_the_targets_joint_distribution_of_two_tokens()
    {
        var prompt = models.Target.Tokenize(Prompt);
        var draft = models.Drafts["stories260K-prune4-F32.gguf"];
        var vocabulary = models.Target.VocabularySize;
        var p1 = ExactTargetDistribution(prompt);
        var joint = new float[vocabulary * vocabulary];
        for (var t1 = 0; t1 < vocabulary; t1++)
        {
            if (p1[t1] > 0)
            {
                var p2 = ExactTargetDistribution([.. prompt, t1]);
                for (var t2 = 0; t2 < vocabulary; t2++)
                {
                    joint[(t1 * vocabulary) + t2] = p1[t1] * p2[t2];
                }
            }
        }

        async Task<(int[] Observed, int Chained)> Sample(AcceptanceRule rule)
        {
            var observed = new int[joint.Length];
            var chained = 0;
            for (var run = 0; run < Runs; run++)
            {
                var options = new GenerationOptions { DraftLength = 1, MaxTokens = 4, Pipeline = 2, Sampling = Settings with { Seed = (ulong)run + 1 }, ContextLength = 64 };
                var result = await LocalGeneration.RunAsync(models.Target, draft, prompt, options, rule);
                observed[(result.Tokens[0] * vocabulary) + result.Tokens[1]]++;
                chained += result.Pipeline == 2 ? 1 : 0;
            }

            return (observed, chained);
        }

        var (good, chainedRuns) = await Sample(SpeculativeVerification.RejectionSampling);
        var (chi, df, critical) = ChiSquare(good, joint);
        log.WriteLine($"pipelined rejection sampling: chi2={chi:F1} df={df} critical(0.001)={critical:F1}; {chainedRuns} of {Runs} runs had two blocks in flight");
        Assert.True(chainedRuns > Runs / 2, $"only {chainedRuns} of {Runs} runs had two blocks in flight");
        Assert.True(chi < critical, $"chi-square {chi:F1} exceeds {critical:F1} (df {df}): pipelined sampling is not distributed as the target");

        var (wrong, _) = await Sample((_, _, _) => true);
        var (chiWrong, _, criticalWrong) = ChiSquare(wrong, joint);
        log.WriteLine($"pipelined accept-all: chi2={chiWrong:F1} critical(0.001)={criticalWrong:F1}");
        Assert.True(chiWrong > criticalWrong, $"chi-square {chiWrong:F1} should exceed {criticalWrong:F1} for a wrong acceptance rule");
    }

    [Fact]
    public async Task Target_only_sampling_matches_the_exact_target_distribution_too()
    {
        var prompt = models.Target.Tokenize(Prompt);
        var p = ExactTargetDistribution(prompt);
        var observed = new int[p.Length];
        for (var run = 0; run < Runs / 2; run++)
        {
            var options = new GenerationOptions { DraftLength = 0, MaxTokens = 1, Sampling = Settings with { Seed = (ulong)run + 1 }, ContextLength = 64 };
            var result = await LocalGeneration.RunAsync(models.Target, null, prompt, options);
            observed[result.Tokens[0]]++;
        }

        var (chi, _, critical) = ChiSquare(observed, p);
        Assert.True(chi < critical, $"chi-square {chi:F1} exceeds {critical:F1}");
    }

    [Fact]
    public async Task Same_seed_reproduces_and_another_seed_differs()
    {
        var prompt = models.Target.Tokenize("Once upon a time");
        var draft = models.Drafts["stories260K-Q4_0.gguf"];
        var options = new GenerationOptions { DraftLength = 4, MaxTokens = 60, Sampling = new SamplingSettings(0.9f, 40, 7), ContextLength = 128 };
        var a = await LocalGeneration.RunAsync(models.Target, draft, prompt, options);
        var b = await LocalGeneration.RunAsync(models.Target, draft, prompt, options);
        var c = await LocalGeneration.RunAsync(models.Target, draft, prompt, options with { Sampling = options.Sampling with { Seed = 8 } });
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.NotEqual(a.Tokens, c.Tokens);
    }

    private async Task<(int[] Observed, float[] P)> SampleFirstTokens(AcceptanceRule rule)
    {
        var prompt = models.Target.Tokenize(Prompt);
        var draft = models.Drafts["stories260K-prune4-F32.gguf"];
        var observed = new int[models.Target.VocabularySize];
        for (var run = 0; run < Runs; run++)
        {
            var options = new GenerationOptions { DraftLength = 3, MaxTokens = 4, Sampling = Settings with { Seed = (ulong)run + 1 }, ContextLength = 64 };
            var result = await LocalGeneration.RunAsync(models.Target, draft, prompt, options, rule);
            observed[result.Tokens[0]]++;
        }

        return (observed, ExactTargetDistribution(prompt));
    }

    private float[] ExactTargetDistribution(int[] prompt)
    {
        using var context = models.Target.CreateContext(new ConfigSpec.Interop.Llama.LlamaContextOptions { ContextLength = 64 });
        context.Decode(prompt, 0);
        var p = new float[models.Target.VocabularySize];
        TokenDistribution.Dense(context.GetLogits(-1), Settings, p);
        return p;
    }

    internal static (double Chi, int DegreesOfFreedom, double Critical) ChiSquare(int[] observed, float[] p)
    {
        var total = observed.Sum();
        var bins = new List<(double Expected, int Observed)>();
        double pooledExpected = 0;
        var pooledObserved = 0;
        for (var i = 0; i < p.Length; i++)
        {
            var expected = p[i] * total;
            if (expected >= 5)
            {
                bins.Add((expected, observed[i]));
            }
            else
            {
                pooledExpected += expected;
                pooledObserved += observed[i];
            }
        }

        if (pooledExpected > 0 || pooledObserved > 0)
        {
            bins.Add((Math.Max(pooledExpected, 1e-9), pooledObserved));
        }

        var chi = bins.Sum(b => (b.Observed - b.Expected) * (b.Observed - b.Expected) / b.Expected);
        var df = bins.Count - 1;
        return (chi, df, CriticalValue001(df));
    }

    /// <summary>Chi-square critical value at p = 0.001 (Wilson–Hilferty approximation).</summary>
    private static double CriticalValue001(int df)
    {
        const double z = 3.090232;
        var a = 2.0 / (9.0 * df);
        return df * Math.Pow(1 - a + (z * Math.Sqrt(a)), 3);
    }
}
