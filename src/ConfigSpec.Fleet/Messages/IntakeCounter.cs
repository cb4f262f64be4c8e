using System.Collections.Concurrent;
using ConfigSpec.Contracts;

namespace ConfigSpec.Fleet.Messages;

/// <summary>What a board daemon takes in; each is counted under its name (<see cref="IntakeCounter.Name"/>) in <c>/v1/status</c>.</summary>
public enum DaemonInput
{
    Command,
    Generate,
    Recommendation,
    HttpGenerate,
    Other,
}

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
        ContractException f => ContractException.Name(f.Fault),
        ConfigSpecException => "invalid_request",
        _ => "unexpected_" + (exception?.GetType().Name ?? "error"),
    };

    /// <summary>The input's name in counters and logs: <c>cmd</c>, <c>generate</c>, <c>recommendation</c>, <c>http_generate</c>.</summary>
    public static string Name(DaemonInput input) => input switch
    {
        DaemonInput.Command => "cmd",
        DaemonInput.Generate => "generate",
        DaemonInput.Recommendation => "recommendation",
        DaemonInput.HttpGenerate => "http_generate",
        _ => "other",
    };

    /// <summary>Counts one refusal; true when it is the first of its input and reason (log that one).</summary>
    public bool Refuse(string input, string reason)
    {
        var n = _counts.AddOrUpdate((input, reason), 1, (_, v) => v + 1);
        return n == 1;
    }

    /// <summary>Per input, in name order: <c>{"cmd": {"total": 3, "by_reason": {"malformed_json": 2, ...}}, ...}</c>.</summary>
    public IReadOnlyDictionary<string, IntakeCounts> Snapshot() =>
        new SortedDictionary<string, IntakeCounts>(_counts.ToArray().GroupBy(p => p.Key.Input).ToDictionary(
            g => g.Key,
            g => new IntakeCounts(g.Sum(p => p.Value), new SortedDictionary<string, long>(g.ToDictionary(p => p.Key.Reason, p => p.Value), StringComparer.Ordinal))),
            StringComparer.Ordinal);
}
