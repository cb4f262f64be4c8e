using System.Diagnostics;
using System.Text.RegularExpressions;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Cli;

/// <summary>
/// The README's and the reference's claims that can be checked: the test command's closing line, the files and links
/// they name, the commands the status lists, the quick start's commands and options, the width of their lines.
/// </summary>
public sealed partial class ReadmeTests
{
    private static readonly string Root = TestEnvironment.RepositoryRoot;
    private static readonly string Readme = File.ReadAllText(Path.Combine(Root, "README.md"));

    /// <summary>The README and every page under docs/, by repository path.</summary>
    private static Dictionary<string, string> Pages() =>
        Directory.GetFiles(Path.Combine(Root, "docs"), "*.md").Select(p => Path.GetRelativePath(Root, p)).Append("README.md")
            .ToDictionary(p => p, p => File.ReadAllText(Path.Combine(Root, p)), StringComparer.Ordinal);

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
    public void Every_script_and_hardware_file_they_name_exists()
    {
        var named = Pages().SelectMany(p => RepositoryPath().Matches(p.Value).Select(m => (Page: p.Key, Path: m.Groups[1].Value.TrimEnd('.', ',', ')', ':'))))
            .Distinct().ToList();
        Assert.NotEmpty(named);
        var missing = named.Where(n => !File.Exists(Path.Combine(Root, n.Path)) && !Directory.Exists(Path.Combine(Root, n.Path))).ToList();
        Assert.True(missing.Count == 0, "missing paths: " + string.Join(", ", missing.Select(m => $"{m.Path} (in {m.Page})")));
    }

    [Fact]
    public void Every_link_resolves_and_the_readme_links_every_reference_page()
    {
        var pages = Pages();
        var broken = new List<string>();
        foreach (var (page, text) in pages)
        {
            foreach (Match link in Link().Matches(text))
            {
                var target = link.Groups[1].Value;
                if (target.StartsWith("http", StringComparison.Ordinal))
                {
                    continue;
                }

                var (file, anchor) = target.Split('#') is var parts ? (parts[0], parts.Length > 1 ? parts[1] : null) : default;
                var path = file.Length == 0 ? page : Path.GetRelativePath(Root, Path.GetFullPath(Path.Combine(Root, Path.GetDirectoryName(page)!, file)));
                if (!File.Exists(Path.Combine(Root, path)) && !Directory.Exists(Path.Combine(Root, path)))
                {
                    broken.Add($"{target} (in {page})");
                }
                else if (anchor is not null && !Headings(File.ReadAllText(Path.Combine(Root, path))).Contains(anchor))
                {
                    broken.Add($"{target}: no heading #{anchor} (in {page})");
                }
            }
        }

        Assert.True(broken.Count == 0, "broken links: " + string.Join(", ", broken));
        var linked = Link().Matches(Readme).Select(m => m.Groups[1].Value.Split('#')[0]).ToHashSet(StringComparer.Ordinal);
        var unlinked = pages.Keys.Where(p => p.StartsWith("docs", StringComparison.Ordinal) && !linked.Contains(p.Replace('\\', '/'))).ToList();
        Assert.True(unlinked.Count == 0, "reference pages the README does not link: " + string.Join(", ", unlinked));
    }

    [Fact]
    public void Lines_are_at_most_120_characters_outside_tables()
    {
        var wide = Pages().SelectMany(p => p.Value.Split('\n').Select((l, i) => (p.Key, Line: i + 1, Text: l)))
            .Where(l => l.Text.Length > 120 && (l.Key == "README.md" || !l.Text.StartsWith('|')))
            .Select(l => $"{l.Key}:{l.Line} ({l.Text.Length})").ToList();
        Assert.True(wide.Count == 0, "lines over 120 characters: " + string.Join(", ", wide));
    }

    [Fact]
    public async Task Every_command_of_configspec_edge_the_status_lists_exists()
    {
        var status = Readme[Readme.IndexOf("## Status", StringComparison.Ordinal)..];
        var listed = Backticked().Matches(status[..status.IndexOf("the board daemon", StringComparison.Ordinal)]).Select(m => m.Groups[1].Value.Split(' ')[0])
            .Where(c => c != "configspec-edge").Distinct().ToList();
        Assert.Contains("run", listed);
        var (_, help, _) = await EdgeCliTests.Run("--help");
        Assert.All(listed, c => Assert.Matches($@"(?m)^\s+{Regex.Escape(c)}\b", help));
    }

    /// <summary>
    /// The quick start copies and runs: each <c>out/bin/configspec-edge</c> command names a subcommand whose help lists
    /// every option it uses, and the model files it names are ones the set-up fetches.
    /// </summary>
    [Fact]
    public async Task The_quick_starts_commands_name_real_options_and_the_models_the_setup_fetches()
    {
        var quick = Readme[Readme.IndexOf("## Quick start", StringComparison.Ordinal)..Readme.IndexOf("## Reference", StringComparison.Ordinal)];
        var commands = Continued().Replace(quick, " ").Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("out/bin/configspec-edge ", StringComparison.Ordinal)).ToList();
        Assert.True(commands.Count >= 4, quick);
        foreach (var command in commands)
        {
            var words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var (code, help, _) = await EdgeCliTests.Run(words[1], "--help");
            Assert.True(code == 0, $"{words[1]} --help");
            foreach (var option in words.Where(w => w.StartsWith("--", StringComparison.Ordinal)))
            {
                Assert.Matches($@"(?m)^\s+(-\w, )?{Regex.Escape(option)}\b", help);
            }
        }

        var fetch = File.ReadAllText(Path.Combine(Root, "scripts", "fetch-models.sh"));
        foreach (var model in ModelPath().Matches(quick).Select(m => m.Groups[1].Value).Distinct())
        {
            Assert.Contains(model, fetch, StringComparison.Ordinal);
            Assert.True(File.Exists(TestEnvironment.Model(model)), $"{model} is not among the fetched models");
        }
    }

    [Fact]
    public void The_sample_scrape_configuration_is_one_prometheus_accepts()
    {
        var promtool = PrometheusScrape.PromtoolPath();
        using var check = Process.Start(new ProcessStartInfo(promtool, ["check", "config", Path.Combine(Root, "hw", "prometheus", "scrape.yml")])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        })!;
        var said = check.StandardOutput.ReadToEnd() + check.StandardError.ReadToEnd();
        check.WaitForExit();
        Assert.True(check.ExitCode == 0, said);
    }

    /// <summary>GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens.</summary>
    private static HashSet<string> Headings(string text) =>
        Heading().Matches(text).Select(m => Regex.Replace(m.Groups[1].Value.Trim().ToLowerInvariant(), @"[^\p{L}\p{N} _-]", "").Replace(' ', '-'))
            .ToHashSet(StringComparer.Ordinal);

    [GeneratedRegex(@"scripts/test\.sh\s+#[^\n]*""(N passed[^""]*)""")]
    private static partial Regex TestLine();

    [GeneratedRegex(@"\$\w+")]
    private static partial Regex Variables();

    [GeneratedRegex(@"`((?:scripts|hw)/[A-Za-z0-9_./-]+)")]
    private static partial Regex RepositoryPath();

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex Backticked();

    [GeneratedRegex(@"\]\(([^)\s]+)\)")]
    private static partial Regex Link();

    [GeneratedRegex(@"(?m)^#+ (.+)$")]
    private static partial Regex Heading();

    [GeneratedRegex(@"\\\n\s*")]
    private static partial Regex Continued();

    [GeneratedRegex(@"models/([A-Za-z0-9_.-]+\.gguf)")]
    private static partial Regex ModelPath();
}
