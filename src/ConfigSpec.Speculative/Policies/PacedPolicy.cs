using ConfigSpec.Contracts;

namespace ConfigSpec.Speculative.Policies;

/// <summary>
/// Holds drafting to a board's pace: each drafted token waits until its time at <paramref name="tokensPerSecond"/> has
/// come (a stand-in for a slower board in lab runs on a fast machine), then the wrapped policy is asked with the time as
/// it is then. With <paramref name="probe"/>, the policy is also told the link probe's latest round trip at that time
/// (the generator's own reading was taken before the wait). K and everything else are the wrapped policy's.
/// </summary>
public sealed class PacedPolicy : IDraftLengthPolicy
{
    private readonly IDraftLengthPolicy _inner;
    private readonly double _tokensPerSecond;
    private readonly Func<double?>? _probe;

    public PacedPolicy(IDraftLengthPolicy inner, double tokensPerSecond, Func<double?>? probe = null)
    {
        _inner = inner ?? throw new ArgumentNullException(nameof(inner));
        if (!(tokensPerSecond > 0) || double.IsInfinity(tokensPerSecond))
        {
            throw new SettingException("draft_tokens_per_s", $"{tokensPerSecond} must be a positive number of tokens per second");
        }

        _tokensPerSecond = tokensPerSecond;
        _probe = probe;
    }

    public string Name => _inner.Name;

    public int KMax => _inner.KMax;

    public bool WantsLinkProbe => _inner.WantsLinkProbe;

    public bool ReadsConfidence => _inner.ReadsConfidence;

    public int Choose() => _inner.Choose();

    public void Observe(RoundObservation round) => _inner.Observe(round);

    public bool StopDrafting(in DraftProgress progress)
    {
        var due = progress.Drafted / _tokensPerSecond;
        if (due > progress.ElapsedSeconds)
        {
            // Thread.Sleep truncates to whole milliseconds; rounding up keeps the pace from running a little fast.
            Thread.Sleep((int)Math.Ceiling((due - progress.ElapsedSeconds) * 1000));
        }

        return _inner.StopDrafting(progress with
        {
            ElapsedSeconds = Math.Max(due, progress.ElapsedSeconds),
            LinkRoundTripSeconds = _probe is null ? progress.LinkRoundTripSeconds : _inner.WantsLinkProbe ? _probe() : null,
        });
    }
}
