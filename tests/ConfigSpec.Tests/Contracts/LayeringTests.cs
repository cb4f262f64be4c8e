using System.Xml.Linq;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Contracts;

/// <summary>The layers the projects promise: checked on the sources and project files, so a shortcut shows up here.</summary>
public sealed class LayeringTests
{
    private static string Src(params string[] parts) => Path.Combine([TestEnvironment.RepositoryRoot, "src", .. parts]);

    private static IEnumerable<string> References(string project) =>
        XDocument.Load(Src(project, project + ".csproj")).Descendants("ProjectReference").Select(r => Path.GetFileNameWithoutExtension(r.Attribute("Include")!.Value));

    [Fact]
    public void The_contracts_depend_on_nothing_and_telemetry_not_on_the_llama_binding()
    {
        Assert.Empty(References("ConfigSpec.Contracts"));
        Assert.Equal(["ConfigSpec.Contracts"], References("ConfigSpec.Telemetry"));
        Assert.DoesNotContain(Directory.EnumerateFiles(Src("ConfigSpec.Telemetry"), "*.cs", SearchOption.AllDirectories).Where(f => !f.Contains("/obj/", StringComparison.Ordinal)),
            f => File.ReadAllText(f).Contains("ConfigSpec.Interop", StringComparison.Ordinal));
    }

    [Fact]
    public void The_daemon_does_not_use_the_command_line_and_the_outbox_not_the_profiler()
    {
        foreach (var file in Directory.EnumerateFiles(Src("ConfigSpec.Edge", "Daemon"), "*.cs"))
        {
            var text = File.ReadAllText(file);
            Assert.False(text.Contains("ConfigSpec.Edge.Cli", StringComparison.Ordinal) || text.Contains("System.CommandLine", StringComparison.Ordinal), file);
        }

        Assert.DoesNotContain("ConfigSpec.Profiling", File.ReadAllText(Src("ConfigSpec.Fleet", "Outbox", "Outbox.cs")), StringComparison.Ordinal);
        Assert.DoesNotContain("ConfigSpec.Edge", References("ConfigSpec.Board"));
    }

    [Fact]
    public void Libraries_do_not_name_command_line_options_in_their_errors()
    {
        string[] libraries = ["ConfigSpec.Contracts", "ConfigSpec.Interop", "ConfigSpec.Telemetry", "ConfigSpec.Speculative", "ConfigSpec.Profiling", "ConfigSpec.Transport", "ConfigSpec.Fleet", "ConfigSpec.Board"];
        var offenders = libraries.SelectMany(l => Directory.EnumerateFiles(Src(l), "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal))
            .SelectMany(f => File.ReadAllLines(f).Select((line, i) => (f, i, line)))
            .Where(x => x.line.Contains("Exception(", StringComparison.Ordinal) && System.Text.RegularExpressions.Regex.IsMatch(x.line, "\"[^\"]*--[a-z]"))
            .Select(x => $"{Path.GetFileName(x.f)}:{x.i + 1}")
            .ToList();
        Assert.True(offenders.Count == 0, "errors naming options: " + string.Join(", ", offenders));
    }
}
