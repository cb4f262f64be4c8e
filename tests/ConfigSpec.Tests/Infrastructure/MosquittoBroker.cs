using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace ConfigSpec.Tests.Infrastructure;

/// <summary>A real mosquitto broker on a free loopback port, stopped by its process id; restartable on the same port.</summary>
public sealed class MosquittoBroker : IDisposable
{
    private readonly string _directory = TestEnvironment.NewTemporaryDirectory();
    private Process? _process;

    /// <param name="listenerSettings">Extra lines for the listener (TLS files, for instance).</param>
    /// <param name="logConnections">Log each connection (with its protocol, clean start and keep-alive) into <see cref="Log"/>.</param>
    /// <param name="persistence">Keep sessions and queued messages across a <see cref="Stop"/> with <c>graceful</c> (as a production broker does).</param>
    public MosquittoBroker(string listenerSettings = "", bool allowAnonymous = true, bool logConnections = false, bool persistence = false)
    {
        Port = FreePort();
        if (persistence)
        {
            // Started by root, mosquitto drops to its own user before it saves: let that user write the state here.
            if (OperatingSystem.IsLinux())
            {
                File.SetUnixFileMode(_directory, (UnixFileMode)0x1FF);
            }
        }

        File.WriteAllText(ConfigPath, $"""
            listener {Port} 127.0.0.1
            {listenerSettings}
            allow_anonymous {(allowAnonymous ? "true" : "false")}
            persistence {(persistence ? "true" : "false")}
            persistence_location {_directory}/
            set_tcp_nodelay true
            log_dest stderr
            log_type error
            log_type warning
            {(logConnections ? "log_type notice" : string.Empty)}
            """);
        Start();
    }

    public int Port { get; }

    /// <summary>What the broker wrote to its log, a line each, across restarts.</summary>
    public ConcurrentQueue<string> Log { get; } = new();

    public Uri Uri => new($"mqtt://127.0.0.1:{Port}");

    private string ConfigPath => Path.Combine(_directory, "mosquitto.conf");

    public void Start()
    {
        var executable = File.Exists("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : "mosquitto";
        var start = new ProcessStartInfo(executable) { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(ConfigPath);
        _process = Process.Start(start) ?? throw new InvalidOperationException("mosquitto did not start");
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                Log.Enqueue(line);
            }
        };
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"mosquitto exited with {_process.ExitCode} (is the Debian package installed? scripts/test.sh installs it)");
            }

            try
            {
                using var probe = new TcpClient();
                probe.Connect(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                Thread.Sleep(20);
            }
        }

        throw new InvalidOperationException($"mosquitto did not listen on port {Port} within 10 s");
    }

    /// <summary>Kills the broker (SIGKILL), or with <paramref name="graceful"/> stops it with SIGTERM so it saves its state.</summary>
    public void Stop(bool graceful = false)
    {
        if (_process is { HasExited: false })
        {
            if (graceful)
            {
                using var term = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                term.WaitForExit();
                if (!_process.WaitForExit(10_000))
                {
                    _process.Kill();
                }
            }
            else
            {
                _process.Kill();
            }

            _process.WaitForExit();
        }

        _process?.Dispose();
        _process = null;
    }

    public void Dispose()
    {
        Stop();
        Directory.Delete(_directory, recursive: true);
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
