using System.Text;
using ConfigSpec.Transport.Protocol;

namespace ConfigSpec.Fleet;

/// <summary>What a message on a board's topic tree is.</summary>
public enum EdgeTopicKind
{
    Status,
    Profile,
    Config,
    Metrics,
    Command,
    CommandResult,
    Generate,
}

/// <summary>The fleet topics, version 1 (documented in the README's MQTT section).</summary>
public static class FleetTopics
{
    public const string EdgeRoot = Topics.Root + "/edge/";

    public const string FleetRoot = Topics.Root + "/fleet/";

    /// <summary>
    /// What the aggregator subscribes to: every board's status, profile, configuration and metrics. (Not <c>edge/+/#</c>:
    /// that would also carry every verification reply to every board.)
    /// </summary>
    public static readonly string[] AggregatorSubscriptions = [EdgeRoot + "+/status", EdgeRoot + "+/profile", EdgeRoot + "+/config", EdgeRoot + "+/metrics"];

    public static string Status(string deviceId) => Edge(deviceId, "status");

    public static string Profile(string deviceId) => Edge(deviceId, "profile");

    public static string Config(string deviceId) => Edge(deviceId, "config");

    public static string Metrics(string deviceId) => Edge(deviceId, "metrics");

    public static string Command(string deviceId) => Edge(deviceId, "cmd");

    public static string CommandResult(string deviceId) => Edge(deviceId, "cmd/result");

    public static string Generate(string deviceId) => Edge(deviceId, "generate");

    public static string Recommendation(string boardModel) => FleetRoot + BoardKey(boardModel) + "/recommendation";

    /// <summary>The device id and kind of a board topic; null for topics that are not one of a board's (replies, sub-topics).</summary>
    public static (string DeviceId, EdgeTopicKind Kind)? Parse(string topic)
    {
        if (topic is null || !topic.StartsWith(EdgeRoot, StringComparison.Ordinal))
        {
            return null;
        }

        var rest = topic.AsSpan(EdgeRoot.Length);
        var slash = rest.IndexOf('/');
        if (slash <= 0)
        {
            return null;
        }

        EdgeTopicKind? kind = rest[(slash + 1)..] switch
        {
            "status" => EdgeTopicKind.Status,
            "profile" => EdgeTopicKind.Profile,
            "config" => EdgeTopicKind.Config,
            "metrics" => EdgeTopicKind.Metrics,
            "cmd" => EdgeTopicKind.Command,
            "cmd/result" => EdgeTopicKind.CommandResult,
            "generate" => EdgeTopicKind.Generate,
            _ => null,
        };
        return kind is { } k ? (rest[..slash].ToString(), k) : null;
    }

    /// <summary>
    /// A board model as one topic level and database key: lower case, runs of anything but letters and digits
    /// become one '-' ("Raspberry Pi 5 Model B Rev 1.0" → "raspberry-pi-5-model-b-rev-1-0").
    /// </summary>
    public static string BoardKey(string boardModel)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(boardModel);
        var sb = new StringBuilder(boardModel.Length);
        foreach (var ch in boardModel.Trim().ToLowerInvariant())
        {
            if (char.IsAsciiLetterOrDigit(ch))
            {
                sb.Append(ch);
            }
            else if (sb.Length > 0 && sb[^1] != '-')
            {
                sb.Append('-');
            }
        }

        var key = sb.ToString().Trim('-');
        return key.Length == 0 ? "unknown" : key.Length > 96 ? key[..96] : key;
    }

    /// <summary>Checks a device id for use as a topic level.</summary>
    public static string CheckDeviceId(string deviceId, string setting = "device id")
    {
        if (string.IsNullOrEmpty(deviceId) || deviceId.AsSpan().IndexOfAny("/+#$ ") >= 0 || deviceId.Length > 128)
        {
            throw new ArgumentException($"{setting} '{deviceId}' must be 1-128 characters without '/', '+', '#', '$' or spaces");
        }

        return deviceId;
    }

    private static string Edge(string deviceId, string leaf) => EdgeRoot + CheckDeviceId(deviceId) + "/" + leaf;
}
