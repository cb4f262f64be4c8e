using System.Diagnostics;

namespace ConfigSpec.Tests.Infrastructure;

/// <summary>Prometheus' own linter over a scrape: promtool from <c>scripts/test.sh</c> (CONFIGSPEC_PROMTOOL, unpacked from
/// Debian's prometheus), the repository's lib/tools, or the PATH.</summary>
public static class Promtool
{
    private static string Path() =>
        Environment.GetEnvironmentVariable("CONFIGSPEC_PROMTOOL") is { Length: > 0 } p && File.Exists(p) ? p
        : System.IO.Path.Combine(TestEnvironment.RepositoryRoot, "lib", "tools", "prometheus", "usr", "bin", "promtool") is var local && File.Exists(local) ? local
        : "promtool";

    /// <summary>Asserts that <c>promtool check metrics</c> accepts <paramref name="text"/>, with its findings as the message.</summary>
    public static async Task AssertAcceptedAsync(string text)
    {
        var start = new ProcessStartInfo(Path(), "check metrics") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var promtool = Process.Start(start)!;
        await promtool.StandardInput.WriteAsync(text);
        promtool.StandardInput.Close();
        var lint = await promtool.StandardError.ReadToEndAsync() + await promtool.StandardOutput.ReadToEndAsync();
        await promtool.WaitForExitAsync();
        Assert.True(promtool.ExitCode == 0, "promtool check metrics: " + lint);
    }
}
