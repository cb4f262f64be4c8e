using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using ConfigSpec.Board;
using ConfigSpec.Edge.Daemon;
using ConfigSpec.Interop;
using ConfigSpec.Profiling.Profiles;

namespace ConfigSpec.Edge.Cli;

/// <summary>
/// <c>bench daemon</c>: starts <c>configspec-edge run</c> as systemd would (a notify socket), and prints the time to
/// READY, to serving, the resident memory at READY (no model loaded yet) and while serving, the idle CPU while
/// serving, and the time SIGTERM takes. Figures only.
/// </summary>
internal static class DaemonBench
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static Command Create(TextWriter output)
    {
        var config = new Option<string>("--config") { Description = "daemon settings file (as for run)", Required = true };
        var idle = new Option<double>("--idle-seconds") { Description = "how long to measure idle CPU while serving", DefaultValueFactory = _ => 20 };
        var set = new Option<string[]>("--set") { Description = "settings overrides passed to run" };
        var command = new Command("daemon", "start-up to READY, idle CPU and resident memory of the board daemon") { config, idle, set };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var seconds = parse.GetValue(idle);
            if (seconds <= 0)
            {
                throw new ConfigSpecException("--idle-seconds must be positive");
            }

            await RunAsync(parse.GetValue(config)!, parse.GetValue(set) ?? [], seconds, output, cancellationToken).ConfigureAwait(false);
            return EdgeCli.ExitOk;
        });
        return command;
    }

    private static async Task RunAsync(string config, string[] overrides, double idleSeconds, TextWriter output, CancellationToken cancellationToken)
    {
        var socketPath = Path.Combine(Path.GetTempPath(), $"configspec-bench-{Environment.ProcessId}.sock");
        File.Delete(socketPath);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(socketPath));
        var start = Self();
        start.ArgumentList.Add("run");
        start.ArgumentList.Add("--config");
        start.ArgumentList.Add(config);
        foreach (var o in overrides)
        {
            start.ArgumentList.Add("--set");
            start.ArgumentList.Add(o);
        }

        start.Environment["NOTIFY_SOCKET"] = socketPath;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new ConfigSpecException("could not start the daemon");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var ready = await WaitForAsync(socket, n => n.StartsWith("READY=1", StringComparison.Ordinal), TimeSpan.FromSeconds(60), process, cancellationToken).ConfigureAwait(false);
            var readyMs = clock.Elapsed.TotalMilliseconds;
            var rssReady = Rss(process.Id);
            output.WriteLine(string.Create(C, $"start-up to READY=1: {readyMs:0.0} ms; resident memory at READY (no model loaded): {rssReady:0.0} MiB ({ready.Replace('\n', ' ')})"));
            await WaitForAsync(socket, n => n.Contains("STATUS=serving", StringComparison.Ordinal), TimeSpan.FromSeconds(600), process, cancellationToken).ConfigureAwait(false);
            output.WriteLine(string.Create(C, $"start-up to serving (profile or adopted configuration, draft loaded): {clock.Elapsed.TotalSeconds:0.00} s"));
            await Task.Delay(2000, cancellationToken).ConfigureAwait(false);
            var (cpu0, wall0) = (CpuSeconds(process.Id), Stopwatch.GetTimestamp());
            await Task.Delay(TimeSpan.FromSeconds(idleSeconds), cancellationToken).ConfigureAwait(false);
            var cpu = CpuSeconds(process.Id) - cpu0;
            var wall = Stopwatch.GetElapsedTime(wall0).TotalSeconds;
            output.WriteLine(string.Create(C, $"serving idle for {wall:0.0} s: CPU {cpu:0.000} s = {100 * cpu / wall:0.00}% of one core; resident memory {Rss(process.Id):0.0} MiB"));
            var stop = Stopwatch.StartNew();
            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(C)]))
            {
                await kill.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            }

            await process.WaitForExitAsync(cancellationToken).WaitAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
            output.WriteLine(string.Create(C, $"SIGTERM to exit: {stop.Elapsed.TotalMilliseconds:0} ms (exit code {process.ExitCode})"));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }

            File.Delete(socketPath);
        }
    }

    /// <summary>This program again: the native binary, or <c>dotnet configspec-edge.dll</c> when run through the host.</summary>
    private static ProcessStartInfo Self()
    {
        var path = Environment.ProcessPath ?? throw new ConfigSpecException("cannot tell where this program is");
        if (Path.GetFileNameWithoutExtension(path) == "dotnet")
        {
            var start = new ProcessStartInfo(path);
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "configspec-edge.dll"));
            return start;
        }

        return new ProcessStartInfo(path);
    }

    private static async Task<string> WaitForAsync(Socket socket, Func<string, bool> match, TimeSpan timeout, Process process, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        var buffer = new byte[4096];
        while (true)
        {
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ConfigSpecException(process.HasExited
                    ? $"the daemon exited with {process.ExitCode} before notifying (check its settings with `run --check`)"
                    : $"no such notification within {timeout.TotalSeconds:0} s");
            }

            var text = Encoding.UTF8.GetString(buffer, 0, n);
            if (match(text))
            {
                return text;
            }
        }
    }

    /// <summary>utime + stime of a process in seconds (/proc/PID/stat fields 14 and 15, in clock ticks of 1/100 s).</summary>
    private static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], C) + long.Parse(fields[12], C)) / 100.0;
    }

    private static double Rss(int pid) => DeviceIdentity.ResidentMegabytes(process: pid.ToString(C)) ?? 0;
}
