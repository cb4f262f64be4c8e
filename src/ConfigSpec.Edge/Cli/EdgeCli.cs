using System.Globalization;
using System.CommandLine;
using ConfigSpec.Interop;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Telemetry.Sources;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Telemetry;

namespace ConfigSpec.Edge.Cli;

/// <summary>The configspec-edge command line: commands, shared options, and error reporting.</summary>
public static partial class EdgeCli
{
    public const int ExitOk = 0;
    public const int ExitUnexpected = 1;
    public const int ExitBadInput = 2;

    /// <summary>Folder of the llama.cpp libraries (applies to every command).</summary>
    internal static readonly Option<string?> LlamaDir = new("--llama-dir")
    {
        Description = $"folder holding libllama/libggml and the ggml backends (default: ${LlamaLibraryResolver.EnvironmentVariable}, then beside the program)",
        Recursive = true,
    };

    internal static readonly Option<int> GpuLayers = new("--gpu-layers")
    {
        Description = "model layers to offload to a GPU backend (needs a CUDA build in --llama-dir; -1 = all)",
        Recursive = true,
    };

    internal static readonly Option<string?> MqttUsername = new("--mqtt-username") { Description = "MQTT user name", Recursive = true };

    internal static readonly Option<string?> MqttPassword = new("--mqtt-password") { Description = $"MQTT password (or {MqttClientOptions.PasswordVariable})", Recursive = true };

    internal static readonly Option<string?> MqttCaFile = new("--mqtt-ca-file") { Description = "CA certificate for mqtts:// (default: the system store)", Recursive = true };

    internal static readonly Option<string?> MqttCertFile = new("--mqtt-cert-file") { Description = "client certificate for mqtts://", Recursive = true };

    internal static readonly Option<string?> MqttKeyFile = new("--mqtt-key-file") { Description = "client key for mqtts://", Recursive = true };

    internal static readonly Option<bool> Verbose = new("--verbose")
    {
        Description = "echo llama.cpp's own log messages",
        Recursive = true,
    };

    /// <summary>Power sources as this program offers them (with the MQTT smart-plug source).</summary>

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var root = new RootCommand("ConfigSpec edge: drafting, profiling and serving for speculative decoding on edge boards");
        root.Options.Add(LlamaDir);
        root.Options.Add(Verbose);
        root.Options.Add(GpuLayers);
        foreach (var option in new[] { MqttUsername, MqttPassword, MqttCaFile, MqttCertFile, MqttKeyFile })
        {
            root.Options.Add(option);
        }

        root.Subcommands.Add(GenerateCommand.Create(output));
        root.Subcommands.Add(ModelCommands.Create(output));
        root.Subcommands.Add(BenchCommands.Create(output));
        root.Subcommands.Add(PowerCommand.Create(output));
        root.Subcommands.Add(ProfileCommand.Create(output));
        root.Subcommands.Add(SelectionCommands.Select(output));
        root.Subcommands.Add(ValidateCommand.Create(output));
        root.Subcommands.Add(SelectionCommands.Report(output));
        root.Subcommands.Add(RunCommand.Create(output));
        root.Subcommands.Add(BenchPolicyCommand.Create(output));
        root.Subcommands.Add(SystemCommand.Create(output));

        if (args.Length == 0)
        {
            await root.Parse(["--help"]).InvokeAsync(new InvocationConfiguration { Output = error, Error = error }, cancellationToken).ConfigureAwait(false);
            return ExitBadInput;
        }

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // What the parser caught is bad input like any other: one line naming it, exit 2, no help dump.
            var more = parse.Errors.Count > 1 ? string.Create(CultureInfo.InvariantCulture, $" (and {parse.Errors.Count - 1} more)") : string.Empty;
            var first = parse.Errors.FirstOrDefault(e => !e.Message.StartsWith("Required command", StringComparison.Ordinal)) ?? parse.Errors[0];
            await error.WriteLineAsync($"configspec-edge: error: {Plain(first.Message).TrimEnd('.')}{more}; see: configspec-edge {CommandPath(parse.CommandResult)}--help").ConfigureAwait(false);
            return ExitBadInput;
        }

        try
        {
            return await parse.InvokeAsync(
                new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false },
                cancellationToken).ConfigureAwait(false);
        }
        catch (ConfigSpecException ex)
        {
            await error.WriteLineAsync($"configspec-edge: error: {OneLine(ex.CommandLineMessage)}").ConfigureAwait(false);
            return ExitBadInput;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync("configspec-edge: cancelled").ConfigureAwait(false);
            return ExitUnexpected;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            await error.WriteLineAsync($"configspec-edge: unexpected error: {ex.GetType().Name}: {OneLine(ex.Message)}").ConfigureAwait(false);
            if (parse.GetValue(Verbose))
            {
                await error.WriteLineAsync(ex.ToString()).ConfigureAwait(false);
            }

            return ExitUnexpected;
        }
    }

    internal static LlamaRuntimeOptions Runtime(ParseResult parse) => new()
    {
        LibraryDirectory = parse.GetValue(LlamaDir),
        EchoLevel = parse.GetValue(Verbose) ? LlamaLogLevel.Info : LlamaLogLevel.None,
    };

    /// <summary>Broker settings from a URL setting and the shared MQTT options.</summary>
    internal static MqttClientOptions Broker(ParseResult parse, string url, string setting) => MqttClientOptions.FromSettings(
        url, setting, parse.GetValue(MqttUsername), parse.GetValue(MqttPassword), parse.GetValue(MqttCaFile), parse.GetValue(MqttCertFile), parse.GetValue(MqttKeyFile));

    internal static LlamaModel LoadModel(ParseResult parse, string path, string setting)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new ConfigSpecException($"{setting} needs a model file path");
        }

        return LlamaModel.Load(path, new LlamaModelOptions { GpuLayers = parse.GetValue(GpuLayers) }, Runtime(parse));
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();

    /// <summary>The parser's message in the user's words: "as a whole number", not "as expected type 'System.Int32'".</summary>
    private static string Plain(string message) => TypeName().Replace(OneLine(message), m => m.Groups[1].Value switch
    {
        "System.Int32" or "System.Int64" => "as a whole number",
        "System.UInt64" or "System.UInt32" => "as a non-negative whole number",
        "System.Single" or "System.Double" => "as a number",
        "System.Boolean" => "as true or false",
        _ => "as a value of this option",
    });

    private static string CommandPath(System.CommandLine.Parsing.CommandResult? result)
    {
        var names = new List<string>();
        for (var r = result; r?.Parent is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Insert(0, r.Command.Name);
        }

        return names.Count == 0 ? string.Empty : string.Join(' ', names) + " ";
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"as expected type '([^']+)'")]
    private static partial System.Text.RegularExpressions.Regex TypeName();
}
