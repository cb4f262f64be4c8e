using System.Collections.Concurrent;
using System.Text.Json;
using ConfigSpec.Interop;

namespace ConfigSpec.Fleet.Messages;

/// <summary>
/// Counts what a service refused on each of its inputs (a topic kind such as <c>cmd</c>, or an HTTP route), by reason,
/// so a refusal is visible without a log line per message: <see cref="Refuse"/> is true only for the first refusal of
/// its (input, reason), which is the one to log.
/// </summary>
public sealed class IntakeCounter
{
    private readonly ConcurrentDictionary<(string Input, string Reason), long> _counts = new();

    /// <summary>The reason's name for a refused input: the fleet schema's reasons, otherwise the exception kind.</summary>
    public static string ReasonOf(Exception exception) => exception switch
    {
        FleetMessageException f => ReasonName(f.Reason),
        ConfigSpecException => "invalid_request",
        _ => "unexpected_" + (exception?.GetType().Name ?? "error"),
    };

    public static string ReasonName(RejectReason reason) => reason switch
    {
        RejectReason.MalformedJson => "malformed_json",
        RejectReason.UnknownSchema => "unknown_schema",
        RejectReason.UnsupportedVersion => "unsupported_version",
        RejectReason.DeviceMismatch => "device_mismatch",
        _ => "invalid_field",
    };

    /// <summary>Counts one refusal; true when it is the first of its input and reason (log that one).</summary>
    public bool Refuse(string input, string reason)
    {
        var n = _counts.AddOrUpdate((input, reason), 1, (_, v) => v + 1);
        return n == 1;
    }

    /// <summary><c>"name": {"cmd": {"total": 3, "by_reason": {"malformed_json": 2, ...}}, ...}</c>.</summary>
    public void Write(Utf8JsonWriter writer, string name)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject(name);
        foreach (var input in _counts.ToArray().GroupBy(p => p.Key.Input).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            writer.WriteStartObject(input.Key);
            writer.WriteNumber("total", input.Sum(p => p.Value));
            writer.WriteStartObject("by_reason");
            foreach (var (key, count) in input.OrderBy(p => p.Key.Reason, StringComparer.Ordinal))
            {
                writer.WriteNumber(key.Reason, count);
            }

            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        writer.WriteEndObject();
    }
}
