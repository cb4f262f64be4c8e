using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace ConfigSpec.Fleet.Systemd;

/// <summary>
/// sd_notify(3) without libsystemd: datagrams such as <c>READY=1</c>, <c>STATUS=...</c>, <c>WATCHDOG=1</c> and
/// <c>STOPPING=1</c> to the unix socket named by <c>$NOTIFY_SOCKET</c> (a leading '@' is the abstract namespace).
/// Does nothing when the variable is absent (not started by systemd with Type=notify).
/// </summary>
public sealed class SystemdNotifier : IDisposable
{
    private readonly Socket? _socket;
    private readonly UnixDomainSocketEndPoint? _endpoint;

    public SystemdNotifier(string? socketPath = null, string? watchdogMicroseconds = null)
    {
        socketPath ??= Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        watchdogMicroseconds ??= Environment.GetEnvironmentVariable("WATCHDOG_USEC");
        if (!string.IsNullOrEmpty(socketPath))
        {
            _endpoint = new UnixDomainSocketEndPoint(socketPath[0] == '@' ? "\0" + socketPath[1..] : socketPath);
            _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        }

        if (long.TryParse(watchdogMicroseconds, NumberStyles.None, CultureInfo.InvariantCulture, out var usec) && usec > 0)
        {
            WatchdogInterval = TimeSpan.FromMicroseconds(usec);
        }
    }

    /// <summary>True when a notify socket was given.</summary>
    public bool Enabled => _socket is not null;

    /// <summary>The watchdog interval systemd asked for (WatchdogSec), or null.</summary>
    public TimeSpan? WatchdogInterval { get; }

    public void Ready(string status) => Send($"READY=1\nSTATUS={status}");

    public void Status(string status) => Send("STATUS=" + status);

    public void Watchdog() => Send("WATCHDOG=1");

    public void Stopping(string status) => Send($"STOPPING=1\nSTATUS={status}");

    /// <summary>Sends one notification; a missing or refusing socket is ignored (the service manager may be gone).</summary>
    public void Send(string state)
    {
        if (_socket is null)
        {
            return;
        }

        try
        {
            _socket.SendTo(Encoding.UTF8.GetBytes(state), _endpoint!);
        }
        catch (SocketException)
        {
            // Notifications are advisory.
        }
    }

    public void Dispose() => _socket?.Dispose();
}
