namespace ConfigSpec.Profiling.Objectives;

/// <summary>
/// What one episode of pipelined speculation yields on average: from a correction (or the start) to the verdict that
/// cuts the chain. <see cref="Tokens"/> are committed (accepted drafts plus the correction), <see cref="Seconds"/> is
/// the episode's length, <see cref="DraftedTokens"/> every token the board drafted in it (discarded ones included: they
/// cost energy), <see cref="VerifiedBlocks"/> the blocks the verifier computed (they cost money).
/// </summary>
public readonly record struct PipelineEpisode(double Tokens, double Seconds, double DraftedTokens, double VerifiedBlocks)
{
    /// <summary>Tokens per second: the goodput.</summary>
    public double Goodput => Seconds > 0 ? Tokens / Seconds : 0;
}

/// <summary>
/// The goodput model for pipelined rounds: the board drafts block n+1 (K tokens) while block n's verdict is in flight,
/// with at most D blocks unverified; chained blocks are verified as one longer block (no bonus token between them), so
/// chain position p is accepted with α_p given the positions before it (past the profiled positions, their pooled rate).
/// A block starts when the one before is drafted and, once D are in flight, when the oldest verdict is back; it is
/// sent when drafted, and its verdict comes T_verify later. The first rejection, at position j of block b, ends the
/// episode when block b's verdict arrives (or, when a token is being drafted then, at the end of that token): j tokens
/// committed, later blocks discarded, drafting starts again from the correction. The expectation is summed over j exactly (positions until the chain's survival is below 1e-12, or
/// 100,000 drafts). D = 1 is today's sequential round, with its bonus token: (E_K + 1) in K·t + t0 + T_verify.
/// </summary>
public static class PipelinedModel
{
    private const double Negligible = 1e-12;
    private const int MaxPositions = 100_000;

    /// <summary>
    /// One episode's expected figures for K drafts per block and up to D blocks in flight, drafting one token in
    /// <paramref name="secondsPerToken"/> after <paramref name="blockOverheadSeconds"/> per block, each verdict
    /// <paramref name="verifySeconds"/> after its block is sent.
    /// </summary>
    /// <param name="beyond">
    /// Acceptance of chain positions past the profiled ones (a chain of blocks runs past K_max); null = the mean of the
    /// profiled positions. Not the last position's own rate: from a short profile one position can read 1, and a chain
    /// that never breaks would be predicted.
    /// </param>
    public static PipelineEpisode Episode(IReadOnlyList<double?> alpha, int k, int d, double secondsPerToken, double blockOverheadSeconds, double verifySeconds,
        double? beyond = null)
    {
        ArgumentNullException.ThrowIfNull(alpha);
        if (alpha.Count == 0 || k < 1 || d < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(k), $"K ({k}) and D ({d}) must be at least 1, with at least one profiled position");
        }

        var Alpha = AcceptanceAt(alpha, beyond);
        var block = blockOverheadSeconds + (k * secondsPerToken);
        if (d == 1)
        {
            // Sequential: a round yields its accepted prefix and the target's own token (correction or bonus).
            var expected = ObjectiveModel.ExpectedAccepted([.. Enumerable.Range(1, k).Select(p => (double?)Alpha(p))], k);
            return new PipelineEpisode(expected + 1, block + verifySeconds, k, 1);
        }

        // sends[i], verdicts[i]: block i (from 1) is drafted and sent, has its verdict back.
        var sends = new List<double> { 0 };
        var verdicts = new List<double> { double.NegativeInfinity };
        double tokens = 0, seconds = 0, drafted = 0, blocks = 0, survival = 1;
        var position = 0;
        for (var i = 1; position < MaxPositions && survival > Negligible; i++)
        {
            var start = Math.Max(sends[i - 1], i - d >= 1 ? verdicts[i - d] : 0);
            sends.Add(start + block);
            verdicts.Add(start + block + verifySeconds);
            // A cut anywhere in block i is acted on alike: worked out once per block, when a cut there is possible.
            (double Drafted, double End)? afterCut = null;
            for (var q = 0; q < k; q++)
            {
                position++;
                var a = Alpha(position);
                var endsHere = survival * (1 - a);
                if (endsHere > 0)
                {
                    var (draftedBy, end) = afterCut ??= AfterCut(sends, verdicts, verdicts[i], i, d, k, secondsPerToken, blockOverheadSeconds);
                    tokens += endsHere * position;
                    seconds += endsHere * end;
                    drafted += endsHere * draftedBy;
                    blocks += endsHere * i;
                }

                survival *= a;
            }
        }

        if (survival > Negligible)
        {
            // Never cut within the horizon (acceptance 1): the steady state of the last block stands for the rest.
            tokens += survival * position;
            seconds += survival * verdicts[^1];
            drafted += survival * position;
            blocks += survival * (verdicts.Count - 1);
        }

        return new PipelineEpisode(tokens, seconds, drafted, blocks);
    }

    /// <summary>
    /// Expected seconds from the first draft to the last verdict of a generation of <paramref name="tokens"/> tokens with
    /// up to D blocks in flight: episodes as in <see cref="Episode"/> until the tokens are in, and the last one cut short
    /// by the generation's end — the board drafts no further than the generation needs (its last block shorter), and the
    /// verdict of that block, with the target's own token after it, ends the generation. <see cref="Episode"/> is the
    /// steady state; a generation pays the last verdict's round trip once more than its share, which counts when episodes
    /// are long against the generation (high acceptance, many blocks in flight). Exact up to <see cref="MaxExactTokens"/>
    /// tokens (the expectation over where each episode is cut); past that the steady state carries the rest. D = 1:
    /// tokens / the sequential goodput (rounds do not overlap, so a generation is its rounds).
    /// </summary>
    public static double GenerationSeconds(IReadOnlyList<double?> alpha, int k, int d, double secondsPerToken, double blockOverheadSeconds, double verifySeconds,
        int tokens, double? beyond = null)
    {
        if (tokens < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(tokens), $"a generation ({tokens} tokens) must have at least one token");
        }

        var steady = Episode(alpha, k, d, secondsPerToken, blockOverheadSeconds, verifySeconds, beyond);
        if (d == 1)
        {
            return tokens / steady.Goodput;
        }

        var exact = Math.Min(tokens, MaxExactTokens);
        var Alpha = AcceptanceAt(alpha, beyond);
        // Where a full episode is cut, and when that cut is acted on (the schedule of Episode).
        var (cutAt, cutEnd) = Cuts(Alpha, k, d, secondsPerToken, blockOverheadSeconds, verifySeconds, exact);
        // seconds[n]: expected time to commit n more tokens from an episode's start.
        var seconds = new double[exact + 1];
        for (var n = 1; n <= exact; n++)
        {
            var finish = Finish(n - 1, k, d, secondsPerToken, blockOverheadSeconds, verifySeconds);
            // A cut in the generation's last (shorter) block is acted on when its verdict is in: nothing is drafted after it.
            var lastBlock = n >= 2 ? ((n - 2) / k * k) + 1 : 1;
            double total = 0, survival = 1;
            for (var p = 1; p < n; p++)
            {
                total += cutAt[p] * ((p >= lastBlock ? finish : cutEnd[p]) + seconds[n - p]);
                survival *= Alpha(p);
            }

            seconds[n] = total + (survival * finish);
        }

        return seconds[exact] + ((tokens - exact) / steady.Goodput);
    }

    /// <summary>
    /// α_p for chain position p: the profiled rate (clamped to 0..1, unreached = 0), and past the profiled positions
    /// <paramref name="beyond"/> (null = the mean of the profiled positions).
    /// </summary>
    private static Func<int, double> AcceptanceAt(IReadOnlyList<double?> alpha, double? beyond)
    {
        var past = Math.Clamp(beyond ?? alpha.Average(a => a ?? 0), 0, 1);
        return position => position <= alpha.Count ? Math.Clamp(alpha[position - 1] ?? 0, 0, 1) : past;
    }

    /// <summary>Generations longer than this are modelled exactly over their first this many tokens and at the steady state after.</summary>
    public const int MaxExactTokens = 2048;

    /// <summary>For chain positions 1..<paramref name="positions"/>: the probability that the episode is cut there, and when that cut is acted on.</summary>
    private static (double[] Probability, double[] End) Cuts(Func<int, double> alpha, int k, int d, double secondsPerToken, double overhead, double verifySeconds,
        int positions)
    {
        var probability = new double[positions + 1];
        var end = new double[positions + 1];
        var sends = new List<double> { 0 };
        var verdicts = new List<double> { double.NegativeInfinity };
        var block = overhead + (k * secondsPerToken);
        var survival = 1.0;
        var position = 0;
        for (var i = 1; position < positions; i++)
        {
            var start = Math.Max(sends[i - 1], i - d >= 1 ? verdicts[i - d] : 0);
            sends.Add(start + block);
            verdicts.Add(start + block + verifySeconds);
            var endOfBlock = AfterCut(sends, verdicts, verdicts[i], i, d, k, secondsPerToken, overhead).End;
            for (var q = 0; q < k && position < positions; q++)
            {
                position++;
                var a = alpha(position);
                probability[position] = survival * (1 - a);
                end[position] = endOfBlock;
                survival *= a;
            }
        }

        return (probability, end);
    }

    /// <summary>
    /// When the verdict of the last block is in, for an episode that drafts exactly <paramref name="drafts"/> tokens
    /// (blocks of K, the last shorter, none cut): a generation's end, its last verdict carrying the target's token.
    /// </summary>
    private static double Finish(int drafts, int k, int d, double secondsPerToken, double overhead, double verifySeconds)
    {
        var sends = new List<double> { 0 };
        var verdicts = new List<double> { double.NegativeInfinity };
        var blocks = Math.Max(1, (drafts + k - 1) / k);
        for (var i = 1; i <= blocks; i++)
        {
            var length = Math.Min(k, drafts - ((i - 1) * k));
            var start = Math.Max(sends[i - 1], i - d >= 1 ? verdicts[i - d] : 0);
            sends.Add(start + overhead + (length * secondsPerToken));
            verdicts.Add(sends[i] + verifySeconds);
        }

        return verdicts[^1];
    }

    /// <summary>
    /// Tokens drafted when the cutting verdict (at <paramref name="verdict"/>) is acted on, and when that is: all of blocks
    /// 1..b, and what the blocks after it (at most D - 1 of them, each starting when the one before is drafted and the
    /// verdict D blocks back is in) had drafted by then. A token being drafted when the verdict arrives is finished first
    /// (a decode is not interrupted), so the next episode starts at the end of that token.
    /// </summary>
    private static (double Drafted, double End) AfterCut(List<double> sends, List<double> verdicts, double verdict, int b, int d, int k, double secondsPerToken,
        double overhead)
    {
        double drafted = b * k;
        var previousSend = sends[b];
        for (var j = b + 1; j < b + d; j++)
        {
            var start = Math.Max(previousSend, j - d >= 1 ? verdicts[j - d] : 0);
            if (start >= verdict)
            {
                break;
            }

            // Tokens begun before the verdict (the first is always drafted: the board asks after each token).
            var done = Math.Clamp(Math.Ceiling(((verdict - start - overhead) / secondsPerToken) - 1e-9), 1, k);
            var finish = start + overhead + (done * secondsPerToken);
            if (done < k || finish > verdict)
            {
                // Drafting block j when the verdict arrives: it stops at the end of the token in progress, unsent.
                return (drafted + done, Math.Max(verdict, finish));
            }

            drafted += k;
            previousSend = start + overhead + (k * secondsPerToken);
        }

        return (drafted, verdict);
    }
}

/// <summary>Draft-length policies that model their rounds, told when the rounds are pipelined.</summary>
public static class PipelinedPolicies
{
    /// <summary>
    /// With <paramref name="depth"/> ≥ 2 blocks in flight, <c>ucb-specstop</c> chooses K with the pipelined model (its learned
    /// α, τ, t0 and wait); other policies are unchanged (static K, confidence stops; the profile policy is built with the
    /// model by its maker). Returns the policy.
    /// </summary>
    public static Speculative.Policies.IDraftLengthPolicy Adapt(Speculative.Policies.IDraftLengthPolicy policy, int depth)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (depth > 1 && policy is Speculative.Policies.UcbSpecStopPolicy ucb)
        {
            ucb.PipelinedCost = (alpha, k, tau, t0, wait) => 1 / Math.Max(1e-12, PipelinedModel.Episode(alpha, k, depth, tau, t0, wait).Goodput);
        }

        return policy;
    }
}

