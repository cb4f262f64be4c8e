using ConfigSpec.Interop.Llama;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Speculative;

[Collection(ModelGroup.Name)]
public class DeterminismPromptTests(ModelFixture models)
{
    [Fact]
    public async Task The_equality_prompts_have_no_near_tie_in_their_greedy_continuations()
    {
        var target = models.Target;
        foreach (var prompt in DeterminismPrompts.All)
        {
            var tokens = target.Tokenize(prompt);
            var greedy = (await LocalGeneration.RunAsync(target, null, tokens,
                new GenerationOptions { DraftLength = 0, MaxTokens = DeterminismPrompts.Tokens, ContextLength = 512 })).Tokens;
            using var context = target.CreateContext(new LlamaContextOptions { ContextLength = 512 });
            context.Decode(tokens, 0);
            for (var i = 0; i < greedy.Count; i++)
            {
                var logits = context.GetLogits(-1).ToArray();
                var chosen = logits[greedy[i]];
                var next = logits.Where((_, token) => token != greedy[i]).Max();
                Assert.True(chosen - next >= DeterminismPrompts.MinimumMargin,
                    $"'{prompt}': greedy token {i} leads the next by only {chosen - next:G3}; pick another prompt");
                context.Decode([greedy[i]], tokens.Length + i);
            }
        }
    }
}
