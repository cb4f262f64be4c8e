using ConfigSpec.Interop;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Sampling;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Speculative;

[Collection(ModelGroup.Name)]
public class VerifierInputTests(ModelFixture models)
{
    private static readonly SamplingSettings Stochastic = new(1f, 8, 3);

    private async Task<(VerifierEngine Verifier, string Session)> Open(SamplingSettings sampling)
    {
        var verifier = new VerifierEngine(models.Target, new VerifierOptions { ContextLength = 64 });
        var info = await verifier.OpenAsync(new OpenSessionRequest(models.Target.Tokenize("Once upon a time"), sampling, models.Target.VocabularyFingerprint));
        Assert.Equal(512, info.VocabularySize);
        return (verifier, info.SessionId);
    }

    [Fact]
    public async Task Draft_token_outside_the_vocabulary_is_named_with_its_position()
    {
        var (verifier, session) = await Open(SamplingSettings.Greedy);
        await using var _ = verifier;
        var ex = await Assert.ThrowsAsync<VerificationException>(async () => await verifier.VerifyAsync(new VerifyRequest(session, [5, 700])));
        Assert.Contains("draft token at position 1 is 700", ex.Message, StringComparison.Ordinal);

        // The session is still usable afterwards: nothing was decoded or lost.
        var ok = await verifier.VerifyAsync(new VerifyRequest(session, []));
        Assert.Equal(0, ok.AcceptedCount);
    }

    [Fact]
    public async Task Draft_with_another_vocabulary_is_refused_before_any_work()
    {
        await using var verifier = new VerifierEngine(models.Target);
        using var other = LlamaModel.Load(TestEnvironment.Model("llama-2-tiny-random.gguf"));
        var ex = await Assert.ThrowsAsync<VocabularyMismatchException>(async () =>
            await verifier.OpenAsync(new OpenSessionRequest([1, 2], SamplingSettings.Greedy, other.VocabularyFingerprint, other.Path)));
        Assert.Contains("llama-2-tiny-random.gguf", ex.Message, StringComparison.Ordinal);
        Assert.Contains("different vocabulary", ex.Message, StringComparison.Ordinal);

        var generator = new SpeculativeGenerator(verifier, other);
        await Assert.ThrowsAsync<VocabularyMismatchException>(() =>
            generator.GenerateAsync([1, 2], new GenerationOptions { DraftLength = 2 }, models.Target));
    }

    [Fact]
    public async Task Stochastic_drafts_need_valid_distributions()
    {
        var (verifier, session) = await Open(Stochastic);
        await using var _ = verifier;
        var missing = await Assert.ThrowsAsync<VerificationException>(async () => await verifier.VerifyAsync(new VerifyRequest(session, [5])));
        Assert.Contains("one draft distribution per draft token", missing.Message, StringComparison.Ordinal);

        var badSum = await Assert.ThrowsAsync<VerificationException>(async () =>
            await verifier.VerifyAsync(new VerifyRequest(session, [5], [new SparseDistribution([5, 6], [0.5f, 0.2f])])));
        Assert.Contains("sums to 0.700000", badSum.Message, StringComparison.Ordinal);

        var zero = await Assert.ThrowsAsync<VerificationException>(async () =>
            await verifier.VerifyAsync(new VerifyRequest(session, [5], [new SparseDistribution([6], [1f])])));
        Assert.Contains("probability 0 in its own draft distribution", zero.Message, StringComparison.Ordinal);

        var nan = await Assert.ThrowsAsync<VerificationException>(async () =>
            await verifier.VerifyAsync(new VerifyRequest(session, [5], [new SparseDistribution([5], [float.NaN])])));
        Assert.Contains("invalid probability", nan.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_session_and_oversized_blocks_are_refused()
    {
        var (verifier, session) = await Open(SamplingSettings.Greedy);
        await using var _ = verifier;
        var unknown = await Assert.ThrowsAsync<VerificationException>(async () => await verifier.VerifyAsync(new VerifyRequest("nope", [])));
        Assert.Contains("unknown verification session 'nope'", unknown.Message, StringComparison.Ordinal);
        var big = await Assert.ThrowsAsync<VerificationException>(async () => await verifier.VerifyAsync(new VerifyRequest(session, Enumerable.Repeat(5, 33).ToArray())));
        Assert.Contains("exceeds the verifier's limit of 32", big.Message, StringComparison.Ordinal);
        await verifier.CloseAsync(session);
        await Assert.ThrowsAsync<VerificationException>(async () => await verifier.VerifyAsync(new VerifyRequest(session, [])));
    }

    [Fact]
    public async Task Prompt_longer_than_the_context_is_refused_with_both_sizes()
    {
        var prompt = Enumerable.Repeat(5, 80).Prepend(1).ToArray();
        var ex = await Assert.ThrowsAsync<SettingException>(() =>
            LocalGeneration.RunAsync(models.Target, null, prompt, new GenerationOptions { DraftLength = 0, ContextLength = 64 }));
        Assert.Contains("81 tokens", ex.Message, StringComparison.Ordinal);
        Assert.Contains("64", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(33)]
    [InlineData(-1)]
    public async Task Draft_length_outside_1_to_32_is_refused(int k)
    {
        var ex = await Assert.ThrowsAsync<SettingException>(() =>
            LocalGeneration.RunAsync(models.Target, models.Drafts["stories260K-Q8_0.gguf"], [1, 2], new GenerationOptions { DraftLength = k }));
        Assert.Equal("k", ex.Setting);
        Assert.Contains($"--k {k} is out of range", ex.CommandLineMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Generation_stops_when_the_context_is_full()
    {
        var prompt = models.Target.Tokenize("Once upon a time");
        var result = await LocalGeneration.RunAsync(models.Target, models.Drafts["stories260K-Q8_0.gguf"], prompt,
            new GenerationOptions { DraftLength = 8, MaxTokens = 500, ContextLength = 48 });
        Assert.Equal(StopReason.ContextFull, result.StopReason);
        Assert.Equal(48 - prompt.Length, result.Tokens.Count);
    }

    [Fact]
    public async Task Kv_caches_are_reused_across_rounds_with_exact_rollback()
    {
        var prompt = models.Target.Tokenize("Once upon a time");
        await using var verifier = new VerifierEngine(models.Target, new VerifierOptions { ContextLength = 128 });
        var session = (await verifier.OpenAsync(new OpenSessionRequest(prompt, SamplingSettings.Greedy, null))).SessionId;
        using var drafter = new Drafter(models.Drafts["stories260K-Q4_0.gguf"], prompt, SamplingSettings.Greedy, 128, 1);
        var drafts = new List<int>();
        var committed = prompt.Length;
        for (var round = 0; round < 10; round++)
        {
            drafter.Draft(6, drafts, null);
            var result = await verifier.VerifyAsync(new VerifyRequest(session, drafts));
            drafter.Commit(drafts, result.AcceptedCount, result.NextToken);
            committed += result.AcceptedCount + 1;
        }

        // Drafter decodes each committed token once (plus rejected drafts); no re-prefill of the prompt.
        Assert.True(drafter.DecodedTokens < prompt.Length + (10 * 6) + 10, $"drafter decoded {drafter.DecodedTokens} tokens");
        Assert.True(committed > prompt.Length + 10);
    }

    [Fact]
    public void Restarted_drafter_proposes_what_a_fresh_drafter_proposes()
    {
        var draft = models.Drafts["stories260K-Q4_0.gguf"];
        var first = models.Target.Tokenize("Once upon a time");
        var second = models.Target.Tokenize("The little dog");
        using var reused = new Drafter(draft, first, SamplingSettings.Greedy, 128, 1);
        var block = new List<int>();
        reused.Draft(8, block, null);
        reused.Commit(block, 3, 77);
        reused.Restart(second);
        reused.Draft(8, block, null);

        using var fresh = new Drafter(draft, second, SamplingSettings.Greedy, 128, 1);
        var expected = new List<int>();
        fresh.Draft(8, expected, null);
        Assert.Equal(expected, block);
    }
}
