using System.Text.RegularExpressions;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Cli;

/// <summary>The README's claims that can be checked: the test command's closing line, the files it names, the commands it lists.</summary>
public sealed partial class ReadmeTests
{
    private static readonly string Root = TestEnvironment.RepositoryRoot;
    private static readonly string Readme = File.ReadAllText(Path.Combine(Root, "README.md"));

    [Fact]
    public void The_closing_line_it_promises_is_the_one_the_test_script_prints()
    {
        var promised = TestLine().Match(Readme);
        Assert.True(promised.Success, "README names scripts/test.sh's closing line");
        var echo = File.ReadAllLines(Path.Combine(Root, "scripts", "test.sh")).Single(l => l.Contains("passed, $failed failed", StringComparison.Ordinal));
        var printed = Variables().Replace(echo.Trim()[(echo.Trim().IndexOf('"') + 1)..^1], "N");
        Assert.Equal(promised.Groups[1].Value, printed);
    }

    [Fact]
    public void Every_script_and_hardware_file_it_names_exists()
    {
        var named = RepositoryPath().Matches(Readme).Select(m => m.Groups[1].Value.TrimEnd('.', ',', ')', ':')).Distinct().ToList();
        Assert.NotEmpty(named);
        var missing = named.Where(p => !File.Exists(Path.Combine(Root, p)) && !Directory.Exists(Path.Combine(Root, p))).ToList();
        Assert.True(missing.Count == 0, "README names missing paths: " + string.Join(", ", missing));
    }

    [Fact]
    public async Task Every_command_of_configspec_edge_it_lists_exists()
    {
        var status = Readme[Readme.IndexOf("Status:", StringComparison.Ordinal)..Readme.IndexOf("## The two commands", StringComparison.Ordinal)];
        var listed = Backticked().Matches(status[..status.IndexOf("the board daemon", StringComparison.Ordinal)]).Select(m => m.Groups[1].Value.Split(' ')[0])
            .Where(c => c != "configspec-edge").Distinct().ToList();
        Assert.Contains("run", listed);
        var (_, help, _) = await EdgeCliTests.Run("--help");
        Assert.All(listed, c => Assert.Matches($@"(?m)^\s+{Regex.Escape(c)}\b", help));
    }

    [GeneratedRegex(@"scripts/test\.sh\s+#[^\n]*""(N passed[^""]*)""")]
    private static partial Regex TestLine();

    [GeneratedRegex(@"\$\w+")]
    private static partial Regex Variables();

    [GeneratedRegex(@"`((?:scripts|hw)/[A-Za-z0-9_./-]+)")]
    private static partial Regex RepositoryPath();

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex Backticked();
}
