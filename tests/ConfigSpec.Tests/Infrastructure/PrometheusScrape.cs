using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace ConfigSpec.Tests.Infrastructure;

/// <summary>A Prometheus text scrape: its samples, and Prometheus' own linter over it (promtool from <c>scripts/test.sh</c> (CONFIGSPEC_PROMTOOL, unpacked from
/// Debian's prometheus), the repository's lib/tools, or the PATH).</summary>
public static class PrometheusScrape
{
    /// <summary>The value of the series <paramref name="name"/> whose labels include <paramref name="label"/> (k="v"), NaN when absent.</summary>
    public static double Sample(string text, string name, string? label = null)
    {
        foreach (Match m in Regex.Matches(text, "^" + Regex.Escape(name) + @"(?:\{([^}]*)\})? (\S+)", RegexOptions.Multiline))
        {
            if (label is null || m.Groups[1].Value.Split(',').Contains(label))
            {
                return double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            }
        }

        return double.NaN;
    }

    public static string PromtoolPath() =>
        Environment.GetEnvironmentVariable("CONFIGSPEC_PROMTOOL") is { Length: > 0 } p && File.Exists(p) ? p
        : System.IO.Path.Combine(TestEnvironment.RepositoryRoot, "lib", "tools", "prometheus", "usr", "bin", "promtool") is var local && File.Exists(local) ? local
        : "promtool";

    /// <summary>Asserts that <c>promtool check metrics</c> accepts <paramref name="text"/>, with its findings as the message.</summary>
    public static async Task AssertAcceptedAsync(string text)
    {
        var start = new ProcessStartInfo(PromtoolPath(), "check metrics") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var promtool = Process.Start(start)!;
        await promtool.StandardInput.WriteAsync(text);
        promtool.StandardInput.Close();
        var lint = await promtool.StandardError.ReadToEndAsync() + await promtool.StandardOutput.ReadToEndAsync();
        await promtool.WaitForExitAsync();
        Assert.True(promtool.ExitCode == 0, "promtool check metrics: " + lint);
    }
}
