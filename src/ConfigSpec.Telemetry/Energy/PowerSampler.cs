using System.Diagnostics;

namespace ConfigSpec.Telemetry.Energy;

/// <summary>
/// Samples a power source in the background at a fixed interval on the monotonic clock and charges energy to
/// marked windows (the drafting windows). A read that fails leaves a gap, which makes the windows over it
/// incomplete; nothing is filled in. Thread-safe.
/// </summary>
public sealed class PowerSampler : IAsyncDisposable
{
    private readonly IPowerSource _source;
    private readonly TimeSpan _interval;
    private readonly List<PowerSample> _samples = [];
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly TimeSpan _retention;
    private Thread? _thread;
    private int _disposed;

    public PowerSampler(IPowerSource source, TimeSpan interval, TimeSpan? retention = null)
    {
        _source = source ?? throw new ArgumentNullException(nameof(source));
        if (interval < TimeSpan.FromMilliseconds(1) || interval > TimeSpan.FromMinutes(1))
        {
            throw new PowerSourceException($"sampling interval {interval.TotalMilliseconds} ms is out of range (1 ms to 60 s)");
        }

        _interval = interval;
        _retention = retention ?? TimeSpan.FromMinutes(10);
    }

    public IPowerSource Source => _source;

    public TimeSpan Interval => _interval;

    /// <summary>Reads that failed, and the last failure's message.</summary>
    public int Failures { get; private set; }

    public string? LastError { get; private set; }

    /// <summary>Seconds on the clock the samples use.</summary>
    public static double Now => Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;

    /// <summary>Intervals longer than this are gaps (three sampling intervals).</summary>
    public double MaxGapSeconds => _interval.TotalSeconds * 3;

    /// <summary>Starts sampling on a dedicated thread (not the thread pool, so a busy process does not delay samples).</summary>
    public void Start()
    {
        lock (_gate)
        {
            if (_thread is not null)
            {
                return;
            }

            _thread = new Thread(Run) { IsBackground = true, Name = "power-sampler", Priority = ThreadPriority.AboveNormal };
            _thread.Start();
        }
    }

    /// <summary>The newest sample, or null before the first (no copy of the retained samples).</summary>
    public PowerSample? Latest
    {
        get
        {
            lock (_gate)
            {
                return _samples.Count > 0 ? _samples[^1] : null;
            }
        }
    }

    public IReadOnlyList<PowerSample> Snapshot()
    {
        lock (_gate)
        {
            return [.. _samples];
        }
    }

    /// <summary>Waits for the first successful sample (up to 20 intervals or 5 s) and returns its time.</summary>
    public async Task<double> FirstSampleAsync(CancellationToken cancellationToken = default)
    {
        var deadline = Now + Math.Max(5, _interval.TotalSeconds * 20);
        while (Now < deadline)
        {
            lock (_gate)
            {
                if (_samples.Count > 0)
                {
                    return _samples[0].Time;
                }
            }

            await Task.Delay(_interval / 4, cancellationToken).ConfigureAwait(false);
        }

        throw new PowerSourceException($"{_source.Spec}: no reading succeeded{(LastError is null ? string.Empty : $" ({LastError})")}");
    }

    /// <summary>Energy over [start, end]; waits (up to three intervals) for a sample after <paramref name="end"/> so the end is covered.</summary>
    public async Task<WindowEnergy> MeasureAsync(double start, double end, CancellationToken cancellationToken = default)
    {
        var deadline = end + MaxGapSeconds;
        while (Now < deadline)
        {
            lock (_gate)
            {
                if (_samples.Count > 0 && _samples[^1].Time >= end)
                {
                    break;
                }
            }

            await Task.Delay(_interval / 4, cancellationToken).ConfigureAwait(false);
        }

        List<PowerSample> relevant;
        lock (_gate)
        {
            relevant = _samples.Where(s => s.Time >= start - MaxGapSeconds && s.Time <= end + MaxGapSeconds).ToList();
        }

        return EnergyIntegrator.Integrate(relevant, start, end, MaxGapSeconds);
    }

    private void Run()
    {
        var next = Now;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var reading = _source.Read();
                var now = Now;
                lock (_gate)
                {
                    _samples.Add(new PowerSample(now, reading.TotalWatts, reading.Rails));
                    var old = _samples.FindIndex(sample => sample.Time >= now - _retention.TotalSeconds);
                    if (old > 0)
                    {
                        _samples.RemoveRange(0, old);
                    }
                }
            }
            catch (PowerSourceException ex)
            {
                Failures++;
                LastError = ex.Message;
            }

            // Fixed-rate schedule on the monotonic clock; after a stall, skip the missed ticks instead of bursting.
            next += _interval.TotalSeconds;
            var wait = next - Now;
            if (wait < 0)
            {
                next = Now;
                wait = 0;
            }

            _stop.Token.WaitHandle.WaitOne(TimeSpan.FromSeconds(wait));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        if (_thread is not null)
        {
            await Task.Run(() => _thread.Join()).ConfigureAwait(false);
        }

        _stop.Dispose();
    }
}
