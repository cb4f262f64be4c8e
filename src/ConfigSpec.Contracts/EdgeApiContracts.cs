using System.Text.Json.Serialization;

namespace ConfigSpec.Contracts;

/// <summary>
/// A generation request, the same over HTTP (<c>POST /v1/generate</c>) and MQTT (<c>.../generate</c>):
/// <c>{"prompt": "...", "max_tokens": 64, "stream": true}</c>; <c>reply_to</c> names the MQTT reply topic when the
/// request has no MQTT 5 response topic.
/// </summary>
public sealed record GenerationRequest(string Prompt, int? MaxTokens = null, bool? Stream = null, string? ReplyTo = null) : IContract
{
    public const int DefaultMaxTokens = 64;

    public const int MaxPromptBytes = 64 * 1024;

    public void Validate()
    {
        if (Prompt.Length == 0)
        {
            throw Check.Invalid("prompt", "a non-empty string");
        }

        if (MaxTokens is < 1)
        {
            throw Check.Invalid("max_tokens", "a positive integer");
        }

        Check.Text(ReplyTo, "reply_to");
    }
}

/// <summary>The summary after a generation's last token: text, counts, configuration, acceptance and timing.</summary>
/// <param name="Done">True on the last line of an HTTP stream (absent otherwise).</param>
/// <param name="Type"><c>done</c> on MQTT (absent over HTTP).</param>
/// <param name="Drafted">Every token the board drafted, those discarded after a cut in a pipeline included; acceptance is
/// of the drafts verified (<c>drafted</c> − <c>discarded_tokens</c>).</param>
/// <param name="Pipeline">The most blocks that were in flight at once (1: sequential rounds).</param>
public sealed record GenerationSummary(
    string Text, int Tokens, int PromptTokens, string Stop, string Draft, string Quant, int K, string ConfigSource, string? KPolicy, double MeanK, int Rounds,
    int Drafted, int Accepted, double Acceptance, double MeanAccepted, [property: JsonPropertyName("wall_s")] double WallSeconds,
    double TokensPerS, [property: JsonPropertyName("draft_s")] double DraftSeconds, [property: JsonPropertyName("verify_s")] double VerifySeconds,
    double? DraftJoules, bool PowerEstimated,
    [property: JsonPropertyOrder(-2), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Type = null,
    [property: JsonPropertyOrder(-1), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? Done = null, int Pipeline = 1, int DiscardedTokens = 0) : IContract
{
    public void Validate()
    {
        Check.AtLeast(Tokens, 0, "tokens");
        Check.Rate(Acceptance, "acceptance");
    }
}

/// <summary>One streamed piece of a generation: HTTP NDJSON <c>{"token": "..."}</c>; MQTT <c>{"type": "token", "text": "..."}</c>.</summary>
public sealed record GenerationToken(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Token = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Type = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Text = null) : IContract
{
    public void Validate() { }
}

/// <summary>A refused or failed request: HTTP <c>{"error": "..."}</c>; MQTT <c>{"type": "error", "error": "...", "retry": false}</c>.</summary>
/// <param name="Retry">True when the board is busy (profiling, starting): the same request may succeed later.</param>
public sealed record ErrorReply(
    string Error,
    [property: JsonPropertyOrder(-1), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Type = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? Retry = null) : IContract
{
    public void Validate() => Check.Present(Error, "error");
}

/// <summary>What a service refused on one input (a topic kind or an HTTP route): the total and the count per reason.</summary>
public sealed record IntakeCounts(long Total, IReadOnlyDictionary<string, long> ByReason);

/// <summary>The daemon's <c>GET /v1/status</c>.</summary>
/// <param name="OutboxRefused">Messages the broker refused (an ACL) and the outbox dropped.</param>
public sealed record EdgeStatus(
    string DeviceId, string Board, BoardState State, string? Detail, string? Unavailable, int OutboxPending, long OutboxRefused, string? OutboxLastRefusal,
    IReadOnlyDictionary<string, IntakeCounts> IntakeRefused, bool BrokerConnected, ServedConfig? Config) : IContract
{
    public void Validate() => Config?.Validate();
}

/// <summary>A verifier replica's state, retained on <c>configspec/v1/verifier/{instance}/status</c> (<c>online</c>, <c>offline</c> as its last will).</summary>
public sealed record VerifierStatus(string State, string Instance, string Target, DateTimeOffset Time) : IContract
{
    public void Validate()
    {
        Check.Text(State, "state");
        Check.Text(Instance, "instance");
        Check.Text(Target, "target");
    }
}

/// <summary>One line of a prompts file in the Dolly 15K schema (its other members, such as <c>response</c>, are skipped).</summary>
public sealed record PromptLine(string Instruction, string? Context = null, string? Category = null) : IContract
{
    public void Validate()
    {
        if (Instruction.Trim().Length == 0)
        {
            throw Check.Invalid("instruction", "a non-empty string");
        }
    }
}

/// <summary>A verifier's <c>GET /healthz</c>: <c>ok</c> (HTTP 200) while it is connected to the broker, else
/// <c>broker_disconnected</c> (HTTP 503); its open sessions and decode calls so far.</summary>
public sealed record VerifierHealth(string State, string Instance, string Target, bool BrokerConnected, int Sessions, long DecodeCalls) : IContract
{
    public void Validate()
    {
        Check.Text(State, "state");
        Check.Text(Instance, "instance");
        Check.Text(Target, "target");
    }
}

/// <summary>Generated sources for every contract (no reflection: native-AOT clean).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    NumberHandling = JsonNumberHandling.Strict,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true,
    AllowDuplicateProperties = false,
    MaxDepth = 32)]
[JsonSerializable(typeof(MessageHeader))]
[JsonSerializable(typeof(StatusMessage))]
[JsonSerializable(typeof(ServedConfig))]
[JsonSerializable(typeof(MetricsMessage))]
[JsonSerializable(typeof(CommandMessage))]
[JsonSerializable(typeof(CommandResult))]
[JsonSerializable(typeof(RecommendationMessage))]
[JsonSerializable(typeof(ProfileMessage))]
[JsonSerializable(typeof(SavedChoice))]
[JsonSerializable(typeof(GenerationRequest))]
[JsonSerializable(typeof(GenerationSummary))]
[JsonSerializable(typeof(GenerationToken))]
[JsonSerializable(typeof(ErrorReply))]
[JsonSerializable(typeof(EdgeStatus))]
[JsonSerializable(typeof(RankedRow))]
[JsonSerializable(typeof(VerifierStatus))]
[JsonSerializable(typeof(VerifierHealth))]
[JsonSerializable(typeof(PromptLine))]
[JsonSerializable(typeof(ProfileDocument))]
[JsonSerializable(typeof(AggregatorHealth))]
[JsonSerializable(typeof(ApiVersion))]
[JsonSerializable(typeof(FleetDevices))]
[JsonSerializable(typeof(FleetDeviceDetail))]
[JsonSerializable(typeof(FleetRankings))]
[JsonSerializable(typeof(SystemReport))]
[JsonSerializable(typeof(PowerReport))]
[JsonSerializable(typeof(GenerationReport))]
[JsonSerializable(typeof(SelectionReport))]
[JsonSerializable(typeof(ValidationReport))]
[JsonSerializable(typeof(PolicyBenchReport))]
[JsonSerializable(typeof(ModelReport))]
[JsonSerializable(typeof(DiscoverySensor))]
[JsonSerializable(typeof(RecommendedConfig))]
internal sealed partial class ContractsJsonContext : JsonSerializerContext;
