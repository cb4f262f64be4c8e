using System.Diagnostics.Metrics;

namespace ConfigSpec.Aggregator.Metrics;

/// <summary>
/// What an operator scrapes from the aggregator (<c>GET /metrics</c>, Prometheus text through OpenTelemetry's exporter):
/// messages received, stored, duplicated, ignored and refused by reason, database failures, and the ingest lag (from a
/// message's own time to its storing). One meter per process: every aggregator in it counts into the same instruments.
/// </summary>
public static class AggregatorMetrics
{
    public const string MeterName = "ConfigSpec.Aggregator";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Counter<long> Received = Meter.CreateCounter<long>("configspec_aggregator_messages_received", description: "Board messages received from the broker");

    private static readonly Counter<long> Stored = Meter.CreateCounter<long>("configspec_aggregator_messages_stored", description: "Board messages stored");

    private static readonly Counter<long> Duplicates = Meter.CreateCounter<long>("configspec_aggregator_messages_duplicate", description: "Valid messages already stored (a sequence number seen before)");

    private static readonly Counter<long> Ignored = Meter.CreateCounter<long>("configspec_aggregator_messages_ignored", description: "Messages on topics the aggregator does not keep, or cleared retained topics");

    private static readonly Counter<long> Refused = Meter.CreateCounter<long>("configspec_aggregator_messages_refused", description: "Messages refused, by reason");

    private static readonly Counter<long> DatabaseFailures = Meter.CreateCounter<long>("configspec_aggregator_database_failures", description: "Valid messages the database would not take, after retries");

    private static readonly Histogram<double> IngestLag = Meter.CreateHistogram<double>("configspec_aggregator_ingest_lag", "s", "Seconds from a stored message's own time to its storing",
        tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600] });

    internal static void Batch(int received, int stored, int duplicates, int ignored)
    {
        Received.Add(received);
        Stored.Add(stored);
        Duplicates.Add(duplicates);
        Ignored.Add(ignored);
    }

    internal static void Refusal(string reason) => Refused.Add(1, new KeyValuePair<string, object?>("reason", reason));

    internal static void DatabaseFailure() => DatabaseFailures.Add(1);

    internal static void Lag(double seconds) => IngestLag.Record(Math.Max(0, seconds));
}
