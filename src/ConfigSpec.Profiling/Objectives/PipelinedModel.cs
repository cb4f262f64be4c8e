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

        var past = Math.Clamp(beyond ?? alpha.Average(a => a ?? 0), 0, 1);
        double Alpha(int position) => position <= alpha.Count ? Math.Clamp(alpha[position - 1] ?? 0, 0, 1) : past;
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
            for (var q = 0; q < k; q++)
            {
                position++;
                var a = Alpha(position);
                var endsHere = survival * (1 - a);
                if (endsHere > 0)
                {
                    var (draftedBy, end) = AfterCut(sends, verdicts, verdicts[i], i, d, k, secondsPerToken, blockOverheadSeconds);
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

