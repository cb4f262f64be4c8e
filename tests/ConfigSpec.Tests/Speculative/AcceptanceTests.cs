using ConfigSpec.Speculative.Engine;
using ConfigSpec.Tests.Infrastructure;
using Xunit.Abstractions;

namespace ConfigSpec.Tests.Speculative;

[Collection(ModelGroup.Name)]
public class AcceptanceTests(ModelFixture models, ITestOutputHelper log)
{
    internal static readonly string[] Prompts =
    [
        "Once upon a time",
        "The little dog",
        "Lily and Ben went to the park",
        "One day, a big bear",
        "Tom had a red ball",
    ];

    // Mean accepted drafts per block of 8 published with the shared models (5 prompts x 200 target tokens).
    [Theory]
    [InlineData("stories260K-Q8_0.gguf", 7.30, 0.96)]
    [InlineData("stories260K-Q4_K_M.gguf", 6.03, 0.94)]
    [InlineData("stories260K-Q4_0.gguf", 4.52, 0.88)]
    [InlineData("stories260K-prune4-F32.gguf", 1.00, 0.51)]
    [InlineData("stories260K-prune1234-F32.gguf", 0.007, 0.007)]
    public async Task Measured_acceptance_lands_near_the_published_table(string draft, double publishedMean, double publishedAlpha1)
    {
        var reached = new long[8];
        var accepted = new long[8];
        double acceptedTotal = 0;
        var blocks = 0;
        foreach (var prompt in Prompts)
        {
            var result = await LocalGeneration.RunAsync(models.Target, models.Drafts[draft], models.Target.Tokenize(prompt),
                new GenerationOptions { DraftLength = 8, MaxTokens = 200, ContextLength = 512 });
            for (var i = 0; i < 8; i++)
            {
                reached[i] += result.Acceptance.Reached[i];
                accepted[i] += result.Acceptance.AcceptedAt[i];
            }

            var full = result.Rounds.Where(r => r.Drafted == 8).ToList();
            acceptedTotal += full.Sum(r => r.Accepted);
            blocks += full.Count;
        }

        var mean = acceptedTotal / blocks;
        var alpha1 = (double)accepted[0] / reached[0];
        var alphas = Enumerable.Range(0, 8).Select(i => reached[i] == 0 ? 0 : (double)accepted[i] / reached[i]);
        log.WriteLine($"{draft}: alpha = {string.Join(" ", alphas.Select(a => a.ToString("0.00")))}, mean accepted {mean:0.00} (published {publishedMean})");

        // Prompts differ from the published run, so allow a band: ±25% of the block (2 tokens) and ±0.15 on alpha_1.
        Assert.InRange(mean, publishedMean - 2.0, publishedMean + 2.0);
        Assert.InRange(alpha1, publishedAlpha1 - 0.15, publishedAlpha1 + 0.15);
    }
}
