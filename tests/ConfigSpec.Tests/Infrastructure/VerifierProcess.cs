using System.Diagnostics;
using System.Text;

namespace ConfigSpec.Tests.Infrastructure;

/// <summary>A configspec-verifier child process (the real program, built beside the tests).</summary>
public sealed class VerifierProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    public VerifierProcess(string instanceId, Uri broker, params string[] extra)
    {
        InstanceId = instanceId;
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(TestEnvironment.ProductBinary("ConfigSpec.Verifier", "configspec-verifier.dll"));
        var settings = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["--model"] = TestEnvironment.Model("stories260K.gguf"), ["--broker"] = broker.ToString(), ["--instance-id"] = instanceId,
            ["--llama-dir"] = TestEnvironment.LlamaDirectory, ["--ctx"] = "512", ["--max-sessions"] = "16",
        };
        for (var i = 0; i + 1 < extra.Length; i += 2)
        {
            settings[extra[i]] = extra[i + 1];
        }

        foreach (var (name, value) in settings)
        {
            start.ArgumentList.Add(name);
            start.ArgumentList.Add(value);
        }

        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string InstanceId { get; }

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public void KillHard() => _process.Kill(); // SIGKILL on Linux

    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public bool WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            return false;
        }

        _process.WaitForExit(); // drains the redirected output
        return true;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }

        _process.Dispose();
    }
}
