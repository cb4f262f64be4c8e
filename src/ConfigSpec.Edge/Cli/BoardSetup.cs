using System.CommandLine;
using ConfigSpec.Board;
using ConfigSpec.Speculative.Engine;

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
        return VerifierConnection.OpenAsync(parse.GetValue(Target), remote is null ? null : EdgeCli.Broker(parse, remote, "--verifier"),
            parse.GetValue(TargetId) ?? (remote is null ? null : defaultTargetId), parse.GetValue(DeviceId)!, options,
            path => EdgeCli.LoadModel(parse, path, "--target"), cancellationToken);
    }

    /// <summary>The power source named by --power, sampling, with an idle baseline of <paramref name="idle"/> ("0s" = none); null without --power.</summary>
    public Task<PowerSession?> StartPowerAsync(ParseResult parse, string idle, CancellationToken cancellationToken) =>
        PowerSession.StartAsync(parse.GetValue(Power), parse.GetValue(PowerInterval)!, idle, cancellationToken);
}
