using System.CommandLine;

namespace ConfigSpec.Edge.Cli;

internal static class BenchCommands
{
    public static Command Create(TextWriter output)
    {
        var bench = new Command("bench", "benchmarks that print measured figures");
        return bench;
    }
}
