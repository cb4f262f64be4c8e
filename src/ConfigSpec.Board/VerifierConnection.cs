using ConfigSpec.Interop.Llama;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Remote;

namespace ConfigSpec.Board;

/// <summary>The verifier a command drafts against: the target in this process, or a configspec-verifier over MQTT.</summary>
public sealed class VerifierConnection : IAsyncDisposable
{
    private VerifierConnection(IVerifier verifier, LlamaModel? target, string kind, string targetName, string? broker)
    {
        Verifier = verifier;
        Target = target;
        Kind = kind;
        TargetName = targetName;
        Broker = broker;
    }

    public IVerifier Verifier { get; }

    /// <summary>The local target model (null when remote).</summary>
    public LlamaModel? Target { get; }

    public string Kind { get; }

    public string TargetName { get; }

    /// <summary>The broker URL without credentials (remote only).</summary>
    public string? Broker { get; }

    /// <summary>The target in this process (<paramref name="targetPath"/>) or a configspec-verifier through <paramref name="broker"/>.</summary>
    public static async Task<VerifierConnection> OpenAsync(string? targetPath, MqttClientOptions? broker, string? targetId, string deviceId,
        GenerationOptions options, Func<string, LlamaModel> loadTarget, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(loadTarget);
        if (broker is null && targetPath is null)
        {
            throw SettingException.Naming("give {target} FILE (verify in this process) or {verifier} mqtt://HOST:PORT with {target_id} ID (remote)");
        }

        if (broker is null)
        {
            var target = loadTarget(targetPath!);
            return new VerifierConnection(LocalGeneration.CreateVerifier(target, options), target, "local", Path.GetFileNameWithoutExtension(targetPath!), null);
        }

        var id = targetId ?? (targetPath is null ? null : Path.GetFileNameWithoutExtension(targetPath));
        if (id is null)
        {
            throw SettingException.Naming("{verifier} needs {target_id} (or {target} to take the id from its file name)");
        }

        var client = await MqttVerifierClient.ConnectAsync(broker, new RemoteVerifierOptions { TargetId = id, DeviceId = deviceId }, cancellationToken).ConfigureAwait(false);
        var uri = broker.Broker;
        return new VerifierConnection(client, null, "mqtt", id, $"{uri.Scheme}://{uri.Host}:{broker.Port}");
    }

    public async ValueTask DisposeAsync()
    {
        await Verifier.DisposeAsync().ConfigureAwait(false);
        Target?.Dispose();
    }
}
