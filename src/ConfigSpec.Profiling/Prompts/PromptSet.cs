using System.Text;
using ConfigSpec.Contracts;

namespace ConfigSpec.Profiling.Prompts;

/// <summary>One instruction prompt (Databricks Dolly 15K schema: instruction, context, category).</summary>
public sealed record Prompt(string Instruction, string Context, string Category)
{
    /// <summary>The text given to the models: the instruction, then the context when there is one.</summary>
    public string Text => Context.Length == 0 ? Instruction : $"{Instruction}\n\n{Context}";
}

/// <summary>A prompt set: the built-in one, or a JSONL file in the Dolly 15K schema.</summary>
public sealed class PromptSet
{
    public const string BuiltInName = "built-in";

    private PromptSet(string source, IReadOnlyList<Prompt> prompts)
    {
        Source = source;
        Prompts = prompts;
    }

    public string Source { get; }

    public IReadOnlyList<Prompt> Prompts { get; }

    public IEnumerable<string> Categories => Prompts.Select(p => p.Category).Distinct(StringComparer.Ordinal);

    /// <summary>The project's own instruction prompts, across the Dolly categories.</summary>
    public static PromptSet BuiltIn()
    {
        using var stream = typeof(PromptSet).Assembly.GetManifestResourceStream("ConfigSpec.Profiling.prompts.jsonl")
            ?? throw new InvalidOperationException("the built-in prompt set is missing from the assembly");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return Parse(reader.ReadToEnd(), BuiltInName);
    }

    /// <summary>Reads a JSONL file, one object per line with <c>instruction</c> and optional <c>context</c> and <c>category</c>.</summary>
    public static PromptSet Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new SettingException("prompts", $"{path}: no such file");
        }

        return Parse(File.ReadAllText(path), path);
    }

    public static PromptSet Parse(string text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        var prompts = new List<Prompt>();
        var lineNumber = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.Length == 0)
            {
                continue;
            }

            try
            {
                var entry = Contract.Read<PromptLine>(Encoding.UTF8.GetBytes(line));
                prompts.Add(new Prompt(entry.Instruction.Trim(), entry.Context?.Trim() ?? string.Empty, entry.Category?.Trim() is { Length: > 0 } c ? c : "uncategorised"));
            }
            catch (ContractException ex)
            {
                throw new ConfigSpecException($"prompts {source} line {lineNumber}: {ex.Message}", ex);
            }
        }

        if (prompts.Count == 0)
        {
            throw new ConfigSpecException($"prompts {source}: no prompts (expected JSON lines with an 'instruction' field, as in Dolly 15K)");
        }

        return new PromptSet(source, prompts);
    }

    /// <summary>Prompts in an order that mixes the categories (round robin), so a partial run still covers them all.</summary>
    public IReadOnlyList<Prompt> Interleaved()
    {
        var groups = Prompts.GroupBy(p => p.Category, StringComparer.Ordinal).Select(g => new Queue<Prompt>(g)).ToList();
        var result = new List<Prompt>(Prompts.Count);
        while (result.Count < Prompts.Count)
        {
            foreach (var group in groups.Where(g => g.Count > 0))
            {
                result.Add(group.Dequeue());
            }
        }

        return result;
    }
}
