using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using ConfigSpec.Interop;

namespace ConfigSpec.Transport.Network;

/// <summary>Settings of the delay-injecting TCP proxy.</summary>
public sealed record DelayProxyOptions
{
    public required IPEndPoint Listen { get; init; }

    public required DnsEndPoint Upstream { get; init; }

    /// <summary>Delay added to every chunk in each direction.</summary>
    public TimeSpan Delay { get; init; }

    /// <summary>Uniform jitter ± this much on top of the delay (order is kept: a chunk never overtakes the one before it).</summary>
    public TimeSpan Jitter { get; init; }

    /// <summary>
    /// A delay that changes over time (fixed, jitter, two-state Markov or a CSV trace; seconds since the proxy started);
    /// when set it replaces <see cref="Delay"/>, and <see cref="Jitter"/> is still added.
    /// </summary>
    public ConfigSpec.Speculative.Policies.DelayTrace? Schedule { get; init; }

    /// <summary>CSV of every forwarded chunk (time, connection, direction, bytes, delay), or null.</summary>
    public string? TraceFile { get; init; }

    public int Seed { get; init; } = 1;

    public static IPEndPoint ParseListen(string value) =>
        IPEndPoint.TryParse(value, out var endpoint) && endpoint.Port > 0
            ? endpoint
            : throw new SettingException("listen", $"'{value}' is not an address:port such as 127.0.0.1:18830");

    public static DnsEndPoint ParseUpstream(string value)
    {
        var colon = value.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(value[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            throw new SettingException("upstream", $"'{value}' is not host:port");
        }

        return new DnsEndPoint(value[..colon], port);
    }
}

/// <summary>
/// A TCP proxy that holds every chunk it forwards for a set delay (plus jitter) in each direction, so a board on
/// loopback sees the round trips of a real network. Used by the goodput benchmark and the online-control work.
/// </summary>
public sealed class DelayProxy : IAsyncDisposable
{
    private readonly DelayProxyOptions _options;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connections = [];
    private readonly StreamWriter? _trace;
    private readonly Random _random;
    private readonly Lock _gate = new();
    private readonly long _started = Stopwatch.GetTimestamp();
    private Task? _accept;
    private int _nextConnection;
    private long _forwarded;

    public DelayProxy(DelayProxyOptions options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        if (options.Delay < TimeSpan.Zero || options.Jitter < TimeSpan.Zero || options.Jitter > options.Delay + options.Delay)
        {
            throw SettingException.Naming("{delay_ms} and {jitter_ms} must be non-negative (jitter at most twice the delay)");
        }

        _random = new Random(options.Seed);
        _listener = new TcpListener(options.Listen);
        if (options.TraceFile is not null)
        {
            _trace = new StreamWriter(options.TraceFile, append: false) { AutoFlush = true };
            _trace.WriteLine("time_s,connection,direction,bytes,delay_ms");
        }
    }

    /// <summary>The bound endpoint (useful with port 0).</summary>
    public IPEndPoint LocalEndpoint => (IPEndPoint)_listener.LocalEndpoint;

    public long ForwardedBytes => Interlocked.Read(ref _forwarded);

    public void Start()
    {
        try
        {
            _listener.Start();
        }
        catch (SocketException ex)
        {
            throw new SettingException("listen", $"{_options.Listen}: {ex.Message}");
        }

        _accept = Task.Run(AcceptLoopAsync);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient downstream;
            try
            {
                downstream = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            var id = Interlocked.Increment(ref _nextConnection);
            lock (_gate)
            {
                _connections.RemoveAll(t => t.IsCompleted);
                _connections.Add(Task.Run(() => ServeAsync(id, downstream)));
            }
        }
    }

    private async Task ServeAsync(int id, TcpClient downstream)
    {
        using var client = downstream;
        using var upstream = new TcpClient { NoDelay = true };
        client.NoDelay = true;
        try
        {
            await upstream.ConnectAsync(_options.Upstream.Host, _options.Upstream.Port, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            return; // the board sees its connection close, as it would if the broker were unreachable
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        var up = PumpAsync(id, "up", client.GetStream(), upstream.GetStream(), linked.Token);
        var down = PumpAsync(id, "down", upstream.GetStream(), client.GetStream(), linked.Token);
        await Task.WhenAny(up, down).ConfigureAwait(false);
        await linked.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(up, down).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException or SocketException)
        {
        }
    }

    /// <summary>Reads chunks as they come and writes each one when its delay has passed, in order.</summary>
    private async Task PumpAsync(int id, string direction, NetworkStream from, NetworkStream to, CancellationToken token)
    {
        var queue = Channel.CreateUnbounded<(long Due, byte[] Data)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var writer = Task.Run(async () =>
        {
            try
            {
                await foreach (var (due, data) in queue.Reader.ReadAllAsync(token).ConfigureAwait(false))
                {
                    // Never early: timers may fire a little before the requested time, so wait until due has passed.
                    for (var wait = due - Stopwatch.GetTimestamp(); wait > 0; wait = due - Stopwatch.GetTimestamp())
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(wait * 1000.0 / Stopwatch.Frequency)), token).ConfigureAwait(false);
                    }

                    await to.WriteAsync(data, token).ConfigureAwait(false);
                    Interlocked.Add(ref _forwarded, data.Length);
                }
            }
            finally
            {
                to.Socket.Shutdown(SocketShutdown.Send);
            }
        }, token);

        var buffer = new byte[64 * 1024];
        long lastDue = 0;
        try
        {
            while (true)
            {
                var read = await from.ReadAsync(buffer, token).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                var delay = NextDelay();
                var due = Math.Max(lastDue, Stopwatch.GetTimestamp() + (long)(delay / 1000.0 * Stopwatch.Frequency));
                lastDue = due;
                _trace?.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{Stopwatch.GetElapsedTime(_started).TotalSeconds:F3},{id},{direction},{read},{delay}"));
                queue.Writer.TryWrite((due, buffer[..read]));
            }
        }
        finally
        {
            queue.Writer.TryComplete();
            await writer.ConfigureAwait(false);
        }
    }

    /// <summary>This chunk's delay in milliseconds (fractions kept).</summary>
    private double NextDelay()
    {
        var delay = _options.Schedule is { } schedule
            ? schedule.DelayMs(Stopwatch.GetElapsedTime(_started).TotalSeconds)
            : _options.Delay.TotalMilliseconds;
        if (_options.Jitter > TimeSpan.Zero)
        {
            lock (_random)
            {
                delay += (_random.NextDouble() * 2 - 1) * _options.Jitter.TotalMilliseconds;
            }
        }

        return Math.Max(0, delay);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        if (_accept is not null)
        {
            await _accept.ConfigureAwait(false);
        }

        Task[] open;
        lock (_gate)
        {
            open = [.. _connections];
        }

        await Task.WhenAll(open).ConfigureAwait(false);
        _trace?.Dispose();
        _stop.Dispose();
    }
}
