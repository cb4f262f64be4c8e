using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Sampling;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Speculative;

[Collection(ModelGroup.Name)]
public class VerifierEngineTests(ModelFixture models)
{
    [Fact]
    public async Task Concurrent_sessions_share_decode_calls_and_match_local_decoding()
    {
        var options = new GenerationOptions { DraftLength = 4, MaxTokens = 60, ContextLength = 256 };
        var expected = new List<IReadOnlyList<int>>();
        foreach (var prompt in DeterminismPrompts.All)
        {
            expected.Add((await LocalGeneration.RunAsync(models.Target, null, models.Target.Tokenize(prompt), options with { DraftLength = 0 })).Tokens);
        }

        await using var engine = new VerifierEngine(models.Target, new VerifierOptions
        {
            ContextLength = 256, MaxSessions = 8, BatchWindow = TimeSpan.FromMilliseconds(5),
        });
        var runs = DeterminismPrompts.All.Select((prompt, i) => Task.Run(async () =>
        {
            var generator = new SpeculativeGenerator(engine, models.Drafts["stories260K-Q4_K_M.gguf"]);
            return await generator.GenerateAsync(models.Target.Tokenize(prompt), options with { DeviceId = $"board{i}" }, models.Target);
        })).ToArray();
        var results = await Task.WhenAll(runs);

        for (var i = 0; i < DeterminismPrompts.All.Length; i++)
        {
            Assert.Equal(expected[i], results[i].Tokens);
        }

        var rounds = results.Sum(r => r.Rounds.Count);
        Assert.True(engine.DecodeCalls < rounds, $"{engine.DecodeCalls} decode calls for {rounds} rounds: no batching happened");
        Assert.Equal(8, engine.Usage.Count);
        Assert.Equal(results[3].Rounds.Count, engine.Usage["board3"].Rounds);
        Assert.Equal(results[3].Rounds.Sum(r => r.Accepted), engine.Usage["board3"].AcceptedTokens);
        Assert.True(engine.Usage["board3"].BilledTokens >= engine.Usage["board3"].VerifiedTokens);
        Assert.Equal(0, engine.SessionCount);
    }

    [Fact]
    public async Task With_batches_of_one_every_round_is_its_own_decode_call()
    {
        await using var engine = new VerifierEngine(models.Target, new VerifierOptions
        {
            ContextLength = 256, MaxSessions = 4, BatchWindow = TimeSpan.FromMilliseconds(5), MaxBatchRounds = 1,
        });
        var options = new GenerationOptions { DraftLength = 4, MaxTokens = 30, ContextLength = 256 };
        var results = await Task.WhenAll(DeterminismPrompts.All.Take(4).Select(prompt => Task.Run(() =>
            new SpeculativeGenerator(engine, models.Drafts["stories260K-Q4_0.gguf"]).GenerateAsync(models.Target.Tokenize(prompt), options, models.Target))));
        Assert.Equal(results.Sum(r => r.Rounds.Count), engine.DecodeCalls);
    }

    [Fact]
    public async Task A_repeated_round_returns_the_cached_result_and_a_gap_is_refused()
    {
        await using var engine = new VerifierEngine(models.Target, new VerifierOptions { ContextLength = 128 });
        var prompt = models.Target.Tokenize("Once upon a time");
        var session = (await engine.OpenAsync(new OpenSessionRequest(prompt, SamplingSettings.Greedy, null))).SessionId;
        var first = await engine.VerifyAsync(new VerifyRequest(session, [5, 6, 7], Round: 1, Position: prompt.Length));
        var again = await engine.VerifyAsync(new VerifyRequest(session, [5, 6, 7], Round: 1, Position: prompt.Length));
        Assert.Equal((first.AcceptedCount, first.NextToken), (again.AcceptedCount, again.NextToken));

        var position = prompt.Length + first.AcceptedCount + 1;
        var skipped = await Assert.ThrowsAsync<VerificationException>(() => engine.VerifyAsync(new VerifyRequest(session, [], Round: 3, Position: position)));
        Assert.Equal(VerificationErrorCode.BadRound, skipped.Code);
        Assert.Contains("expected round 2, got 3", skipped.Message, StringComparison.Ordinal);

        var wrongPosition = await Assert.ThrowsAsync<VerificationException>(() => engine.VerifyAsync(new VerifyRequest(session, [], Round: 2, Position: position + 1)));
        Assert.Equal(VerificationErrorCode.BadRound, wrongPosition.Code);

        // The session advanced exactly once: round 2 at the right position works.
        var second = await engine.VerifyAsync(new VerifyRequest(session, [], Round: 2, Position: position));
        Assert.Equal(0, second.AcceptedCount);
    }

    [Fact]
    public async Task Least_recently_used_session_is_evicted_and_a_generator_reopens_it_transparently()
    {
        await using var engine = new VerifierEngine(models.Target, new VerifierOptions { ContextLength = 128, MaxSessions = 2 });
        var prompt = models.Target.Tokenize("Once upon a time");
        var a = (await engine.OpenAsync(new OpenSessionRequest(prompt, SamplingSettings.Greedy, null))).SessionId;
        var b = (await engine.OpenAsync(new OpenSessionRequest(prompt, SamplingSettings.Greedy, null))).SessionId;
        await engine.VerifyAsync(new VerifyRequest(b, []));
        _ = await engine.OpenAsync(new OpenSessionRequest(prompt, SamplingSettings.Greedy, null)); // evicts a
        var evicted = await Assert.ThrowsAsync<VerificationException>(() => engine.VerifyAsync(new VerifyRequest(a, [])));
        Assert.Equal(VerificationErrorCode.SessionEvicted, evicted.Code);
        var unknown = await Assert.ThrowsAsync<VerificationException>(() => engine.VerifyAsync(new VerifyRequest("nope", [])));
        Assert.Equal(VerificationErrorCode.UnknownSession, unknown.Code);

        // A generator whose session is evicted mid-run re-opens with its full context; output is unchanged.
        await using var small = new VerifierEngine(models.Target, new VerifierOptions { ContextLength = 256, MaxSessions = 1 });
        var options = new GenerationOptions { DraftLength = 4, MaxTokens = 80, ContextLength = 256 };
        var expected = await LocalGeneration.RunAsync(models.Target, null, prompt, options with { DraftLength = 0 });
        var generator = new SpeculativeGenerator(new EvictBeforeRound(small, 3, prompt), models.Drafts["stories260K-Q8_0.gguf"]);
        var result = await generator.GenerateAsync(prompt, options, models.Target);
        Assert.Equal(1, generator.Reopened);
        Assert.Equal(expected.Tokens, result.Tokens);
    }

    /// <summary>Forwards to an engine with one session slot, and before round N opens another session so the first is evicted.</summary>
    private sealed class EvictBeforeRound(VerifierEngine inner, int round, int[] prompt) : IVerifier
    {
        private int _verifies;

        public ValueTask<SessionInfo> OpenAsync(OpenSessionRequest request, CancellationToken cancellationToken = default) =>
            new(inner.OpenAsync(request, cancellationToken));

        public async ValueTask<VerifyResult> VerifyAsync(VerifyRequest request, CancellationToken cancellationToken = default)
        {
            if (++_verifies == round)
            {
                var other = await inner.OpenAsync(new OpenSessionRequest(prompt, SamplingSettings.Greedy, null), cancellationToken);
                await inner.CloseAsync(other.SessionId, cancellationToken);
            }

            return await inner.VerifyAsync(request, cancellationToken);
        }

        public ValueTask CloseAsync(string sessionId, CancellationToken cancellationToken = default) => new(inner.CloseAsync(sessionId, cancellationToken));

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>
    /// Requests are admitted in the order they are handled, not sent: a block that came before the one it follows waits,
    /// and when that one turns out dropped (its chain was cut) the waiting block is refused at once, not left waiting.
    /// </summary>
    [Fact]
    public async Task A_block_waiting_for_a_dropped_block_is_refused_at_once()
    {
        await using var engine = new VerifierEngine(models.Target, new VerifierOptions { ContextLength = 128, MaxPipeline = 4 });
        var prompt = models.Target.Tokenize("Once upon a time");
        var info = await engine.OpenAsync(new OpenSessionRequest(prompt, SamplingSettings.Greedy, models.Target.VocabularyFingerprint, Pipeline: 4));
        Assert.Equal(4, info.Pipeline);
        // The target's own first token, drafted wrong on purpose: round 1 is cut at its first draft.
        var next = (await LocalGeneration.RunAsync(models.Target, null, prompt, new GenerationOptions { MaxTokens = 1, DraftLength = 0, ContextLength = 128 })).Tokens[0];
        var wrong = (next + 1) % 512;
        var cut = await engine.VerifyAsync(new VerifyRequest(info.SessionId, [wrong, 5], null, 1, prompt.Length, 0, false, true));
        Assert.Equal(0, cut.AcceptedCount);
        Assert.Equal(next, cut.NextToken);

        // Round 3 (after 2) comes first and waits; round 2 (chained after the cut round 1) is dropped, and so is 3, at once.
        var third = engine.VerifyAsync(new VerifyRequest(info.SessionId, [7], null, 3, prompt.Length + 3, 2, true, true));
        await Task.Delay(50);
        Assert.False(third.IsCompleted, "round 3 did not wait for round 2");
        var second = await Assert.ThrowsAsync<VerificationException>(() => engine.VerifyAsync(new VerifyRequest(info.SessionId, [9, 9], null, 2, prompt.Length + 1, 1, true, true)));
        Assert.Equal(VerificationErrorCode.Superseded, second.Code);
        var ex = await Assert.ThrowsAsync<VerificationException>(() => third.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(VerificationErrorCode.Superseded, ex.Code);

        // The session goes on: a new chain from the cut round.
        var fresh = await engine.VerifyAsync(new VerifyRequest(info.SessionId, [], null, 4, prompt.Length + 1, 1, false, false));
        Assert.True(fresh.NextToken >= 0);
    }
}
