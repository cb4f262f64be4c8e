using System.Diagnostics;
using ConfigSpec.Edge.Daemon;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Fleet;

/// <summary>The files users install from hw/: the systemd units pass systemd's own checker; the example settings load.</summary>
public sealed class ShippedHwFilesTests
{
    private static string Hw(params string[] parts) => Path.Combine([TestEnvironment.RepositoryRoot, "hw", .. parts]);

    [Theory]
    [InlineData("configspec-edge.service")]
    [InlineData("configspec-aggregator.service")]
    public async Task Systemd_units_pass_systemd_analyze_verify(string unit)
    {
        var analyze = new[] { "/usr/bin/systemd-analyze", "/bin/systemd-analyze" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("systemd-analyze is missing (Debian package systemd)");
        var dir = TestEnvironment.NewTemporaryDirectory();
        // verify checks that ExecStart's program exists: point it at one that does.
        var text = File.ReadAllText(Hw("systemd", unit)).Replace("/opt/configspec/", "/usr/bin/", StringComparison.Ordinal)
            .Replace("/usr/bin/configspec-edge", "/usr/bin/env", StringComparison.Ordinal).Replace("/usr/bin/configspec-aggregator", "/usr/bin/env", StringComparison.Ordinal);
        var path = Path.Combine(dir, unit);
        File.WriteAllText(path, text);
        var start = new ProcessStartInfo(analyze) { ArgumentList = { "verify", path }, RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = Process.Start(start)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        // Only lines about this unit count (the host's own units may have complaints of their own).
        var mine = (error + await output).Split('\n').Where(l => l.Contains(unit, StringComparison.Ordinal)).ToList();
        Assert.True(mine.Count == 0, string.Join('\n', mine));
        Assert.Contains("Type=notify", File.ReadAllText(Hw("systemd", "configspec-edge.service")), StringComparison.Ordinal);
        Assert.Contains("WatchdogSec=", File.ReadAllText(Hw("systemd", "configspec-edge.service")), StringComparison.Ordinal);
    }

    [Fact]
    public void The_example_edge_settings_load()
    {
        // The example names the board's CA file, which this machine does not have: a CA made here stands in.
        var ca = Path.Combine(TestEnvironment.NewTemporaryDirectory(), "ca.crt");
        File.WriteAllText(ca, "stand-in");
        var s = EdgeSettings.Load(Hw("config", "edge.json"), [$"drafts={TestEnvironment.Model("stories260K-Q8_0.gguf")}", $"broker:ca_file={ca}"], new Dictionary<string, string?>());
        Assert.Equal("pi5-lab-1", s.DeviceId);
        Assert.Equal("mqtts", s.Broker.Broker.Scheme);
        Assert.StartsWith("unix:", s.Http, StringComparison.Ordinal);
        Assert.True(s.HomeAssistant);
        Assert.Equal(168, s.ReprofileHours);
    }
}
