using System.Text;
using System.Text.Json;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Interop;
using ConfigSpec.Profiling;
using ConfigSpec.Transport.Mqtt;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace ConfigSpec.Edge.Daemon;

/// <summary>Reading generation requests and writing their summaries through the contracts.</summary>
public static class GenerationMessages
{
    /// <summary>A request (at most <see cref="GenerationRequest.MaxPromptBytes"/> bytes), refused with the field at fault.</summary>
    public static GenerationRequest Parse(ReadOnlyMemory<byte> payload)
    {
        if (payload.Length > GenerationRequest.MaxPromptBytes)
        {
            throw new ContractException(ContractFault.InvalidField, $"request of {payload.Length} bytes exceeds {GenerationRequest.MaxPromptBytes}");
        }

        return Contract.Read<GenerationRequest>(payload);
    }

    /// <summary>The summary after the last token: text, counts, configuration, acceptance and timing.</summary>
    public static GenerationSummary Summary(GenerationReply reply, string? type = null, bool? done = null)
    {
        ArgumentNullException.ThrowIfNull(reply);
        var r = reply.Result;
        var accepted = r.AcceptedTokens;
        var verified = r.DraftedTokens - r.DiscardedTokens; // acceptance is of the drafts verified; discarded ones never were
        return new GenerationSummary(r.Text, r.Tokens.Count, r.PromptTokenCount, r.StopReason.ToString().ToLowerInvariant(), reply.Choice.Draft, reply.Choice.Quant,
            reply.Choice.K, reply.Choice.Source, reply.Policy, r.Rounds.Count > 0 ? Math.Round(r.Rounds.Average(x => x.Drafted), 3) : 0, r.Rounds.Count, r.DraftedTokens,
            accepted, verified > 0 ? Math.Round(accepted / (double)verified, 4) : 0, r.Rounds.Count > 0 ? Math.Round(r.Rounds.Average(x => x.Accepted), 4) : 0,
            Math.Round(r.WallSeconds, 5), Math.Round(r.TokensPerSecond, 3), Math.Round(r.DraftSeconds, 5), Math.Round(r.VerifySeconds, 5), reply.DraftJoules,
            reply.PowerEstimated, type, done, r.Pipeline, r.DiscardedTokens);
    }
}

/// <summary>The daemon's loopback HTTP API: POST /v1/generate (JSON, or NDJSON when streaming), GET /v1/status, /healthz.</summary>
public static class EdgeHttpApi
{
    public static void Map(IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet("/healthz", (EdgeServer server) => server.Unavailable is null ? Results.Text("serving\n") : Results.Text(server.Unavailable + "\n", statusCode: 503));
        app.MapGet("/v1/status", (EdgeServer server, EdgePublisher publisher, EdgeSettings settings) => Results.Text(Contract.Write(new EdgeStatus(
            settings.DeviceId, publisher.Board, publisher.State, publisher.Detail, server.Unavailable, publisher.Outbox.Pending, publisher.Outbox.Refused,
            publisher.Outbox.LastRefusal, server.Intake.Snapshot(), publisher.Client.IsConnected, server.Choice?.Config)), "application/json"));
        app.MapPost("/v1/generate", GenerateAsync);
    }

    private static async Task GenerateAsync(HttpContext context, EdgeServer server)
    {
        var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted).ConfigureAwait(false);
        GenerationRequest request;
        try
        {
            request = GenerationMessages.Parse(body.ToArray());
        }
        catch (ConfigSpecException ex)
        {
            server.Intake.Refuse(IntakeCounter.Name(DaemonInput.HttpGenerate), IntakeCounter.ReasonOf(ex));
            await Error(context, 400, ex.Message).ConfigureAwait(false);
            return;
        }

        var response = context.Response;
        try
        {
            if (request.Stream != true)
            {
                var reply = await server.GenerateAsync(request.Prompt, request.MaxTokens ?? GenerationRequest.DefaultMaxTokens, null, context.RequestAborted).ConfigureAwait(false);
                response.ContentType = "application/json";
                await response.WriteAsync(Contract.Write(GenerationMessages.Summary(reply)) + "\n", context.RequestAborted).ConfigureAwait(false);
                return;
            }

            // NDJSON: {"token": "..."} per accepted round, then {"done": true, ...summary}.
            var lines = System.Threading.Channels.Channel.CreateUnbounded<string>();
            var generation = server.GenerateAsync(request.Prompt, request.MaxTokens ?? GenerationRequest.DefaultMaxTokens,
                text => lines.Writer.TryWrite(Contract.Write(new GenerationToken(Token: text))), context.RequestAborted);
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
            await response.WriteAsync(Contract.Write(GenerationMessages.Summary(done, done: true)) + "\n", context.RequestAborted).ConfigureAwait(false);
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

        return context.Response.WriteAsync(Contract.Write(new ErrorReply(message)) + "\n", context.RequestAborted);
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
            request = GenerationMessages.Parse(message.Payload);
            replyTo ??= request.ReplyTo;
            if (replyTo is null)
            {
                throw new ConfigSpecException("no reply topic: set the MQTT 5 response topic or \"reply_to\"");
            }

            var topic = replyTo;
            var reply = await server.GenerateAsync(request.Prompt, request.MaxTokens ?? GenerationRequest.DefaultMaxTokens, request.Stream ?? true
                ? text => _ = client.PublishAsync(topic, Contract.WriteUtf8(new GenerationToken(Type: "token", Text: text)), 1, false, properties, CancellationToken.None)
                : null, cancellationToken).ConfigureAwait(false);
            await client.PublishAsync(topic, Contract.WriteUtf8(GenerationMessages.Summary(reply, type: "done")), 1, false, properties, cancellationToken).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // a generation request is outside input: whatever it causes is answered and logged, never escapes
        catch (Exception ex) when (ex is not OutOfMemoryException)
#pragma warning restore CA1031
        {
            // A busy or re-profiling board is not a bad request: only what the request itself caused is counted.
            if (ex is ServiceUnavailableException || server.Intake.Refuse(IntakeCounter.Name(DaemonInput.Generate), IntakeCounter.ReasonOf(ex)))
            {
                Log.Refused(logger, ex is ConfigSpecException or OperationCanceledException ? ex.Message : $"{ex.GetType().Name}: {ex.Message}");
            }
            if (replyTo is not null)
            {
                try
                {
                    await client.PublishAsync(replyTo, Contract.WriteUtf8(new ErrorReply(ex.Message, "error", ex is ServiceUnavailableException)), 1, false, properties,
                        CancellationToken.None).ConfigureAwait(false);
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
