using System.Diagnostics.Metrics;

namespace ConfigSpec.Speculative.Verification;

/// <summary>
/// What an operator scrapes from a verifier (<c>configspec-verifier --http</c>, <c>GET /metrics</c>): rounds, draft
/// tokens verified and accepted and tokens billed per board, rounds per decode call, decode time, open sessions,
/// evictions and refusals by protocol code. Rates (rounds/s) come from the counters in the scraper
/// (<c>rate(configspec_verifier_rounds_total[1m])</c>). One meter per process: every engine in it counts into it.
/// </summary>
public static class VerifierMetrics
{
    public const string MeterName = "ConfigSpec.Verifier";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Counter<long> Rounds = Meter.CreateCounter<long>("configspec_verifier_rounds", description: "Verification rounds concluded, by board");

    private static readonly Counter<long> Verified = Meter.CreateCounter<long>("configspec_verifier_verified_tokens", description: "Draft tokens verified, by board");

    private static readonly Counter<long> Accepted = Meter.CreateCounter<long>("configspec_verifier_accepted_tokens", description: "Draft tokens accepted, by board");

    private static readonly Counter<long> Billed = Meter.CreateCounter<long>("configspec_verifier_billed_tokens",
        description: "Tokens the target decoded for a board (drafts plus the committed tokens fed with them): what a cloud bills");

    private static readonly Histogram<long> BatchRounds = Meter.CreateHistogram<long>("configspec_verifier_batch_rounds", description: "Rounds sharing one decode call",
        tags: null, advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64] });

    private static readonly Histogram<double> DecodeTime = Meter.CreateHistogram<double>("configspec_verifier_decode_duration", "s", "Seconds one decode call of the target took",
        tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });

    private static readonly UpDownCounter<long> OpenSessions = Meter.CreateUpDownCounter<long>("configspec_verifier_sessions_open", description: "Verification sessions held now");

    private static readonly Counter<long> Opened = Meter.CreateCounter<long>("configspec_verifier_sessions_opened", description: "Verification sessions opened");

    private static readonly Counter<long> Evictions = Meter.CreateCounter<long>("configspec_verifier_sessions_evicted", description: "Sessions evicted (least recently used) to make room for a new one");

    private static readonly Counter<long> Errors = Meter.CreateCounter<long>("configspec_verifier_errors", description: "Requests refused, by protocol error code");

    internal static void Round(string board, int verified, int accepted, int billed)
    {
        var tag = new KeyValuePair<string, object?>("board", board);
        Rounds.Add(1, tag);
        Verified.Add(verified, tag);
        Accepted.Add(accepted, tag);
        Billed.Add(billed, tag);
    }

    internal static void Decode(int rounds, double seconds)
    {
        BatchRounds.Record(rounds);
        DecodeTime.Record(seconds);
    }

    internal static void SessionOpened()
    {
        Opened.Add(1);
        OpenSessions.Add(1);
    }

    internal static void SessionsClosed(int count) => OpenSessions.Add(-count);

    internal static void Evicted() => Evictions.Add(1);

    /// <summary>One refused request; <paramref name="code"/> is the protocol error's name (snake_case).</summary>
    public static void Error(string code) => Errors.Add(1, new KeyValuePair<string, object?>("code", code));
}
