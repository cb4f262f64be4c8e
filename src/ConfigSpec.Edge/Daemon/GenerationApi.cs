using System.Text;
using System.Text.Json;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Interop;
using ConfigSpec.Profiling;
using ConfigSpec.Transport.Mqtt;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace ConfigSpec.Edge.Daemon;

/// <summary>A generation request, the same over HTTP and MQTT: <c>{"prompt": "...", "max_tokens": 64, "stream": true}</c>.</summary>
public sealed record GenerationRequest(string Prompt, int MaxTokens, bool Stream, string? ReplyTo)
{
    public const int MaxPromptBytes = 64 * 1024;

    public static GenerationRequest Parse(ReadOnlySpan<byte> payload, bool streamByDefault)
    {
        if (payload.Length > MaxPromptBytes)
        {
            throw new ConfigSpecException($"request of {payload.Length} bytes exceeds {MaxPromptBytes}");
        }

        try
        {
            var reader = new Utf8JsonReader(payload);
            using var doc = JsonDocument.ParseValue(ref reader);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new ConfigSpecException("request must be a JSON object such as {\"prompt\": \"Once upon a time\", \"max_tokens\": 64}");
            }

            var prompt = root.TryGetProperty("prompt", out var p) && p.ValueKind == JsonValueKind.String && p.GetString() is { Length: > 0 } s
                ? s
                : throw new ConfigSpecException("field 'prompt' must be a non-empty string");
            var maxTokens = 64;
            if (root.TryGetProperty("max_tokens", out var m) && m.ValueKind != JsonValueKind.Null)
            {
                maxTokens = m.ValueKind == JsonValueKind.Number && m.TryGetInt32(out var v) && v > 0 ? v : throw new ConfigSpecException("field 'max_tokens' must be a positive integer");
            }

            var stream = root.TryGetProperty("stream", out var st) ? st.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw new ConfigSpecException("field 'stream' must be true or false"),
            } : streamByDefault;
            var replyTo = root.TryGetProperty("reply_to", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
            return new GenerationRequest(prompt, maxTokens, stream, replyTo);
        }
        catch (JsonException ex)
        {
            throw new ConfigSpecException($"request is not JSON: {ex.Message}", ex);
        }
        catch (InvalidOperationException ex)
        {
            // A string the reader cannot turn into text (an unpaired surrogate escape, say).
            throw new ConfigSpecException($"request holds a field that is not valid text: {ex.Message}", ex);
        }
    }

    /// <summary>The summary after the last token: text, counts, configuration, acceptance and timing.</summary>
    public static void WriteSummary(Utf8JsonWriter w, GenerationReply reply)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(reply);
        var r = reply.Result;
        w.WriteString("text", r.Text);
        w.WriteNumber("tokens", r.Tokens.Count);
        w.WriteNumber("prompt_tokens", r.PromptTokenCount);
        w.WriteString("stop", r.StopReason.ToString().ToLowerInvariant());
        w.WriteString("draft", reply.Choice.Draft);
        w.WriteString("quant", reply.Choice.Quant);
        w.WriteNumber("k", reply.Choice.K);
        w.WriteString("config_source", reply.Choice.Source);
        w.WriteString("k_policy", reply.Policy);
        w.WriteNumber("mean_k", r.Rounds.Count > 0 ? Math.Round(r.Rounds.Average(x => x.Drafted), 3) : 0);
        w.WriteNumber("rounds", r.Rounds.Count);
        w.WriteNumber("drafted", r.DraftedTokens);
        w.WriteNumber("accepted", r.Rounds.Sum(x => x.Accepted));
        w.WriteNumber("acceptance", r.DraftedTokens > 0 ? Math.Round(r.Rounds.Sum(x => x.Accepted) / (double)r.DraftedTokens, 4) : 0);
        w.WriteNumber("mean_accepted", r.Rounds.Count > 0 ? Math.Round(r.Rounds.Average(x => x.Accepted), 4) : 0);
        w.WriteNumber("wall_s", Math.Round(r.WallSeconds, 5));
        w.WriteNumber("tokens_per_s", Math.Round(r.TokensPerSecond, 3));
        w.WriteNumber("draft_s", Math.Round(r.DraftSeconds, 5));
        w.WriteNumber("verify_s", Math.Round(r.VerifySeconds, 5));
        w.WriteNumberOrNull("draft_joules", reply.DraftJoules);
        w.WriteBoolean("power_estimated", reply.PowerEstimated);
    }
}

/// <summary>The daemon's loopback HTTP API: POST /v1/generate (JSON, or NDJSON when streaming), GET /v1/status, /healthz.</summary>
public static class EdgeHttpApi
{
    public static void Map(IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet("/healthz", (EdgeServer server) => server.Unavailable is null ? Results.Text("serving\n") : Results.Text(server.Unavailable + "\n", statusCode: 503));
        app.MapGet("/v1/status", (EdgeServer server, EdgePublisher publisher, EdgeSettings settings) => Results.Text(FleetMessages.Json(w =>
        {
            w.WriteString("device_id", settings.DeviceId);
            w.WriteString("board", publisher.Board);
            w.WriteString("state", publisher.State);
            w.WriteString("detail", publisher.Detail);
            w.WriteString("unavailable", server.Unavailable);
            w.WriteNumber("outbox_pending", publisher.Outbox.Pending);
            w.WriteNumber("outbox_refused", publisher.Outbox.Refused); // dropped: the broker will never take them (an ACL)
            w.WriteString("outbox_last_refusal", publisher.Outbox.LastRefusal);
            server.Intake.Write(w, "intake_refused");
            w.WriteBoolean("broker_connected", publisher.Client.IsConnected);
            if (server.Choice is { } c)
            {
                c.Write(w, "config");
            }
            else
            {
                w.WriteNull("config");
            }
        }), "application/json"));
        app.MapPost("/v1/generate", GenerateAsync);
    }

    private static async Task GenerateAsync(HttpContext context, EdgeServer server)
    {
        var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted).ConfigureAwait(false);
        GenerationRequest request;
        try
        {
            request = GenerationRequest.Parse(body.ToArray(), streamByDefault: false);
        }
        catch (ConfigSpecException ex)
        {
            server.Intake.Refuse("http_generate", IntakeCounter.ReasonOf(ex));
            await Error(context, 400, ex.Message).ConfigureAwait(false);
            return;
        }

        var response = context.Response;
        try
        {
            if (!request.Stream)
            {
                var reply = await server.GenerateAsync(request.Prompt, request.MaxTokens, null, context.RequestAborted).ConfigureAwait(false);
                response.ContentType = "application/json";
                await response.WriteAsync(FleetMessages.Json(w => GenerationRequest.WriteSummary(w, reply)) + "\n", context.RequestAborted).ConfigureAwait(false);
                return;
            }

            // NDJSON: {"token": "..."} per accepted round, then {"done": true, ...summary}.
            var lines = System.Threading.Channels.Channel.CreateUnbounded<string>();
            var generation = server.GenerateAsync(request.Prompt, request.MaxTokens,
                text => lines.Writer.TryWrite(FleetMessages.Json(w => w.WriteString("token", text))), context.RequestAborted);
            _ = generation.ContinueWith(_ => lines.Writer.TryComplete(), TaskScheduler.Default);
            var started = false;
            await foreach (var line in lines.Reader.ReadAllAsync(context.RequestAborted).ConfigureAwait(false))
            {
                if (!started)
                {
                    response.ContentType = "application/x-ndjson";
                    started = true;
                }

                await response.WriteAsync(line + "\n", context.RequestAborted).ConfigureAwait(false);
                await response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
            }

            var done = await generation.ConfigureAwait(false);
            response.ContentType ??= "application/x-ndjson";
            await response.WriteAsync(FleetMessages.Json(w =>
            {
                w.WriteBoolean("done", true);
                GenerationRequest.WriteSummary(w, done);
            }) + "\n", context.RequestAborted).ConfigureAwait(false);
        }
        catch (ServiceUnavailableException ex)
        {
            context.Response.Headers.RetryAfter = "10";
            await Error(context, 503, ex.Message).ConfigureAwait(false);
        }
        catch (ConfigSpecException ex)
        {
            await Error(context, response.HasStarted ? 200 : 400, ex.Message).ConfigureAwait(false);
        }
    }

    private static Task Error(HttpContext context, int status, string message)
    {
        if (!context.Response.HasStarted)
        {
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json";
        }

        return context.Response.WriteAsync(FleetMessages.Json(w => w.WriteString("error", message)) + "\n", context.RequestAborted);
    }
}

/// <summary>MQTT request/response generation on <c>configspec/v1/edge/{id}/generate</c> (MQTT 5 response topic and correlation data, or "reply_to").</summary>
internal static partial class MqttGeneration
{
    public static async Task HandleAsync(MqttMessage message, EdgeServer server, MqttClient client, ILogger logger, CancellationToken cancellationToken)
    {
        GenerationRequest? request = null;
        string? replyTo = message.ResponseTopic;
        var properties = new MqttPublishProperties(CorrelationData: message.CorrelationData);
        try
        {
            request = GenerationRequest.Parse(message.Payload, streamByDefault: true);
            replyTo ??= request.ReplyTo;
            if (replyTo is null)
            {
                throw new ConfigSpecException("no reply topic: set the MQTT 5 response topic or \"reply_to\"");
            }

            var topic = replyTo;
            var reply = await server.GenerateAsync(request.Prompt, request.MaxTokens, request.Stream
                ? text => _ = client.PublishAsync(topic, Encoding.UTF8.GetBytes(FleetMessages.Json(w =>
                {
                    w.WriteString("type", "token");
                    w.WriteString("text", text);
                })), 1, false, properties, CancellationToken.None)
                : null, cancellationToken).ConfigureAwait(false);
            await client.PublishAsync(topic, Encoding.UTF8.GetBytes(FleetMessages.Json(w =>
            {
                w.WriteString("type", "done");
                GenerationRequest.WriteSummary(w, reply);
            })), 1, false, properties, cancellationToken).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // a generation request is outside input: whatever it causes is answered and logged, never escapes
        catch (Exception ex) when (ex is not OutOfMemoryException)
#pragma warning restore CA1031
        {
            // A busy or re-profiling board is not a bad request: only what the request itself caused is counted.
            if (ex is ServiceUnavailableException || server.Intake.Refuse("generate", IntakeCounter.ReasonOf(ex)))
            {
                Log.Refused(logger, ex is ConfigSpecException or OperationCanceledException ? ex.Message : $"{ex.GetType().Name}: {ex.Message}");
            }
            if (replyTo is not null)
            {
                try
                {
                    await client.PublishAsync(replyTo, Encoding.UTF8.GetBytes(FleetMessages.Json(w =>
                    {
                        w.WriteString("type", "error");
                        w.WriteString("error", ex.Message);
                        w.WriteBoolean("retry", ex is ServiceUnavailableException);
                    })), 1, false, properties, CancellationToken.None).ConfigureAwait(false);
                }
                catch (MqttException)
                {
                    // the broker is away: nothing more to tell
                }
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 30, Level = LogLevel.Warning, Message = "MQTT generation refused: {Reason}")]
        public static partial void Refused(ILogger logger, string reason);
    }
}
