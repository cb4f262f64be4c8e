using System.CommandLine;
using ConfigSpec.Interop;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Telemetry;
using ConfigSpec.Telemetry.Energy;
using ConfigSpec.Telemetry.Sources;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Remote;

namespace ConfigSpec.Edge.Cli;

/// <summary>
/// The options every command that drafts against a verifier shares: where the target is (this process or an MQTT
/// broker), the board's id, and the power source charged for drafting.
/// </summary>
internal sealed class BoardOptions
{
    public Option<string?> Target { get; } = new("--target") { Description = "target GGUF model, verified in this process (omit with --verifier)" };

    public Option<string?> Verifier { get; } = new("--verifier") { Description = "verify remotely through this MQTT broker, mqtt://HOST[:PORT]" };

    public Option<string?> TargetId { get; } = new("--target-id") { Description = "remote target id (default: the --target file name without extension)" };

    public Option<string> DeviceId { get; } = new("--device-id") { Description = "this board's id", DefaultValueFactory = _ => Environment.MachineName };

    public Option<string?> Power { get; } = new("--power")
    {
        Description = "charge drafting energy to a power source: auto (the board's sensor, else a labelled estimate) or a spec such as ina219:bus=1,addr=0x40 (see `power --detect`)",
    };

    public Option<string> PowerInterval { get; } = new("--power-interval") { Description = "power sampling interval", DefaultValueFactory = _ => "10ms" };

    public void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        foreach (var option in new Option[] { Target, Verifier, TargetId, DeviceId, Power, PowerInterval })
        {
            command.Options.Add(option);
        }
    }

    /// <summary>The verifier named by --target or --verifier (with --target-id, else <paramref name="defaultTargetId"/> when remote).</summary>
    public Task<VerifierConnection> ConnectAsync(ParseResult parse, GenerationOptions options, CancellationToken cancellationToken, string? defaultTargetId = null)
    {
        var remote = parse.GetValue(Verifier);
        return VerifierConnection.OpenAsync(parse, parse.GetValue(Target), remote, parse.GetValue(TargetId) ?? (remote is null ? null : defaultTargetId),
            parse.GetValue(DeviceId)!, options, cancellationToken);
    }

    /// <summary>The power source named by --power, sampling, with an idle baseline of <paramref name="idle"/> ("0s" = none); null without --power.</summary>
    public Task<PowerSession?> StartPowerAsync(ParseResult parse, string idle, CancellationToken cancellationToken) =>
        PowerSession.StartAsync(parse.GetValue(Power), parse.GetValue(PowerInterval)!, idle, cancellationToken);
}

/// <summary>A power source sampled in the background, with the idle baseline taken before work starts.</summary>
public sealed class PowerSession : IAsyncDisposable
{
    private PowerSession(string spec, IPowerSource source, PowerSampler sampler, double? idleWatts)
    {
        Spec = spec;
        Source = source;
        Sampler = sampler;
        IdleWatts = idleWatts;
    }

    public string Spec { get; }

    public IPowerSource Source { get; }

    public PowerSampler Sampler { get; }

    public double? IdleWatts { get; }

    /// <summary>
    /// Opens <paramref name="spec"/> (<c>auto</c> picks the board's own sensor or a labelled estimate), starts sampling
    /// and measures the idle baseline for <paramref name="idle"/> ("0s" = none). Null when <paramref name="spec"/> is null.
    /// </summary>
    public static async Task<PowerSession?> StartAsync(string? spec, string interval, string idle, CancellationToken cancellationToken)
    {
        if (spec is null)
        {
            return null;
        }

        if (spec.Trim() == "auto")
        {
            spec = PowerSources.ResolveAuto(DeviceIdentity.Board(), EdgeCli.Sources);
        }

        var source = PowerSources.Create(spec, EdgeCli.Sources);
        var sampler = new PowerSampler(source, PowerCommand.ParseDuration(interval, "--power-interval"));
        try
        {
            sampler.Start();
            double? idleWatts = null;
            if (idle.Trim() is not ("0" or "0s" or "0ms"))
            {
                idleWatts = await DraftingEnergy.IdleBaselineAsync(sampler, PowerCommand.ParseDuration(idle, "--idle-baseline"), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await sampler.FirstSampleAsync(cancellationToken).ConfigureAwait(false);
            }

            return new PowerSession(spec, source, sampler, idleWatts);
        }
        catch
        {
            await sampler.DisposeAsync().ConfigureAwait(false);
            source.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Sampler.DisposeAsync().ConfigureAwait(false);
        Source.Dispose();
    }
}

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

    public static Task<VerifierConnection> OpenAsync(ParseResult parse, string? targetPath, string? remote, string? targetId, string deviceId,
        GenerationOptions options, CancellationToken cancellationToken) =>
        OpenAsync(targetPath, remote is null ? null : EdgeCli.Broker(parse, remote, "--verifier"), targetId, deviceId, options,
            path => EdgeCli.LoadModel(parse, path, "--target"), cancellationToken);

    /// <summary>The target in this process (<paramref name="targetPath"/>) or a configspec-verifier through <paramref name="broker"/>.</summary>
    public static async Task<VerifierConnection> OpenAsync(string? targetPath, MqttClientOptions? broker, string? targetId, string deviceId,
        GenerationOptions options, Func<string, LlamaModel> loadTarget, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(loadTarget);
        if (broker is null && targetPath is null)
        {
            throw new ConfigSpecException("give --target FILE (verify in this process) or --verifier mqtt://HOST:PORT with --target-id ID (remote)");
        }

        if (broker is null)
        {
            var target = loadTarget(targetPath!);
            return new VerifierConnection(LocalGeneration.CreateVerifier(target, options), target, "local", Path.GetFileNameWithoutExtension(targetPath!), null);
        }

        var id = targetId ?? (targetPath is null ? null : Path.GetFileNameWithoutExtension(targetPath));
        if (id is null)
        {
            throw new ConfigSpecException("--verifier needs --target-id (or --target to take the id from its file name)");
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
