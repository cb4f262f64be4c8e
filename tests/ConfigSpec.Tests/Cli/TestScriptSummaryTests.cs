using System.Diagnostics;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Cli;

/// <summary>
/// scripts/test.sh ends with the failures repeated and one closing line summed over the TRX files. Its own summary code
/// (taken from the script, run under the script's <c>set -euo pipefail</c>) must print that line and succeed when no
/// test failed (a grep that finds no failure once ended the script before the line, so an all-green run failed CI), and
/// name each failure when some did.
/// </summary>
public sealed class TestScriptSummaryTests
{
    [Theory]
    [InlineData(false, "3 passed, 0 failed, 1 skipped")]
    [InlineData(true, "2 passed, 1 failed, 1 skipped")]
    public async Task The_closing_line_is_printed_with_and_without_failures(bool withFailure, string closing)
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var results = Path.Combine(dir, "results");
        Directory.CreateDirectory(results);
        var failed = withFailure
            ? """<UnitTestResult testName="Some.Test" outcome="Failed"><Output><ErrorInfo><Message>boom at line 3</Message></ErrorInfo></Output></UnitTestResult>"""
            : """<UnitTestResult testName="Some.Test" outcome="Passed"></UnitTestResult>""";
        await File.WriteAllTextAsync(Path.Combine(results, "results.trx"), $"""
            <TestRun><Results>{failed}</Results>
            <ResultSummary><Counters total="4" executed="3" passed="{(withFailure ? 2 : 3)}" failed="{(withFailure ? 1 : 0)}" notExecuted="1" /></ResultSummary></TestRun>
            """);
        var script = await File.ReadAllLinesAsync(Path.Combine(TestEnvironment.RepositoryRoot, "scripts", "test.sh"));
        var start = Array.FindIndex(script, l => l.StartsWith("python_free_sum()", StringComparison.Ordinal));
        var end = Array.FindIndex(script, l => l.StartsWith("exit $status", StringComparison.Ordinal));
        Assert.True(start > 0 && end > start, "scripts/test.sh no longer has its summary block");
        var summary = Path.Combine(dir, "summary.sh");
        await File.WriteAllTextAsync(summary, $"set -euo pipefail\nRESULTS=\"{results}\"\n" + string.Join('\n', script[start..end]) + "\n");
        using var process = Process.Start(new ProcessStartInfo("bash", [summary]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"summary exited {process.ExitCode}: {error}");
        var lines = output.Trim().Split('\n');
        Assert.Equal(closing, lines[^1]);
        if (withFailure)
        {
            Assert.Equal("FAILED Some.Test: boom at line 3", lines[0]);
        }
        else
        {
            Assert.Single(lines);
        }
    }
}
