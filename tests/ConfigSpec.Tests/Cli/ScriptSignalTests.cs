using System.Diagnostics;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Cli;

/// <summary>
/// The scripts' shared stop (scripts/lib/common.sh): INT or TERM to a script in the middle of a long step (a build, the
/// demo's wait) stops that step's whole process tree at once, removes its temporary folders and ends the script.
/// </summary>
public sealed class ScriptSignalTests
{
    [Theory]
    [InlineData("TERM", 143)]
    [InlineData("INT", 130)]
    public async Task A_signal_during_a_long_step_stops_its_process_tree_and_removes_temporary_folders(string signal, int exitCode)
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var script = Path.Combine(dir, "long-step.sh");
        await File.WriteAllTextAsync(script, $$"""
            source "{{Path.Combine(TestEnvironment.RepositoryRoot, "scripts", "lib", "common.sh")}}"
            temp_dir WORK
            echo "$WORK" > "{{dir}}/work"
            # A step with a grandchild, as a build has (msbuild, dotnet publish, ilc).
            run_step bash -c 'sleep 300 & echo $! > "{{dir}}/grandchild"; wait'
            echo "not reached" > "{{dir}}/after"
            """);
        // env --default-signal: a test host started in the background may hand its children SIGINT ignored.
        using var process = Process.Start(new ProcessStartInfo("env", ["--default-signal=INT", "bash", script]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var grandchildFile = Path.Combine(dir, "grandchild");
        for (var i = 0; i < 100 && !File.Exists(grandchildFile); i++)
        {
            await Task.Delay(100);
        }

        var grandchild = int.Parse((await File.ReadAllTextAsync(grandchildFile)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var work = (await File.ReadAllTextAsync(Path.Combine(dir, "work"))).Trim();
        Assert.True(Directory.Exists(work));
        using (var kill = Process.Start("kill", [$"-{signal}", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!)
        {
            await kill.WaitForExitAsync();
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await process.WaitForExitAsync(timeout.Token);
        var said = await process.StandardError.ReadToEndAsync();
        Assert.Equal(exitCode, process.ExitCode);
        Assert.Contains($"stopping on SIG{signal}", said, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir, "after")), "the script went on after the signal");
        Assert.False(Directory.Exists(work), "the temporary folder was left behind");
        Assert.False(await RunsAsync(grandchild), "the step's grandchild still runs");
    }

    /// <summary>Whether the process runs (neither gone nor a zombie waiting to be reaped), after up to 5 s for it to end.</summary>
    private static async Task<bool> RunsAsync(int pid)
    {
        for (var i = 0; i < 50; i++)
        {
            var stat = $"/proc/{pid}/stat";
            string? text = null;
            try
            {
                text = await File.ReadAllTextAsync(stat);
            }
            catch (IOException)
            {
            }

            // The state is the field after the parenthesised command name: Z (zombie) or X (dead) has ended.
            if (text is null || text[(text.LastIndexOf(')') + 2)..].StartsWith('Z') || text[(text.LastIndexOf(')') + 2)..].StartsWith('X'))
            {
                return false;
            }

            await Task.Delay(100);
        }

        return true;
    }
}
