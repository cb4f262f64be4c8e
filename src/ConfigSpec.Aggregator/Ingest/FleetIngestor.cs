using ConfigSpec.Aggregator.Metrics;
using ConfigSpec.Contracts;
using System.Text;
using ConfigSpec.Aggregator.Ranking;
using ConfigSpec.Aggregator.Storage;
using ConfigSpec.Fleet;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Transport.Mqtt;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ConfigSpec.Aggregator.Ingest;

/// <summary>What the aggregator has seen, for /api/health and the dashboard's live updates.</summary>
public sealed class FleetState
{
    private long _received;
    private long _stored;
    private long _duplicates;
    private long _rejected;
    private long _ignored;
    private long _version;
    private int _dirty = 1;

    public long Received => Interlocked.Read(ref _received);

    public long Stored => Interlocked.Read(ref _stored);

    public long Duplicates => Interlocked.Read(ref _duplicates);

    public long Rejected => Interlocked.Read(ref _rejected);

    public long Ignored => Interlocked.Read(ref _ignored);

    /// <summary>Valid messages the database would not take even alone, after retries.</summary>
    public long Failed => Interlocked.Read(ref _failed);

    private long _failed;

    internal void CountFailed() => Interlocked.Increment(ref _failed);

    /// <summary>Changes whenever something stored changes (the dashboard polls it).</summary>
    public long Version => Interlocked.Read(ref _version);

    public FleetRanking? Ranking { get; set; }

    public DateTimeOffset Started { get; } = DateTimeOffset.UtcNow;

    public bool BrokerConnected { get; set; }

    internal void Count(int received, int stored, int duplicates, int rejected, int ignored, bool profilesChanged)
    {
        Interlocked.Add(ref _received, received);
        Interlocked.Add(ref _stored, stored);
        Interlocked.Add(ref _duplicates, duplicates);
        Interlocked.Add(ref _rejected, rejected);
        Interlocked.Add(ref _ignored, ignored);
        if (stored > 0)
        {
            Interlocked.Increment(ref _version);
        }

        if (profilesChanged)
        {
            Interlocked.Exchange(ref _dirty, 1);
        }
    }

    internal bool TakeDirty() => Interlocked.Exchange(ref _dirty, 0) == 1;

    internal void Bump() => Interlocked.Increment(ref _version);
}

/// <summary>Checks one board message against its topic; null for topics the aggregator does not keep (commands, requests, cleared retained topics).</summary>
public static class MessageValidator
{
    public static Accepted? Validate(MqttMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (FleetTopics.Parse(message.Topic) is not var (device, kind) || message.Payload.Length == 0)
        {
            return null;
        }

        var json = Encoding.UTF8.GetString(message.Payload);
        var payload = message.Payload;
        switch (kind)
        {
            case EdgeTopicKind.Status:
                var (statusHeader, status) = Contract.ReadEdge<StatusMessage>(payload, FleetMessages.StatusSchema, device);
                return new Accepted(statusHeader, "status", json, status.Board, Status: status);
            case EdgeTopicKind.Profile:
                var (profileHeader, body) = Contract.ReadEdge<ProfileMessage>(payload, FleetMessages.ProfileSchema, device);
                var (board, profile) = FleetMessages.ReadProfile(body, device);
                return new Accepted(profileHeader, "profile", json, board, Profile: profile);
            case EdgeTopicKind.Config:
                var (configHeader, config) = Contract.ReadEdge<ServedConfig>(payload, FleetMessages.ConfigSchema, device);
                return new Accepted(configHeader, "config", json, Config: config);
            case EdgeTopicKind.Metrics:
                var (metricsHeader, metrics) = Contract.ReadEdge<MetricsMessage>(payload, FleetMessages.MetricsSchema, device);
                return new Accepted(metricsHeader, "metrics", json, Metrics: metrics);
            default:
                return null;
        }
    }
}

/// <summary>Subscribes to every board's topics, validates each message, stores batches in one transaction each.</summary>
public sealed partial class FleetIngestor(MqttClient client, FleetStore store, FleetState state, ILogger<FleetIngestor> logger) : BackgroundService
{
    private const int MaxBatch = 1000;
    private long _lastRejectLog = -1000;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        foreach (var filter in FleetTopics.AggregatorSubscriptions)
        {
            try
            {
                await client.SubscribeAsync(filter, 1, stoppingToken).ConfigureAwait(false);
            }
            catch (MqttException ex)
            {
                // Kept by the client and made on (re)connect.
                Log.SubscribeDeferred(logger, filter, ex.Message);
            }
            catch (ObjectDisposedException)
            {
                return; // stopped while starting
            }
        }

        // Runs until the client is closed (StopAsync), then stores what is left: every message the client acknowledged
        // to the broker is stored, also on a stop.
        var reader = client.Messages;
        var batch = new List<MqttMessage>(MaxBatch);
        while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < MaxBatch && reader.TryRead(out var m))
            {
                batch.Add(m);
            }

            await ProcessWithRetryAsync(batch, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Disconnects first (nothing more is acknowledged), then lets the loop store what was received.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await client.DisposeAsync().ConfigureAwait(false);
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Stores a batch; when the database fails (busy, restarting, a full disk) the batch is retried with back-off
    /// rather than dropped (the broker has already been acknowledged). After five failures each message is tried alone,
    /// so one that cannot be stored does not hold back the rest; those are logged and counted as failed.
    /// </summary>
    internal async Task ProcessWithRetryAsync(List<MqttMessage> batch, CancellationToken cancellationToken)
    {
        for (var attempt = 1; attempt <= 5; attempt++)
        {
            try
            {
                Process(batch);
                return;
            }
            catch (Exception ex) when (ex is System.Data.Common.DbException or IOException or InvalidOperationException)
            {
                Log.BatchFailed(logger, batch.Count, attempt, ex);
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), cancellationToken).ConfigureAwait(false);
            }
        }

        foreach (var m in batch)
        {
            try
            {
                Process([m]);
            }
            catch (Exception ex) when (ex is System.Data.Common.DbException or IOException or InvalidOperationException)
            {
                state.CountFailed();
                AggregatorMetrics.DatabaseFailure();
                Log.MessageLost(logger, m.Topic, ex.Message);
            }
        }
    }

    /// <summary>Validates and stores one batch (also used directly by the benchmark and tests).</summary>
    internal void Process(IReadOnlyList<MqttMessage> batch)
    {
        var accepted = new List<Accepted>(batch.Count);
        var rejected = new List<(string, ContractFault, string)>();
        var ignored = 0;
        foreach (var m in batch)
        {
            try
            {
                if (MessageValidator.Validate(m) is { } a)
                {
                    accepted.Add(a);
                }
                else
                {
                    ignored++;
                }
            }
            catch (Exception ex) when (ex is ConfigSpecException or InvalidOperationException or ArgumentException or FormatException or OverflowException)
            {
                // A reader is total (only ContractException); anything else is a bug, refused the same way and named so.
                var (fault, detail) = ex is ContractException c ? (c.Fault, c.Message) : (ContractFault.InvalidField, $"unexpected {ex.GetType().Name}: {ex.Message}");
                rejected.Add((m.Topic, fault, detail));
                AggregatorMetrics.Refusal(ContractException.Name(fault));
                var now = Environment.TickCount64;
                if (now - _lastRejectLog >= 1000)
                {
                    // At most one line a second: a flood of bad messages must not flood the journal too.
                    _lastRejectLog = now;
                    Log.Rejected(logger, m.Topic, detail);
                }
            }
        }

        var stored = accepted.Count > 0 ? store.Store(accepted) : 0;
        store.Reject(rejected);
        state.Count(batch.Count, stored, accepted.Count - stored, rejected.Count, ignored, accepted.Any(a => a.Kind == "profile"));
        AggregatorMetrics.Batch(batch.Count, stored, accepted.Count - stored, ignored);
        var storedAt = DateTimeOffset.UtcNow;
        foreach (var a in accepted.Where(a => a.Header.Seq > 0))
        {
            AggregatorMetrics.Lag((storedAt - a.Header.Time).TotalSeconds);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 10, Level = LogLevel.Warning, Message = "refused a message on {Topic}: {Reason}")]
        public static partial void Rejected(ILogger logger, string topic, string reason);

        [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "subscription to {Filter} waits for the broker: {Reason}")]
        public static partial void SubscribeDeferred(ILogger logger, string filter, string reason);

        [LoggerMessage(EventId = 11, Level = LogLevel.Error, Message = "could not store a batch of {Count} messages (attempt {Attempt}); retrying")]
        public static partial void BatchFailed(ILogger logger, int count, int attempt, Exception ex);

        [LoggerMessage(EventId = 13, Level = LogLevel.Error, Message = "could not store a message on {Topic}: {Reason}")]
        public static partial void MessageLost(ILogger logger, string topic, string reason);
    }
}

/// <summary>Re-ranks when profiles change (at most once a second) and publishes changed recommendations, retained.</summary>
public sealed partial class RecommendationPublisher(MqttClient client, FleetStore store, FleetState state, ILogger<RecommendationPublisher> logger) : BackgroundService
{
    private readonly Dictionary<string, string> _published = new(StringComparer.Ordinal);

    public static TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (state.TakeDirty() || _published.Count < (state.Ranking?.Recommendations.Count ?? 0))
                {
                    var ranking = FleetRanker.Rank(store.Profiles(), DateTimeOffset.UtcNow);
                    state.Ranking = ranking;
                    state.Bump();
                    foreach (var (board, recommendation) in ranking.Recommendations)
                    {
                        var key = string.Join('|', recommendation.Objectives.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}:{p.Value.Sha256}:{p.Value.K}:{p.Value.Devices}"));
                        if (_published.TryGetValue(board, out var last) && last == key)
                        {
                            continue;
                        }

                        await client.PublishAsync(FleetTopics.Recommendation(board), Encoding.UTF8.GetBytes(FleetMessages.Recommendation(recommendation)), 1, true, null, stoppingToken)
                            .ConfigureAwait(false);
                        _published[board] = key;
                        Log.Published(logger, board, key);
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // the broker may be away: try again on the next tick
            catch (Exception ex)
#pragma warning restore CA1031
            {
                state.Count(0, 0, 0, 0, 0, true);
                Log.RankFailed(logger, ex.Message);
            }

            try
            {
                await Task.Delay(Interval, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 20, Level = LogLevel.Information, Message = "recommendation for {Board}: {Choice}")]
        public static partial void Published(ILogger logger, string board, string choice);

        [LoggerMessage(EventId = 21, Level = LogLevel.Warning, Message = "ranking or publishing failed, retrying: {Reason}")]
        public static partial void RankFailed(ILogger logger, string reason);
    }
}
