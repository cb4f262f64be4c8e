using ConfigSpec.Contracts;
using System.CommandLine;
using System.Globalization;
using ConfigSpec.Interop;
using ConfigSpec.Interop.Llama;

namespace ConfigSpec.Edge.Cli;

/// <summary><c>model info</c> and <c>model quantize</c>.</summary>
internal static class ModelCommands
{
    public static Command Create(TextWriter output)
    {
        var model = new Command("model", "inspect models and derive drafts from a base model");
        model.Subcommands.Add(Info(output));
        model.Subcommands.Add(Quantize(output));
        return model;
    }

    private static Command Info(TextWriter output)
    {
        var file = new Argument<string>("file") { Description = "GGUF model file" };
        var json = new Option<bool>("--json") { Description = "print one JSON object" };
        var command = new Command("info", "architecture, parameters, sizes, tensor types, context length and vocabulary fingerprint")
        {
            file, json,
        };
        command.SetAction(parse =>
        {
            using var m = EdgeCli.LoadModel(parse, parse.GetValue(file)!, "model info");
            if (parse.GetValue(json))
            {
                JsonOutput.Write(output, new ModelReport(m.Path, m.Architecture, m.Description, m.ParameterCount, m.FileBytes, m.TensorBytes, m.TrainedContextLength,
                    m.LayerCount, m.EmbeddingLength, m.HeadCount, m.KvHeadCount, m.VocabularySize, m.BosToken, m.EosToken, m.VocabularyFingerprint, m.Gguf.Version,
                    m.Gguf.Tensors.Count, m.TensorTypes), indented: true);
            }
            else
            {
                var c = CultureInfo.InvariantCulture;
                output.WriteLine(string.Create(c, $"{m.Path}"));
                output.WriteLine(string.Create(c, $"  architecture   {m.Architecture} ({m.Description})"));
                output.WriteLine(string.Create(c, $"  parameters     {m.ParameterCount:N0}"));
                output.WriteLine(string.Create(c, $"  file size      {m.FileBytes:N0} bytes (tensors {m.TensorBytes:N0})"));
                output.WriteLine(string.Create(c, $"  layers         {m.LayerCount}, embedding {m.EmbeddingLength}, heads {m.HeadCount}/{m.KvHeadCount} (q/kv)"));
                output.WriteLine(string.Create(c, $"  context        {m.TrainedContextLength} tokens (trained)"));
                output.WriteLine(string.Create(c, $"  vocabulary     {m.VocabularySize} tokens, fingerprint {m.VocabularyFingerprint[..16]}"));
                output.WriteLine("  tensor types   " + string.Join(", ", m.TensorTypes.Select(t => string.Create(c, $"{t.Key}×{t.Value}"))));
            }

            return EdgeCli.ExitOk;
        });
        return command;
    }

    private static Command Quantize(TextWriter output)
    {
        var input = new Option<string>("--in") { Description = "base GGUF model", Required = true };
        var result = new Option<string>("--out") { Description = "output GGUF file", Required = true };
        var type = new Option<string>("--type") { Description = $"target type: {string.Join("|", QuantTypes.Names)}", Required = true };
        var prune = new Option<string?>("--prune-layers") { Description = "layer indices to remove, e.g. 4 or 1,2,3,4" };
        var threads = new Option<int>("--threads") { Description = "quantisation threads", DefaultValueFactory = _ => 1 };
        var command = new Command("quantize", "derive a draft: quantise (and optionally prune layers of) a base model") { input, result, type, prune, threads };
        command.SetAction(parse =>
        {
            var layers = ParseLayers(parse.GetValue(prune));
            var options = new QuantizeOptions { QuantType = parse.GetValue(type)!, PruneLayers = layers, Threads = parse.GetValue(threads) };
            var outPath = parse.GetValue(result)!;
            LlamaQuantizer.Quantize(parse.GetValue(input)!, outPath, options, EdgeCli.Runtime(parse));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {outPath} ({new FileInfo(outPath).Length:N0} bytes, {options.QuantType}{(layers.Count > 0 ? ", pruned layers " + string.Join(",", layers) : string.Empty)})"));
            return EdgeCli.ExitOk;
        });
        return command;
    }

    internal static IReadOnlyList<int> ParseLayers(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return [];
        }

        var layers = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var layer))
            {
                throw new ConfigSpecException($"--prune-layers: '{part}' is not a layer index");
            }

            layers.Add(layer);
        }

        return layers;
    }
}
