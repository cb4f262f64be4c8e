
using ConfigSpec.Contracts;
using ConfigSpec.Profiling.Profiles;

namespace ConfigSpec.Fleet.Messages;

/// <summary>
/// The fleet's messages on their topics (schemas in the README), written and read through the contracts
/// (<see cref="Contract"/>): each board message is its header and its body record in one object.
/// </summary>
public static class FleetMessages
{
    public const int Version = Contract.Version;
    public const string StatusSchema = "configspec.edge.status";
    public const string ProfileSchema = "configspec.edge.profile";
    public const string ConfigSchema = "configspec.edge.config";
    public const string MetricsSchema = "configspec.edge.metrics";

    // ---- writing ----

    public static string Status(string deviceId, long seq, DateTimeOffset time, StatusMessage m) => Contract.WriteEdge(new MessageHeader(StatusSchema, Version, deviceId, seq, time), m);

    public static string Profile(string deviceId, long seq, DateTimeOffset time, BoardProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        return Contract.WriteEdge(new MessageHeader(ProfileSchema, Version, deviceId, seq, time), new ProfileMessage(profile.Device.Board, ProfileJson.ToDocument(profile)));
    }

    public static string Config(string deviceId, long seq, DateTimeOffset time, ServedConfig m) => Contract.WriteEdge(new MessageHeader(ConfigSchema, Version, deviceId, seq, time), m);

    public static string Metrics(string deviceId, long seq, DateTimeOffset time, MetricsMessage m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return Contract.WriteEdge(new MessageHeader(MetricsSchema, Version, deviceId, seq, time), m with { WindowSeconds = Math.Round(m.WindowSeconds, 3) });
    }

    public static string Command(CommandMessage m) => Contract.Write(m);

    /// <summary>A recommendation, its objectives in name order.</summary>
    public static string Recommendation(RecommendationMessage m)
    {
        ArgumentNullException.ThrowIfNull(m);
        var ordered = new SortedDictionary<string, RecommendedConfig>(m.Objectives.ToDictionary(), StringComparer.Ordinal);
        return Contract.Write(m with { Objectives = ordered });
    }

    // ---- reading ----

    /// <summary>The profile a <c>.../profile</c> message carries, checked against its sender.</summary>
    public static (string Board, BoardProfile Profile) ReadProfile(ProfileMessage message, string deviceId)
    {
        ArgumentNullException.ThrowIfNull(message);
        BoardProfile profile;
        try
        {
            profile = ProfileJson.Read(message.Profile, "profile");
        }
        catch (ProfileFormatException ex)
        {
            throw new ContractException(ContractFault.InvalidField, ex.Message, ex, "profile");
        }

        if (profile.Device.Id != deviceId)
        {
            throw new ContractException(ContractFault.DeviceMismatch, $"profile.device.id '{profile.Device.Id}' differs from the sender '{deviceId}'", field: "profile.device.id");
        }

        return (message.Board, profile);
    }

    /// <summary>Parses a command; refuses anything but a well-formed one (the message names the field).</summary>
    public static CommandMessage ReadCommand(ReadOnlyMemory<byte> payload) => Contract.Read<CommandMessage>(payload);

    public static RecommendationMessage ReadRecommendation(ReadOnlyMemory<byte> payload) => Contract.Read<RecommendationMessage>(payload);
}
