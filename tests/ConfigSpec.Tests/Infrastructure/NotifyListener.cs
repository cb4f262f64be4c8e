using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;

namespace ConfigSpec.Tests.Infrastructure;

/// <summary>
/// A systemd notify socket for a daemon under test (<c>NOTIFY_SOCKET=</c><see cref="Path"/>), read all along as systemd
/// does (a unix datagram socket holds only a few unread notifications).
/// </summary>
public sealed class NotifyListener : IAsyncDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _reader;

    public NotifyListener(string path)
    {
        Path = path;
        _socket.Bind(new UnixDomainSocketEndPoint(path));
        _reader = Task.Run(ReadAsync);
    }

    public string Path { get; }

    public ConcurrentQueue<string> Notes { get; } = new();

    /// <summary>Stops reading (what arrived stays in <see cref="Notes"/>).</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _reader;
    }

    private async Task ReadAsync()
    {
        var buffer = new byte[4096];
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var n = await _socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                Notes.Enqueue(Encoding.UTF8.GetString(buffer, 0, n));
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _socket.Dispose();
        _stop.Dispose();
    }
}
