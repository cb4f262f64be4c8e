using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;

namespace ConfigSpec.Contracts;

/// <summary>Why a message or document was refused; counted per fault by the services.</summary>
public enum ContractFault
{
    MalformedJson,
    UnknownSchema,
    UnsupportedVersion,
    DeviceMismatch,
    InvalidField,
}

/// <summary>A message or document that is not what its schema promises; the message names the field at fault.</summary>
public sealed class ContractException : ConfigSpecException
{
    public ContractException() { }

    public ContractException(string message) : base(message) { }

    public ContractException(string message, Exception innerException) : base(message, innerException) { }

    public ContractException(ContractFault fault, string message, Exception? innerException = null, string? field = null) : base(message, innerException!)
    {
        Fault = fault;
        Field = field;
    }

    public ContractFault Fault { get; } = ContractFault.InvalidField;

    /// <summary>The field at fault (<c>predicted.goodput</c>), when one is.</summary>
    public string? Field { get; }

    /// <summary>The fault's name as counters and logs give it: <c>malformed_json</c>, <c>invalid_field</c>, ...</summary>
    public static string Name(ContractFault fault) => fault switch
    {
        ContractFault.MalformedJson => "malformed_json",
        ContractFault.UnknownSchema => "unknown_schema",
        ContractFault.UnsupportedVersion => "unsupported_version",
        ContractFault.DeviceMismatch => "device_mismatch",
        _ => "invalid_field",
    };
}

/// <summary>A record that checks its own bounds after it is read (the reader has already checked kinds and presence).</summary>
public interface IContract
{
    /// <summary>Throws <see cref="ContractException"/> naming the field that is out of bounds.</summary>
    void Validate();
}

/// <summary>A record whose <c>version</c> member is its schema's version: any other than <see cref="Contract.Version"/> is refused as unsupported before its members are read.</summary>
public interface IVersioned : IContract;

/// <summary>An enum read only from its names: integers (<c>"command": 1</c>) and numeric strings are refused.</summary>
public sealed class StrictEnumConverter<TEnum> : JsonStringEnumConverter<TEnum>
    where TEnum : struct, Enum
{
    public StrictEnumConverter() : base(namingPolicy: null, allowIntegerValues: false) { }
}

/// <summary>
/// Reads and writes every contract: strict (integers must be integers, numbers numbers, required members present, no
/// null where the record has none, no duplicate members, at most 32 levels deep), unknown members skipped (a newer
/// sender's additions), snake_case names, relaxed escaping (quotes and non-ASCII text readable in IoT consoles; the
/// consumers parse JSON, none embeds it in HTML). Every reader is total: whatever a payload holds, it returns a valid
/// record or throws <see cref="ContractException"/> naming the field.
/// </summary>
public static partial class Contract
{
    public const int Version = 1;

    /// <summary>Longest text a name-like field may hold.</summary>
    public const int MaxText = 4096;

    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        NumberHandling = JsonNumberHandling.Strict,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
        AllowDuplicateProperties = false,
        MaxDepth = 32,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        TypeInfoResolver = ContractsJsonContext.Default,
    };

    private static readonly JsonSerializerOptions IndentedOptions = new(Options) { WriteIndented = true };

    /// <summary>The type's metadata under <see cref="Options"/>.</summary>
    public static JsonTypeInfo<T> Info<T>() => (JsonTypeInfo<T>)Options.GetTypeInfo(typeof(T));

    public static string Write<T>(T value, bool indented = false) => JsonSerializer.Serialize(value, indented ? (JsonTypeInfo<T>)IndentedOptions.GetTypeInfo(typeof(T)) : Info<T>());

    public static byte[] WriteUtf8<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, Info<T>());

    /// <summary>A board message: the header's members first, then the body's, in one object.</summary>
    public static string WriteEdge<T>(MessageHeader header, T body)
    {
        ArgumentNullException.ThrowIfNull(header);
        var head = JsonSerializer.SerializeToUtf8Bytes(header, Info<MessageHeader>());
        var rest = JsonSerializer.SerializeToUtf8Bytes(body, Info<T>());
        // Both are objects written by the serializer: '{...}' and '{...}' join as '{head..., body...}'.
        var joined = new byte[head.Length + rest.Length - 1];
        head.AsSpan(0, head.Length - 1).CopyTo(joined);
        var at = head.Length - 1;
        if (rest.Length > 2)
        {
            joined[at++] = (byte)',';
            rest.AsSpan(1).CopyTo(joined.AsSpan(at));
        }
        else
        {
            joined[at] = (byte)'}';
            Array.Resize(ref joined, at + 1);
        }

        return Encoding.UTF8.GetString(joined);
    }

    /// <summary>Reads and validates one record from a payload (a syntax error is malformed JSON, a wrong member an invalid field).</summary>
    public static T Read<T>(ReadOnlyMemory<byte> payload)
        where T : IContract
    {
        using var document = Parse(payload);
        return Read<T>(document.RootElement, payload.Span);
    }

    /// <summary>Reads and validates one record from an element of a document already parsed.</summary>
    public static T Read<T>(JsonElement element)
        where T : IContract => Read<T>(element, default);

    /// <summary>
    /// The record from <paramref name="utf8"/> when the caller has the bytes the document was parsed from (the serializer
    /// reads them directly), else from <paramref name="element"/>; the version of an <see cref="IVersioned"/> record first.
    /// </summary>
    private static T Read<T>(JsonElement element, ReadOnlySpan<byte> utf8)
        where T : IContract
    {
        var info = Info<T>();
        if (element.ValueKind == JsonValueKind.Object && typeof(IVersioned).IsAssignableFrom(typeof(T)) && element.TryGetProperty("version", out var version)
            && !(version.ValueKind == JsonValueKind.Number && version.TryGetInt32(out var v) && v == Version))
        {
            // Before the members: a message of another version is that, not a bad field.
            throw new ContractException(ContractFault.UnsupportedVersion, $"version {Short(version)} is not supported (this build reads {Version})", field: "version");
        }

        T? value;
        try
        {
            value = utf8.IsEmpty ? element.Deserialize(info) : JsonSerializer.Deserialize(utf8, info);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or NotSupportedException or ArgumentException or FormatException or OverflowException)
        {
            throw Translate(ex, info);
        }

        return Validated(value);
    }

    /// <summary>A member as the payload wrote it, cut to 80 characters for a message.</summary>
    private static string Short(JsonElement member) =>
        member.ValueKind == JsonValueKind.Undefined ? "(missing)" : member.GetRawText() is var raw && raw.Length > 80 ? raw[..80] + "..." : raw;

    /// <summary>
    /// A board message on its topic: the header's schema, version 1 and a device id equal to the topic's, then the body.
    /// </summary>
    public static (MessageHeader Header, T Body) ReadEdge<T>(ReadOnlyMemory<byte> payload, string expectedSchema, string topicDeviceId)
        where T : IContract
    {
        using var document = Parse(payload);
        var root = document.RootElement;
        // The schema and version first, so a message of another kind or version says so rather than naming a field.
        // ValueEquals compares without decoding: a schema that is not valid text is another schema, not a crash.
        if (!(root.TryGetProperty("schema", out var s) && s.ValueKind == JsonValueKind.String && s.ValueEquals(expectedSchema)))
        {
            throw new ContractException(ContractFault.UnknownSchema, $"schema {Short(s)} where '{expectedSchema}' belongs", field: "schema");
        }

        var header = Read<MessageHeader>(root, payload.Span);
        if (header.DeviceId != topicDeviceId)
        {
            throw new ContractException(ContractFault.DeviceMismatch, $"device_id '{header.DeviceId}' in the payload differs from '{topicDeviceId}' in the topic", field: "device_id");
        }

        return (header, Read<T>(root, payload.Span));
    }

    /// <summary>Parses a payload that must be one JSON object (at most 32 levels deep); the document is the caller's to dispose.</summary>
    private static JsonDocument Parse(ReadOnlyMemory<byte> payload)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(payload, new JsonDocumentOptions { MaxDepth = Options.MaxDepth, AllowDuplicateProperties = false });
        }
        catch (JsonException ex)
        {
            throw new ContractException(ContractFault.MalformedJson, $"not JSON: {Plain(ex.Message)}", ex);
        }

        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw new ContractException(ContractFault.MalformedJson, "a message must be a JSON object");
        }

        return document;
    }

    private static T Validated<T>(T? value)
        where T : IContract
    {
        if (value is null)
        {
            throw new ContractException(ContractFault.MalformedJson, "a message must be a JSON object, not null");
        }

        try
        {
            value.Validate();
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException or OverflowException)
        {
            throw new ContractException(ContractFault.InvalidField, $"a field holds what its schema does not allow ({ex.Message})", ex);
        }

        return value;
    }

    /// <summary>The serializer's error as the schema's: the field by its JSON path and what belongs there, without .NET type names.</summary>
    private static ContractException Translate(Exception ex, JsonTypeInfo root)
    {
        var json = ex as JsonException ?? ex.InnerException as JsonException;
        var path = json?.Path is { Length: > 1 } p ? Field(p) : null;
        if (json is not null && MissingMembers().Match(json.Message) is { Success: true } missing)
        {
            var field = (path is null ? string.Empty : path + ".") + missing.Groups[1].Value.Replace("'", string.Empty, StringComparison.Ordinal).Split(", ")[0];
            return new ContractException(ContractFault.InvalidField, $"field '{field}' is missing", ex, field);
        }

        if (json is null || path is null)
        {
            return new ContractException(ContractFault.InvalidField, $"a field holds what its schema does not allow ({Plain(ex.Message)})", ex, path);
        }

        var fault = path == "schema" ? ContractFault.UnknownSchema : ContractFault.InvalidField;
        var expected = Expected(root, path);
        var text = json.InnerException is InvalidOperationException { Message: var m } && m.Contains("UTF-16", StringComparison.Ordinal) ? " (it holds text that is not valid Unicode)" : string.Empty;
        return new ContractException(fault, expected is null
            ? $"field '{path}' holds what its schema does not allow ({Plain(json.Message)})"
            : $"field '{path}' must be {expected}{text}", ex, path);
    }

    /// <summary>"$.objectives['goodput'].k" → "objectives.goodput.k"; array elements keep their index: "configurations[1].rounds".</summary>
    private static string Field(string jsonPath)
    {
        var text = jsonPath.StartsWith("$.", StringComparison.Ordinal) ? jsonPath[2..] : jsonPath.TrimStart('$');
        return Brackets().Replace(text, m => m.Groups[1].Success ? (m.Index == 0 ? string.Empty : ".") + m.Groups[1].Value : m.Value).TrimStart('.');
    }

    /// <summary>What the record declares at a path: "an integer", "a number or null", "one of reprofile, set-objective, apply".</summary>
    private static string? Expected(JsonTypeInfo root, string path)
    {
        var info = root;
        Type? type = null;
        foreach (var segment in Indices().Replace(path, ".[$1]").Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            if (info.Kind == JsonTypeInfoKind.Object)
            {
                var property = info.Properties.FirstOrDefault(p => p.Name == segment);
                if (property is null)
                {
                    return null;
                }

                type = property.PropertyType;
            }
            else if (info.Kind is JsonTypeInfoKind.Dictionary or JsonTypeInfoKind.Enumerable && info.ElementType is { } element)
            {
                type = element;
            }
            else
            {
                return null;
            }

            info = info.Options.GetTypeInfo(type);
        }

        return type is null ? null : Describe(type);
    }

    private static string Describe(Type type)
    {
        if (Nullable.GetUnderlyingType(type) is { } inner)
        {
            return Describe(inner) + " or null";
        }

        return type == typeof(int) ? string.Create(CultureInfo.InvariantCulture, $"an integer (at most {int.MaxValue})")
            : type == typeof(long) ? "an integer"
            : type == typeof(double) ? "a number"
            : type == typeof(string) ? "a string"
            : type == typeof(bool) ? "true or false"
            : type == typeof(DateTimeOffset) ? "an ISO 8601 time such as 2026-12-01T20:00:00Z"
            : type == typeof(FleetCommand) ? "one of reprofile, set-objective, apply"
            : type == typeof(BoardState) ? "one of starting, profiling, serving, offline, error"
            : type == typeof(JsonElement) ? "an object"
            : type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>) ? "an object"
            : type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyList<>) ? "an array"
            : "an object of its schema";
    }

    /// <summary>The serializer's text without the .NET type names and byte positions it adds.</summary>
    private static string Plain(string message)
    {
        var text = TypeNames().Replace(message, "a value of its kind");
        var cut = text.IndexOf(" Path:", StringComparison.Ordinal);
        return (cut > 0 ? text[..cut] : text).Trim();
    }

    [GeneratedRegex(@"missing required properties including: (.+?)\.?$")]
    private static partial Regex MissingMembers();

    [GeneratedRegex(@"\[(\d+)\]")]
    private static partial Regex Indices();

    [GeneratedRegex(@"\['([^']*)'\]|\[(\d+)\]")]
    private static partial Regex Brackets();

    [GeneratedRegex(@"(?:System|ConfigSpec)\.[\w.`\[\], =]+")]
    private static partial Regex TypeNames();
}

/// <summary>The bounds checks every record's <see cref="IContract.Validate"/> uses; each throws naming the field.</summary>
public static class Check
{
    public static ContractException Invalid(string field, string expected) => new(ContractFault.InvalidField, $"field '{field}' must be {expected}", field: field);

    /// <summary>Text of 1..4096 characters (null passes: the reader has refused null where the record allows none).</summary>
    public static void Text(string? value, string field)
    {
        if (value is not null && value.Length is 0 or > Contract.MaxText)
        {
            throw Invalid(field, string.Create(CultureInfo.InvariantCulture, $"a non-empty string of at most {Contract.MaxText} characters"));
        }
    }

    public static T Present<T>(T? value, string field)
        where T : class => value ?? throw Invalid(field, "present");

    public static void Sha256(string value, string field)
    {
        if (value is null || value.Length != 64 || !value.All(char.IsAsciiHexDigitLower))
        {
            throw Invalid(field, "64 lower-case hex digits");
        }
    }

    /// <summary>A draft configuration's identity: <c>draft</c>, <c>quant</c>, <c>sha256</c> and <c>k</c>.</summary>
    public static void Draft(string draft, string quant, string sha256, int k)
    {
        Text(draft, "draft");
        Text(quant, "quant");
        Sha256(sha256, "sha256");
        DraftLength(k, "k");
    }

    public static void DraftLength(int k, string field)
    {
        if (!Contracts.DraftLength.IsValid(k))
        {
            throw Invalid(field, $"an integer in {Contracts.DraftLength.Range}");
        }
    }

    public static void PipelineDepth(int d, string field)
    {
        if (!Contracts.PipelineDepth.IsValid(d))
        {
            throw Invalid(field, $"an integer in {Contracts.PipelineDepth.Range}");
        }
    }

    public static void AtLeast(long value, long min, string field)
    {
        if (value < min)
        {
            throw Invalid(field, string.Create(CultureInfo.InvariantCulture, $"an integer of at least {min}"));
        }
    }

    public static void NonNegative(double? value, string field)
    {
        if (value is { } v && !(v >= 0 && double.IsFinite(v)))
        {
            throw Invalid(field, "a non-negative number or null");
        }
    }

    public static void Rate(double? value, string field)
    {
        if (value is { } v && v is not (>= 0 and <= 1))
        {
            throw Invalid(field, "a rate in [0, 1]");
        }
    }

    /// <summary>Runs a nested record's checks, naming its fields under <paramref name="prefix"/>.</summary>
    public static void Within(string prefix, Action validate)
    {
        ArgumentNullException.ThrowIfNull(validate);
        try
        {
            validate();
        }
        catch (ContractException ex) when (ex.Field is { } field && !field.StartsWith(prefix + ".", StringComparison.Ordinal))
        {
            throw new ContractException(ex.Fault, ex.Message.Replace($"'{field}'", $"'{prefix}.{field}'", StringComparison.Ordinal), ex, $"{prefix}.{field}");
        }
    }
}
