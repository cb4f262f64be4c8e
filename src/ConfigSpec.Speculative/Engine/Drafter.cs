using ConfigSpec.Interop.Llama;
using ConfigSpec.Speculative.Sampling;

namespace ConfigSpec.Speculative.Engine;

/// <summary>
/// The draft side: proposes blocks of tokens with a small model and keeps its KV cache in step with the
/// committed sequence, rolling back exactly the rejected drafts. Each block drafted is appended to an unverified tail,
/// so the next block continues past it (pipelined speculation); a verdict commits the oldest unverified block, or cuts it
/// and drops everything after it. Not thread-safe.
/// </summary>
public sealed class Drafter : IDisposable
{
    private readonly LlamaContext _context;
    private readonly SamplingSettings _sampling;
    private readonly Xoshiro256 _random;
    private readonly List<int> _sequence; // committed tokens, then the unverified drafts
    private readonly Queue<int> _blocks = new(); // lengths of the unverified blocks, oldest first
    private readonly Queue<(ulong, ulong, ulong, ulong)> _randomAt = new(); // the random state before each unverified block
    private readonly float[] _probabilities;
    private readonly List<double> _tokenTimes = [];
    private int _committedCount;
    private int _kvCount; // tokens of the sequence in the KV cache (a prefix)

    public Drafter(LlamaModel draft, IReadOnlyList<int> prompt, SamplingSettings sampling, int contextLength, int threads)
    {
        ArgumentNullException.ThrowIfNull(draft);
        ArgumentNullException.ThrowIfNull(prompt);
        _sampling = sampling ?? throw new ArgumentNullException(nameof(sampling));
        _context = draft.CreateContext(new LlamaContextOptions { ContextLength = contextLength, Threads = threads });
        _random = Xoshiro256.ForStream(sampling.Seed, 1);
        _sequence = [.. prompt];
        _committedCount = prompt.Count;
        _probabilities = new float[draft.VocabularySize];
    }

    public LlamaModel Model => _context.Model;

    public int ContextLength => _context.ContextLength;

    /// <summary>
    /// For the last block: seconds from the start of <see cref="Draft"/> until each draft token was chosen. Entry i is
    /// what drafting a block of i + 1 tokens costs, so one long block also times every shorter one.
    /// </summary>
    public IReadOnlyList<double> TokenTimes => _tokenTimes;

    /// <summary>Drafted tokens not yet verified (all unverified blocks).</summary>
    public int UnverifiedCount => _sequence.Count - _committedCount;

    /// <summary>Tokens decoded by the draft model so far (catch-up and drafting), for speed accounting.</summary>
    public long DecodedTokens { get; private set; }

    /// <summary>Starts a new sequence in the same context (no re-allocation): clears the KV cache and the committed tokens.</summary>
    public void Restart(IReadOnlyList<int> prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        _context.Clear();
        _sequence.Clear();
        _sequence.AddRange(prompt);
        _committedCount = prompt.Count;
        _blocks.Clear();
        _randomAt.Clear();
        _kvCount = 0;
    }

    /// <summary>
    /// Proposes <paramref name="k"/> tokens into <paramref name="tokens"/>, continuing after any unverified blocks; for
    /// stochastic sampling also their sparse draft distributions. <paramref name="stop"/>, when given, is asked after each token with the number
    /// drafted so far and the draft's probability of that token (NaN unless <paramref name="withProbability"/>); true ends
    /// the block early (what was drafted is kept).
    /// </summary>
    public void Draft(int k, List<int> tokens, List<SparseDistribution>? distributions, Func<int, double, bool>? stop = null, bool withProbability = true)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        tokens.Clear();
        distributions?.Clear();
        _tokenTimes.Clear();
        _randomAt.Enqueue(_random.State);
        if (k == 0)
        {
            _blocks.Enqueue(0);
            return;
        }

        var started = System.Diagnostics.Stopwatch.GetTimestamp();

        // Catch up: tokens not yet in the KV cache (normally one: the verifier's last token, or the last draft of the
        // unverified block this one continues).
        var pending = _sequence.Count - _kvCount;
        var catchUp = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_sequence).Slice(_kvCount, pending);
        _context.Decode(catchUp, _kvCount);
        DecodedTokens += pending;
        _kvCount = _sequence.Count;
        for (var i = 0; i < k; i++)
        {
            var token = Choose(distributions);
            tokens.Add(token);
            _tokenTimes.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
            if (stop is not null && stop(i + 1, withProbability ? Probability(token) : double.NaN))
            {
                break;
            }

            if (i < k - 1)
            {
                _context.Decode([token], _kvCount++);
                DecodedTokens++;
            }
        }

        // The KV cache holds all but the last drafted token.
        _sequence.AddRange(tokens);
        _blocks.Enqueue(tokens.Count);
    }

    /// <summary>
    /// Applies the verdict on the oldest unverified block (<paramref name="drafts"/>): its first <paramref name="accepted"/>
    /// drafts and the verifier's next token. A next token of -1 (accepted whole, a chained block follows) keeps every later
    /// block; any token ends the chain, so every later unverified block is dropped and the KV cache rolled back to the
    /// accepted prefix.
    /// </summary>
    public void Commit(IReadOnlyList<int> drafts, int accepted, int next)
    {
        ArgumentNullException.ThrowIfNull(drafts);
        var block = _blocks.Count > 0 ? _blocks.Dequeue() : 0;
        _randomAt.TryDequeue(out _);
        if (block != drafts.Count || accepted < 0 || accepted > block || (next < 0 && accepted != block))
        {
            throw new InvalidOperationException($"verdict ({accepted} of {drafts.Count} accepted) does not match the oldest unverified block of {block} drafts");
        }

        var before = _committedCount;
        _committedCount += accepted;
        if (next < 0)
        {
            return;
        }

        _sequence.RemoveRange(_committedCount, _sequence.Count - _committedCount);
        _sequence.Add(next);
        _committedCount++;
        _blocks.Clear();
        RewindRandom();
        if (_kvCount > before + accepted)
        {
            _context.TruncateSequence(0, before + accepted);
            _kvCount = before + accepted;
        }
    }

    /// <summary>Drops every unverified block (a session lost with blocks in flight), rolling the KV cache back to the committed tokens.</summary>
    public void DiscardUnverified()
    {
        _sequence.RemoveRange(_committedCount, _sequence.Count - _committedCount);
        _blocks.Clear();
        RewindRandom();
        // The last committed token leaves the cache too: the next block's catch-up decodes it for the logits it drafts from.
        if (_kvCount > _committedCount - 1)
        {
            _context.TruncateSequence(0, _committedCount - 1);
            _kvCount = _committedCount - 1;
        }
    }

    /// <summary>
    /// Discarded blocks give their random draws back: the stream goes on from where the first discarded block began, as if
    /// it had never been drafted, so a seed gives the same output whatever number of blocks were in flight at a cut (those
    /// draws decided nothing the output depends on).
    /// </summary>
    private void RewindRandom()
    {
        if (_randomAt.TryDequeue(out var state))
        {
            _random.Restore(state);
        }

        _randomAt.Clear();
    }

    /// <summary>The draft's probability of <paramref name="token"/> at the current position (softmax of the logits; the sampling distribution when sampling).</summary>
    private double Probability(int token)
    {
        if (!_sampling.IsGreedy)
        {
            return _probabilities[token];
        }

        var logits = _context.GetLogits(-1);
        var max = float.NegativeInfinity;
        foreach (var l in logits)
        {
            max = Math.Max(max, l);
        }

        double sum = 0;
        foreach (var l in logits)
        {
            sum += Math.Exp(l - max);
        }

        return Math.Exp(logits[token] - max) / sum;
    }

    private int Choose(List<SparseDistribution>? distributions)
    {
        var logits = _context.GetLogits(-1);
        if (_sampling.IsGreedy)
        {
            return TokenDistribution.ArgMax(logits);
        }

        TokenDistribution.Dense(logits, _sampling, _probabilities);
        var token = TokenDistribution.Sample(_probabilities, _random);
        distributions?.Add(TokenDistribution.ToSparse(_probabilities));
        return token;
    }

    public void Dispose() => _context.Dispose();
}
