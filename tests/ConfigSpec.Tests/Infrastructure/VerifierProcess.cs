namespace ConfigSpec.Tests.Infrastructure;

/// <summary>A configspec-verifier child process (the real program, built beside the tests).</summary>
public sealed class VerifierProcess(string instanceId, Uri broker, params string[] extra)
    : ProductProcess("ConfigSpec.Verifier", "configspec-verifier.dll", Arguments(instanceId, broker, extra))
{
    public string InstanceId { get; } = instanceId;

    private static List<string> Arguments(string instanceId, Uri broker, string[] extra)
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["--model"] = TestEnvironment.Model("stories260K.gguf"), ["--broker"] = broker.ToString(), ["--instance-id"] = instanceId,
            ["--llama-dir"] = TestEnvironment.LlamaDirectory, ["--ctx"] = "512", ["--max-sessions"] = "16",
        };
        for (var i = 0; i + 1 < extra.Length; i += 2)
        {
            settings[extra[i]] = extra[i + 1];
        }

        return [.. settings.SelectMany(p => new[] { p.Key, p.Value })];
    }
}
