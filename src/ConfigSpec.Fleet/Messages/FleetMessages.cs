using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using ConfigSpec.Interop;
using ConfigSpec.Profiling;
using ConfigSpec.Profiling.Profiles;

namespace ConfigSpec.Fleet.Messages;

/// <summary>Why a fleet message was refused; counted per reason by the aggregator.</summary>
public enum RejectReason
{
    MalformedJson,
    UnknownSchema,
    UnsupportedVersion,
    DeviceMismatch,
    InvalidField,
}

/// <summary>A fleet message that is not what its topic promises; the message names the field at fault.</summary>
public sealed class FleetMessageException : ConfigSpecException
{
    public FleetMessageException() { }

    public FleetMessageException(string message) : base(message) { }

    public FleetMessageException(string message, Exception innerException) : base(message, innerException) { }

    public FleetMessageException(RejectReason reason, string message, Exception? innerException = null) : base(message, innerException!)
    {
        Reason = reason;
    }

    public RejectReason Reason { get; } = RejectReason.InvalidField;
}

/// <summary>The header every fleet message carries: schema name, version, the sender, its sequence number and clock.</summary>
/// <param name="Seq">Per-device sequence number, increasing across restarts; 0 on the broker's last-will message.</param>
public sealed record MessageHeader(string Schema, int Version, string DeviceId, long Seq, DateTimeOffset Time);

/// <summary>A board's state (<c>.../status</c>, retained; the last will says offline).</summary>
public sealed record StatusMessage(string State, string Board, string Hostname, string Software, string? Objective, string? Detail);

/// <summary>The configuration a board serves with, and why (<c>.../config</c>, retained).</summary>
public sealed record ConfigMessage(
    string Objective, string Draft, string Quant, string Sha256, int K, double? Goodput, double? TokensPerUsd, double? JoulesPerToken, string Reason, string Source);

/// <summary>Serving figures over one interval (<c>.../metrics</c>).</summary>
public sealed record MetricsMessage(
    double WindowSeconds, int Requests, int Tokens, double? Goodput, double? Acceptance, double? MeanAccepted, int K, double? Watts, double? JoulesPerToken,
    bool PowerEstimated);

/// <summary>
/// A command to a board (<c>.../cmd</c>): <c>reprofile</c>, <c>set-objective</c> or <c>apply</c>; <paramref name="Time"/>
/// (optional) is when it was issued, so that a command that waited too long for an absent board is refused.
/// </summary>
public sealed record CommandMessage(string Command, string? Id, string? Objective, string? Draft, int? K, DateTimeOffset? Time = null);

/// <summary>The fleet's best configuration for one objective on one board model.</summary>
/// <param name="Spread">Median absolute deviation of the figure across the devices behind it.</param>
public sealed record RecommendedConfig(string Draft, string Quant, string Sha256, int K, double Value, string Unit, int Devices, double Spread);

/// <summary>Retained on <c>configspec/v1/fleet/{board}/recommendation</c>.</summary>
public sealed record RecommendationMessage(string Board, DateTimeOffset Time, IReadOnlyDictionary<string, RecommendedConfig> Objectives);

/// <summary>Writes and reads the fleet's JSON messages (schemas in the README), with no reflection (native-AOT clean).</summary>
public static class FleetMessages
{
    public const int Version = 1;
    public const string StatusSchema = "configspec.edge.status";
    public const string ProfileSchema = "configspec.edge.profile";
    public const string ConfigSchema = "configspec.edge.config";
    public const string MetricsSchema = "configspec.edge.metrics";
    public const string CommandSchema = "configspec.edge.cmd";
    public const string RecommendationSchema = "configspec.fleet.recommendation";

    public static readonly string[] States = ["starting", "profiling", "serving", "offline", "error"];
    public static readonly string[] Commands = ["reprofile", "set-objective", "apply"];

    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    // ---- writing ----

    public static string Status(string deviceId, long seq, DateTimeOffset time, StatusMessage m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return Write(StatusSchema, deviceId, seq, time, w =>
        {
            w.WriteString("state", m.State);
            w.WriteString("board", m.Board);
            w.WriteString("hostname", m.Hostname);
            w.WriteString("software", m.Software);
            WriteStringOrNull(w, "objective", m.Objective);
            WriteStringOrNull(w, "detail", m.Detail);
        });
    }

    public static string Profile(string deviceId, long seq, DateTimeOffset time, BoardProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        var json = ProfileJson.Serialize(profile);
        return Write(ProfileSchema, deviceId, seq, time, w =>
        {
            w.WriteString("board", profile.Device.Board);
            w.WritePropertyName("profile");
            w.WriteRawValue(json);
        });
    }

    public static string Config(string deviceId, long seq, DateTimeOffset time, ConfigMessage m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return Write(ConfigSchema, deviceId, seq, time, w =>
        {
            w.WriteString("objective", m.Objective);
            w.WriteString("draft", m.Draft);
            w.WriteString("quant", m.Quant);
            w.WriteString("sha256", m.Sha256);
            w.WriteNumber("k", m.K);
            w.WriteStartObject("predicted");
            w.WriteNumberOrNull("goodput", m.Goodput);
            w.WriteNumberOrNull("tokens_per_usd", m.TokensPerUsd);
            w.WriteNumberOrNull("joules_per_token", m.JoulesPerToken);
            w.WriteEndObject();
            w.WriteString("reason", m.Reason);
            w.WriteString("source", m.Source);
        });
    }

    public static string Metrics(string deviceId, long seq, DateTimeOffset time, MetricsMessage m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return Write(MetricsSchema, deviceId, seq, time, w =>
        {
            w.WriteNumber("window_s", Math.Round(m.WindowSeconds, 3));
            w.WriteNumber("requests", m.Requests);
            w.WriteNumber("tokens", m.Tokens);
            w.WriteNumberOrNull("goodput", m.Goodput);
            w.WriteNumberOrNull("acceptance", m.Acceptance);
            w.WriteNumberOrNull("mean_accepted", m.MeanAccepted);
            w.WriteNumber("k", m.K);
            w.WriteNumberOrNull("watts", m.Watts);
            w.WriteNumberOrNull("joules_per_token", m.JoulesPerToken);
            w.WriteBoolean("power_estimated", m.PowerEstimated);
        });
    }

    public static string Command(CommandMessage m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return Json(w =>
        {
            w.WriteString("schema", CommandSchema);
            w.WriteNumber("version", Version);
            w.WriteString("command", m.Command);
            WriteStringOrNull(w, "id", m.Id);
            WriteStringOrNull(w, "objective", m.Objective);
            WriteStringOrNull(w, "draft", m.Draft);
            if (m.K is { } k)
            {
                w.WriteNumber("k", k);
            }

            if (m.Time is { } time)
            {
                w.WriteString("time", time.ToUniversalTime().ToString("O", C));
            }
        });
    }

    public static string Recommendation(RecommendationMessage m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return Json(w =>
        {
            w.WriteString("schema", RecommendationSchema);
            w.WriteNumber("version", Version);
            w.WriteString("board", m.Board);
            w.WriteString("time", m.Time.ToString("O", C));
            w.WriteStartObject("objectives");
            foreach (var (objective, r) in m.Objectives.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                w.WriteStartObject(objective);
                WriteRecommended(w, r);
                w.WriteEndObject();
            }

            w.WriteEndObject();
        });
    }

    public static void WriteRecommended(Utf8JsonWriter w, RecommendedConfig r)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(r);
        w.WriteString("draft", r.Draft);
        w.WriteString("quant", r.Quant);
        w.WriteString("sha256", r.Sha256);
        w.WriteNumber("k", r.K);
        w.WriteNumber("value", r.Value);
        w.WriteString("unit", r.Unit);
        w.WriteNumber("devices", r.Devices);
        w.WriteNumber("spread", r.Spread);
    }

    public static string Json(Action<Utf8JsonWriter> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        using var stream = new MemoryStream();
        // Relaxed escaping keeps quotes and non-ASCII text readable in logs and IoT consoles; consumers parse JSON, never embed it in HTML.
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static string Write(string schema, string deviceId, long seq, DateTimeOffset time, Action<Utf8JsonWriter> body) => Json(w =>
    {
        w.WriteString("schema", schema);
        w.WriteNumber("version", Version);
        w.WriteString("device_id", deviceId);
        w.WriteNumber("seq", seq);
        w.WriteString("time", time.ToString("O", C));
        body(w);
    });

    private static void WriteStringOrNull(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null)
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, value);
        }
    }

    // ---- reading ----

    /// <summary>
    /// Parses a board's message and checks its header against the topic: the schema, version 1, and the device id in
    /// the payload equal to the topic's. The document is the caller's to dispose.
    /// </summary>
    public static (MessageHeader Header, JsonDocument Document) Read(ReadOnlyMemory<byte> payload, string expectedSchema, string topicDeviceId) => Total(() => ReadCore(payload, expectedSchema, topicDeviceId));

    private static (MessageHeader Header, JsonDocument Document) ReadCore(ReadOnlyMemory<byte> payload, string expectedSchema, string topicDeviceId)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(payload, new JsonDocumentOptions { MaxDepth = 32 });
        }
        catch (JsonException ex)
        {
            throw new FleetMessageException(RejectReason.MalformedJson, $"not JSON: {ex.Message}", ex);
        }

        try
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new FleetMessageException(RejectReason.MalformedJson, "a message must be a JSON object");
            }

            var schema = root.TryGetProperty("schema", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : null;
            if (schema != expectedSchema)
            {
                throw new FleetMessageException(RejectReason.UnknownSchema, $"schema '{schema ?? "(missing)"}' where '{expectedSchema}' belongs");
            }

            var version = root.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var vi) ? vi : -1;
            if (version != Version)
            {
                throw new FleetMessageException(RejectReason.UnsupportedVersion, $"{schema} version {(version < 0 ? "(missing)" : version.ToString(C))} is not supported (this build reads {Version})");
            }

            var device = RequiredString(root, "device_id");
            if (device != topicDeviceId)
            {
                throw new FleetMessageException(RejectReason.DeviceMismatch, $"device_id '{device}' in the payload differs from '{topicDeviceId}' in the topic");
            }

            var seq = root.TryGetProperty("seq", out var q) && q.ValueKind == JsonValueKind.Number && q.TryGetInt64(out var qi) && qi >= 0
                ? qi
                : throw Invalid("seq", "a non-negative integer");
            var time = root.TryGetProperty("time", out var t) && t.ValueKind == JsonValueKind.String && DateTimeOffset.TryParse(t.GetString(), C, DateTimeStyles.RoundtripKind, out var tv)
                ? tv
                : throw Invalid("time", "an ISO 8601 time");
            return (new MessageHeader(schema!, version, device, seq, time), doc);
        }
        catch
        {
            doc.Dispose();
            throw;
        }
    }

    public static StatusMessage ReadStatus(JsonElement root) => Total(() => ReadStatusCore(root));

    private static StatusMessage ReadStatusCore(JsonElement root)
    {
        var state = RequiredString(root, "state");
        if (!States.Contains(state))
        {
            throw Invalid("state", $"one of {string.Join(", ", States)}");
        }

        return new StatusMessage(state, RequiredString(root, "board"), RequiredString(root, "hostname"), RequiredString(root, "software"),
            OptionalString(root, "objective"), OptionalString(root, "detail"));
    }

    public static (string Board, BoardProfile Profile) ReadProfile(JsonElement root, string deviceId) => Total(() => ReadProfileCore(root, deviceId));

    private static (string Board, BoardProfile Profile) ReadProfileCore(JsonElement root, string deviceId)
    {
        var board = RequiredString(root, "board");
        if (!root.TryGetProperty("profile", out var p) || p.ValueKind != JsonValueKind.Object)
        {
            throw Invalid("profile", "an object in the configspec.profile schema");
        }

        BoardProfile profile;
        try
        {
            profile = ProfileJson.Parse(p.GetRawText(), "profile");
        }
        catch (ProfileFormatException ex)
        {
            throw new FleetMessageException(RejectReason.InvalidField, ex.Message, ex);
        }

        if (profile.Device.Id != deviceId)
        {
            throw new FleetMessageException(RejectReason.DeviceMismatch, $"profile.device.id '{profile.Device.Id}' differs from the sender '{deviceId}'");
        }

        return (board, profile);
    }

    public static ConfigMessage ReadConfig(JsonElement root) => Total(() => ReadConfigCore(root));

    private static ConfigMessage ReadConfigCore(JsonElement root)
    {
        var k = RequiredInt(root, "k", 1, 64);
        var predicted = root.TryGetProperty("predicted", out var p) && p.ValueKind == JsonValueKind.Object ? p : throw Invalid("predicted", "an object");
        return new ConfigMessage(RequiredString(root, "objective"), RequiredString(root, "draft"), RequiredString(root, "quant"), Sha(root), k,
            OptionalNumber(predicted, "goodput", "predicted.goodput"), OptionalNumber(predicted, "tokens_per_usd", "predicted.tokens_per_usd"),
            OptionalNumber(predicted, "joules_per_token", "predicted.joules_per_token"), RequiredString(root, "reason"), RequiredString(root, "source"));
    }

    public static MetricsMessage ReadMetrics(JsonElement root) => Total(() => ReadMetricsCore(root));

    private static MetricsMessage ReadMetricsCore(JsonElement root)
    {
        var acceptance = OptionalNumber(root, "acceptance", "acceptance");
        if (acceptance is < 0 or > 1)
        {
            throw Invalid("acceptance", "a rate in [0, 1]");
        }

        return new MetricsMessage(
            OptionalNumber(root, "window_s", "window_s") ?? throw Invalid("window_s", "seconds"),
            RequiredInt(root, "requests", 0, int.MaxValue), RequiredInt(root, "tokens", 0, int.MaxValue),
            OptionalNumber(root, "goodput", "goodput"), acceptance, OptionalNumber(root, "mean_accepted", "mean_accepted"),
            RequiredInt(root, "k", 0, 64), OptionalNumber(root, "watts", "watts"), OptionalNumber(root, "joules_per_token", "joules_per_token"),
            root.TryGetProperty("power_estimated", out var e) && e.ValueKind == JsonValueKind.True);
    }

    /// <summary>Parses a command; refuses anything but a well-formed one (the message names the field).</summary>
    public static CommandMessage ReadCommand(ReadOnlyMemory<byte> payload) => Total(() => ReadCommandCore(payload));

    private static CommandMessage ReadCommandCore(ReadOnlyMemory<byte> payload)
    {
        using var doc = ParseObject(payload);
        var root = doc.RootElement;
        if (OptionalString(root, "schema") is { } schema && schema != CommandSchema)
        {
            throw new FleetMessageException(RejectReason.UnknownSchema, $"schema '{schema}' where '{CommandSchema}' belongs");
        }

        if (root.TryGetProperty("version", out var v) && !(v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var vi) && vi == Version))
        {
            throw new FleetMessageException(RejectReason.UnsupportedVersion, $"command version {v.GetRawText()} is not supported (this build reads {Version})");
        }

        var command = RequiredString(root, "command");
        if (!Commands.Contains(command))
        {
            throw Invalid("command", $"one of {string.Join(", ", Commands)}");
        }

        int? k = root.TryGetProperty("k", out var kv) && kv.ValueKind != JsonValueKind.Null ? RequiredInt(root, "k", 1, 32) : null;
        DateTimeOffset? time = OptionalString(root, "time") is not { } text ? null
            : DateTimeOffset.TryParse(text, C, DateTimeStyles.RoundtripKind, out var issued) ? issued
            : throw Invalid("time", "an ISO 8601 time such as 2026-12-01T20:00:00Z (when the command was issued)");
        var m = new CommandMessage(command, OptionalString(root, "id"), OptionalString(root, "objective"), OptionalString(root, "draft"), k, time);
        if (command == "set-objective" && m.Objective is null)
        {
            throw Invalid("objective", "given with set-objective (goodput, cost, energy or weighted)");
        }

        if (command == "apply" && (m.Draft is null || m.K is null))
        {
            throw Invalid(m.Draft is null ? "draft" : "k", "given with apply (draft: a file name or sha256; k: 1-32)");
        }

        return m;
    }

    public static RecommendationMessage ReadRecommendation(ReadOnlyMemory<byte> payload) => Total(() => ReadRecommendationCore(payload));

    private static RecommendationMessage ReadRecommendationCore(ReadOnlyMemory<byte> payload)
    {
        using var doc = ParseObject(payload);
        var root = doc.RootElement;
        if (OptionalString(root, "schema") != RecommendationSchema)
        {
            throw new FleetMessageException(RejectReason.UnknownSchema, $"schema '{OptionalString(root, "schema") ?? "(missing)"}' where '{RecommendationSchema}' belongs");
        }

        if (!(root.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var vi) && vi == Version))
        {
            throw new FleetMessageException(RejectReason.UnsupportedVersion,
                $"recommendation version {(root.TryGetProperty("version", out var given) ? given.GetRawText() : "(missing)")} is not supported (this build reads {Version})");
        }

        var objectives = new Dictionary<string, RecommendedConfig>(StringComparer.Ordinal);
        if (!root.TryGetProperty("objectives", out var o) || o.ValueKind != JsonValueKind.Object)
        {
            throw Invalid("objectives", "an object");
        }

        foreach (var p in o.EnumerateObject())
        {
            var e = p.Value;
            objectives[p.Name] = new RecommendedConfig(RequiredString(e, "draft"), RequiredString(e, "quant"), Sha(e), RequiredInt(e, "k", 1, 64),
                OptionalNumber(e, "value", "value") ?? 0, RequiredString(e, "unit"), RequiredInt(e, "devices", 0, int.MaxValue), OptionalNumber(e, "spread", "spread") ?? 0);
        }

        var time = DateTimeOffset.TryParse(OptionalString(root, "time"), C, DateTimeStyles.RoundtripKind, out var t) ? t : throw Invalid("time", "an ISO 8601 time");
        return new RecommendationMessage(RequiredString(root, "board"), time, objectives);
    }

    /// <summary>
    /// Every reader is total: whatever a payload holds (a fraction or 2^63 where an integer belongs, text that is not
    /// valid UTF-16, a wrong kind anywhere the reader looks), it returns a message or throws
    /// <see cref="FleetMessageException"/>; no other exception can reach a service's dispatcher.
    /// </summary>
    private static T Total<T>(Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or OverflowException or ArgumentException or KeyNotFoundException or IndexOutOfRangeException)
        {
            throw new FleetMessageException(RejectReason.InvalidField, $"a field holds what its schema does not allow ({ex.Message})", ex);
        }
    }

    private static JsonDocument ParseObject(ReadOnlyMemory<byte> payload)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(payload);
        }
        catch (JsonException ex)
        {
            throw new FleetMessageException(RejectReason.MalformedJson, $"not JSON: {ex.Message}", ex);
        }

        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            doc.Dispose();
            throw new FleetMessageException(RejectReason.MalformedJson, "a message must be a JSON object");
        }

        return doc;
    }

    private static string Sha(JsonElement e)
    {
        var sha = RequiredString(e, "sha256");
        return sha.Length == 64 && sha.All(char.IsAsciiHexDigitLower) ? sha : throw Invalid("sha256", "64 lower-case hex digits");
    }

    private static string RequiredString(JsonElement e, string name) =>
        e.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String && p.GetString() is { Length: > 0 and <= 4096 } s
            ? s
            : throw Invalid(name, "a non-empty string");

    private static string? OptionalString(JsonElement e, string name) =>
        !e.TryGetProperty(name, out var p) || p.ValueKind == JsonValueKind.Null ? null
        : p.ValueKind == JsonValueKind.String ? p.GetString() : throw Invalid(name, "a string or null");

    private static int RequiredInt(JsonElement e, string name, int min, int max) =>
        e.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.Number && p.TryGetInt32(out var v) && v >= min && v <= max
            ? v
            : throw Invalid(name, string.Create(C, $"an integer in {min}..{max}"));

    private static double? OptionalNumber(JsonElement e, string name, string path)
    {
        if (!e.TryGetProperty(name, out var p) || p.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return p.ValueKind == JsonValueKind.Number && p.TryGetDouble(out var v) && double.IsFinite(v) && v >= 0 ? v : throw Invalid(path, "a non-negative number or null");
    }

    private static FleetMessageException Invalid(string field, string expected) => new(RejectReason.InvalidField, $"field '{field}' must be {expected}");
}
