using ConfigSpec.Interop.Llama;
using ConfigSpec.Speculative.Sampling;

namespace ConfigSpec.Speculative.Engine;

/// <summary>
/// The draft side: proposes blocks of tokens with a small model and keeps its KV cache in step with the
/// committed sequence, rolling back exactly the rejected drafts. Not thread-safe.
/// </summary>
public sealed class Drafter : IDisposable
{
    private readonly LlamaContext _context;
    private readonly SamplingSettings _sampling;
    private readonly Xoshiro256 _random;
    private readonly List<int> _committed;
    private readonly float[] _probabilities;
    private readonly List<double> _tokenTimes = [];
    private int _kvCount;
    private int _lastDrafted;

    public Drafter(LlamaModel draft, IReadOnlyList<int> prompt, SamplingSettings sampling, int contextLength, int threads)
    {
        ArgumentNullException.ThrowIfNull(draft);
        ArgumentNullException.ThrowIfNull(prompt);
        _sampling = sampling ?? throw new ArgumentNullException(nameof(sampling));
        _context = draft.CreateContext(new LlamaContextOptions { ContextLength = contextLength, Threads = threads });
        _random = Xoshiro256.ForStream(sampling.Seed, 1);
        _committed = [.. prompt];
        _probabilities = new float[draft.VocabularySize];
    }

    public LlamaModel Model => _context.Model;

    public int ContextLength => _context.ContextLength;

    /// <summary>
    /// For the last block: seconds from the start of <see cref="Draft"/> until each draft token was chosen. Entry i is
    /// what drafting a block of i + 1 tokens costs, so one long block also times every shorter one.
    /// </summary>
    public IReadOnlyList<double> TokenTimes => _tokenTimes;

    /// <summary>Tokens decoded by the draft model so far (catch-up and drafting), for speed accounting.</summary>
    public long DecodedTokens { get; private set; }

    /// <summary>Starts a new sequence in the same context (no re-allocation): clears the KV cache and the committed tokens.</summary>
    public void Restart(IReadOnlyList<int> prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        _context.Clear();
        _committed.Clear();
        _committed.AddRange(prompt);
        _kvCount = 0;
        _lastDrafted = 0;
    }

    /// <summary>
    /// Proposes <paramref name="k"/> tokens into <paramref name="tokens"/>; for stochastic sampling also
    /// their sparse draft distributions. <paramref name="stop"/>, when given, is asked after each token with the number
    /// drafted so far and the draft's probability of that token (NaN unless <paramref name="withProbability"/>); true ends
    /// the block early (what was drafted is kept).
    /// </summary>
    public void Draft(int k, List<int> tokens, List<SparseDistribution>? distributions, Func<int, double, bool>? stop = null, bool withProbability = true)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        tokens.Clear();
        distributions?.Clear();
        _tokenTimes.Clear();
        _lastDrafted = k;
        if (k == 0)
        {
            return;
        }

        var started = System.Diagnostics.Stopwatch.GetTimestamp();

        // Catch up: committed tokens not yet in the KV cache (normally just the verifier's last token).
        var pending = _committed.Count - _kvCount;
        var catchUp = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_committed).Slice(_kvCount, pending);
        _context.Decode(catchUp, _kvCount);
        DecodedTokens += pending;
        var position = _committed.Count;
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
                _context.Decode([token], position++);
                DecodedTokens++;
            }
        }

        _lastDrafted = tokens.Count; // the KV cache holds all but the last drafted token
        _kvCount = _committed.Count;
    }

    /// <summary>Applies a verification outcome: the first <paramref name="accepted"/> drafts and the verifier's next token.</summary>
    public void Commit(IReadOnlyList<int> drafts, int accepted, int next)
    {
        ArgumentNullException.ThrowIfNull(drafts);
        var before = _committed.Count;
        for (var i = 0; i < accepted; i++)
        {
            _committed.Add(drafts[i]);
        }

        _committed.Add(next);
        if (_lastDrafted > 0)
        {
            // KV holds the drafts d1..d(k-1); keep the accepted ones, drop the rest.
            var valid = before + Math.Min(accepted, _lastDrafted - 1);
            _context.TruncateSequence(0, valid);
            _kvCount = valid;
        }

        _lastDrafted = 0;
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
