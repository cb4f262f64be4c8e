namespace ConfigSpec.Transport.Protocol;

/// <summary>The MQTT topics of verification, version 1 (documented in the README).</summary>
public static class Topics
{
    public const string Root = "configspec/v1";
    public const string SharedGroup = "configspec-verifiers";

    /// <summary>Where boards open sessions; every replica serving the target takes it as a shared subscription.</summary>
    public static string Pool(string targetId) => $"{Root}/verifier/pool/{Check(targetId, "target id")}/request";

    public static string PoolSubscription(string targetId) => $"$share/{SharedGroup}/{Pool(targetId)}";

    /// <summary>A session's later rounds go to the replica that holds its KV cache.</summary>
    public static string Instance(string instanceId) => $"{Root}/verifier/{Check(instanceId, "instance id")}/request";

    /// <summary>Retained <c>{"state":"online"|"offline",...}</c>, with the offline message as the last will.</summary>
    public static string Status(string instanceId) => $"{Root}/verifier/{Check(instanceId, "instance id")}/status";

    public const string AllStatus = Root + "/verifier/+/status";

    public static string Reply(string deviceId) => $"{Root}/edge/{Check(deviceId, "device id")}/reply";

    /// <summary>The instance id in a status topic, or null when the topic is not one.</summary>
    public static string? InstanceOfStatus(string topic)
    {
        var prefix = Root + "/verifier/";
        return topic.StartsWith(prefix, StringComparison.Ordinal) && topic.EndsWith("/status", StringComparison.Ordinal)
            ? topic[prefix.Length..^"/status".Length]
            : null;
    }

    private static string Check(string id, string what)
    {
        if (string.IsNullOrEmpty(id) || id.AsSpan().IndexOfAny("/+#$ ") >= 0 || id.Length > 128)
        {
            throw new ArgumentException($"{what} '{id}' must be 1-128 characters without '/', '+', '#', '$' or spaces", nameof(id));
        }

        return id;
    }
}
