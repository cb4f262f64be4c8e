using System.Globalization;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting.Systemd;

namespace ConfigSpec.Fleet.Systemd;

/// <summary>
/// A service's notifications to systemd (<c>Type=notify</c>): READY, STATUS, WATCHDOG and STOPPING, sent through
/// Microsoft.Extensions.Hosting.Systemd's notifier whenever <c>$NOTIFY_SOCKET</c> is set. The hosting package's
/// <c>SystemdLifetime</c> is not relied on: it recognises systemd only by its parent process (or PID 1) and never feeds
/// the watchdog, so the services send their own notifications and feed the watchdog from their own health.
/// </summary>
public sealed class ServiceNotifier
{
    private readonly ISystemdNotifier _notifier;

    /// <summary>The notifier of this process: <c>$NOTIFY_SOCKET</c> and <c>$WATCHDOG_USEC</c> as systemd set them.</summary>
    public ServiceNotifier()
        : this(new SystemdNotifier(), Environment.GetEnvironmentVariable("WATCHDOG_USEC"))
    {
    }

    public ServiceNotifier(ISystemdNotifier notifier, string? watchdogMicroseconds)
    {
        _notifier = notifier ?? throw new ArgumentNullException(nameof(notifier));
        if (long.TryParse(watchdogMicroseconds, NumberStyles.None, CultureInfo.InvariantCulture, out var usec) && usec > 0)
        {
            WatchdogInterval = TimeSpan.FromMicroseconds(usec);
        }
    }

    /// <summary>True when a notify socket was given (started by systemd with Type=notify).</summary>
    public bool Enabled => _notifier.IsEnabled;

    /// <summary>The watchdog interval systemd asked for (WatchdogSec), or null.</summary>
    public TimeSpan? WatchdogInterval { get; }

    public void Ready(string status) => Send($"READY=1\nSTATUS={status}");

    public void Status(string status) => Send("STATUS=" + status);

    public void Watchdog() => Send("WATCHDOG=1");

    public void Stopping(string status) => Send($"STOPPING=1\nSTATUS={status}");

    /// <summary>Sends one notification; a missing or refusing socket is ignored (the service manager may be gone).</summary>
    public void Send(string state)
    {
        if (!_notifier.IsEnabled)
        {
            return;
        }

        try
        {
            _notifier.Notify(new ServiceState(state));
        }
        catch (SocketException)
        {
            // Notifications are advisory.
        }
    }
}
