using ConfigSpec.Contracts;

namespace ConfigSpec.Edge.Cli;

/// <summary>Writes a command's --json report: one contract record (source-generated, AOT-clean) on one line, or indented.</summary>
internal static class JsonOutput
{
    public static void Write<T>(TextWriter output, T report, bool indented = false) => output.WriteLine(Contract.Write(report, indented));
}
