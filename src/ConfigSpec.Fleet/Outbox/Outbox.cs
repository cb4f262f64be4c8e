using System.Globalization;
using System.Text;
using ConfigSpec.Interop;
using ConfigSpec.Transport.Mqtt;

namespace ConfigSpec.Fleet.Outbox;

/// <summary>One message waiting in the outbox.</summary>
public sealed record OutboxMessage(long Seq, string Topic, bool Retain, byte[] Payload);

/// <summary>Sends one message and completes when the broker has acknowledged it (QoS 1); throws when it cannot.</summary>
public delegate Task OutboxSend(OutboxMessage message, CancellationToken cancellationToken);

/// <summary>
/// An on-disk outbox: every message is written (and flushed) to its own file before it is sent, sent at QoS 1 in
/// order, and deleted once the broker acknowledges it, so nothing is lost while the broker is away or the process
/// dies. Sequence numbers increase across restarts (the last one is kept in <c>seq</c>); a retained message replaces
/// a not-yet-sent older one on the same topic. A message acknowledged just before a crash and not yet deleted is
/// sent again on restart with the same sequence number, which receivers use to store it once.
/// </summary>
public sealed class Outbox : IAsyncDisposable
{
    private const string Extension = ".msg";
    private readonly string _directory;
    private readonly OutboxSend _send;
    private readonly Lock _gate = new();
    private readonly SortedDictionary<long, (string Topic, bool Retain)> _pending = [];
    private readonly SemaphoreSlim _signal = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly TimeSpan _retryDelay;
    private long _refused;
    private long _lastSeq;
    private Task? _loop;

    /// <param name="directory">The outbox folder (created; survives restarts).</param>
    /// <param name="send">Publishes one message at QoS 1.</param>
    /// <param name="retryDelay">Wait after a failed send (default 1 s).</param>
    public Outbox(string directory, OutboxSend send, TimeSpan? retryDelay = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        _directory = Directory.CreateDirectory(directory).FullName;
        _send = send ?? throw new ArgumentNullException(nameof(send));
        _retryDelay = retryDelay ?? TimeSpan.FromSeconds(1);
        var seqFile = SeqPath;
        if (File.Exists(seqFile))
        {
            var text = File.ReadAllText(seqFile).Trim();
            _lastSeq = long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v)
                ? v
                : throw new ConfigSpecException($"outbox: {seqFile} holds '{text}', not a sequence number (delete it only together with the outbox)");
        }

        foreach (var file in Directory.EnumerateFiles(_directory, "*" + Extension))
        {
            var name = Path.GetFileNameWithoutExtension(file);
            if (!long.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
            {
                continue;
            }

            var message = ReadFile(file, seq);
            if (message is null)
            {
                // Torn write from a crash before the rename completed cannot happen (writes are renamed into place); a
                // file that still does not parse is moved aside rather than sent or lost.
                File.Move(file, file + ".bad", true);
                continue;
            }

            _pending[seq] = (message.Topic, message.Retain);
            _lastSeq = Math.Max(_lastSeq, seq);
        }

        foreach (var tmp in Directory.EnumerateFiles(_directory, "*.tmp"))
        {
            File.Delete(tmp);
        }
    }

    /// <summary>Messages written but not yet acknowledged.</summary>
    /// <summary>Messages the broker refused (they are dropped, not retried), since start.</summary>
    public long Refused
    {
        get
        {
            lock (_gate)
            {
                return _refused;
            }
        }
    }

    /// <summary>The topic and reason of the last refused message, or null.</summary>
    public string? LastRefusal { get; private set; }

    public int Pending
    {
        get
        {
            lock (_gate)
            {
                return _pending.Count;
            }
        }
    }

    private string SeqPath => Path.Combine(_directory, "seq");

    /// <summary>Starts sending in the background.</summary>
    public void Start() => _loop ??= Task.Run(() => RunAsync(_stop.Token));

    /// <summary>Writes a message to disk (its payload made with its sequence number) and wakes the sender; returns the sequence number.</summary>
    public long Enqueue(string topic, bool retain, Func<long, string> payload)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(payload);
        lock (_gate)
        {
            var seq = _lastSeq + 1;
            var body = Encoding.UTF8.GetBytes(payload(seq));
            AtomicFile.Write(SeqPath, Encoding.ASCII.GetBytes(seq.ToString(CultureInfo.InvariantCulture)));
            var header = Encoding.UTF8.GetBytes($"{topic}\n{(retain ? 1 : 0)}\n");
            AtomicFile.Write(FilePath(seq), [.. header, .. body]);
            _lastSeq = seq;
            if (retain)
            {
                foreach (var older in _pending.Where(p => p.Value.Retain && p.Value.Topic == topic).Select(p => p.Key).ToList())
                {
                    _pending.Remove(older);
                    File.Delete(FilePath(older));
                }
            }

            _pending[seq] = (topic, retain);
            _signal.Release();
            return seq;
        }
    }

    /// <summary>Waits until everything written so far is acknowledged, or the timeout; true when the outbox is empty.</summary>
    public async Task<bool> DrainAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Pending > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }

        return Pending == 0;
    }

    /// <summary>Tells the sender to try now (after a reconnect).</summary>
    public void Wake() => _signal.Release();

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            OutboxMessage? next = null;
            lock (_gate)
            {
                foreach (var (seq, _) in _pending)
                {
                    next = ReadFile(FilePath(seq), seq);
                    if (next is null)
                    {
                        _pending.Remove(seq);
                    }

                    break;
                }
            }

            if (next is null)
            {
                try
                {
                    await _signal.WaitAsync(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            try
            {
                await _send(next, cancellationToken).ConfigureAwait(false);
                lock (_gate)
                {
                    _pending.Remove(next.Seq);
                    File.Delete(FilePath(next.Seq));
                }

            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (MqttRefusedException ex)
            {
                // The broker will never take this one (an ACL, say): keeping it would hold back everything behind it.
                lock (_gate)
                {
                    _pending.Remove(next.Seq);
                    File.Delete(FilePath(next.Seq));
                    _refused++;
                    LastRefusal = $"{next.Topic}: {ex.Message}";
                }
            }
#pragma warning disable CA1031 // the broker being away is the normal case here: keep the message and retry
            catch (Exception)
#pragma warning restore CA1031
            {
                try
                {
                    await _signal.WaitAsync(_retryDelay, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private string FilePath(long seq) => Path.Combine(_directory, seq.ToString("D19", CultureInfo.InvariantCulture) + Extension);

    private static OutboxMessage? ReadFile(string path, long seq)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException)
        {
            return null;
        }

        var first = Array.IndexOf(bytes, (byte)'\n');
        var second = first < 0 ? -1 : Array.IndexOf(bytes, (byte)'\n', first + 1);
        if (first <= 0 || second != first + 2)
        {
            return null;
        }

        return new OutboxMessage(seq, Encoding.UTF8.GetString(bytes, 0, first), bytes[first + 1] == (byte)'1', bytes[(second + 1)..]);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }

        _stop.Dispose();
        _signal.Dispose();
    }
}
