using ConfigSpec.Contracts;
using System.CommandLine;
using ConfigSpec.Interop;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Remote;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace ConfigSpec.Verifier;

/// <summary>configspec-verifier: hosts the target model and verifies drafts for many boards over MQTT.</summary>
public static class VerifierCli
{
    private static void AddVerifier(IHostApplicationBuilder builder, VerifierEngine engine, MqttClientOptions broker, string target)
    {
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning); // not a line per scrape
        builder.Services.AddSingleton(engine);
        builder.Services.AddSingleton(services => new MqttVerifierServer(engine, broker, target,
            services.GetRequiredService<ILoggerFactory>().CreateLogger("configspec-verifier")));
        builder.Services.AddHostedService<VerifierService>();
    }

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var model = new Option<string>("--model") { Description = "target GGUF model", Required = true };
        var targetId = new Option<string?>("--target-id") { Description = "target id boards ask for (default: the model file name without extension)" };
        var broker = new Option<string>("--broker") { Description = "MQTT broker, mqtt://HOST[:PORT] or mqtts://HOST[:PORT]", DefaultValueFactory = _ => "mqtt://127.0.0.1:1883" };
        var instance = new Option<string?>("--instance-id") { Description = "this replica's id (default: verifier-<host>-<random>)" };
        var threads = new Option<int>("--threads") { Description = "decode threads", DefaultValueFactory = _ => 1 };
        var gpuLayers = new Option<int>("--gpu-layers") { Description = "layers offloaded to a GPU backend (-1 = all)" };
        var maxSessions = new Option<int>("--max-sessions") { Description = "sessions held at once (least recently used evicted past this)", DefaultValueFactory = _ => 16 };
        var window = new Option<double>("--batch-window-ms") { Description = "how long a round waits for others to share its decode call", DefaultValueFactory = _ => 2 };
        var maxBatch = new Option<int>("--max-batch") { Description = "most rounds per decode call (1 = no batching across boards)", DefaultValueFactory = _ => 64 };
        var maxDraft = new Option<int>("--max-draft") { Description = "largest draft block accepted", DefaultValueFactory = _ => DraftLength.Max };
        var maxPipeline = new Option<int>("--max-pipeline")
        {
            Description = "most blocks a board may have in flight per session (pipelined speculation; 1 = sequential rounds only)",
            DefaultValueFactory = _ => 8,
        };
        var ctx = new Option<int>("--ctx") { Description = "context length per session", DefaultValueFactory = _ => 512 };
        var llamaDir = new Option<string?>("--llama-dir") { Description = $"folder of the llama.cpp libraries (default: ${LlamaLibraryResolver.EnvironmentVariable}, then beside the program)" };
        var username = new Option<string?>("--username") { Description = "MQTT user name" };
        var password = new Option<string?>("--password") { Description = $"MQTT password (or {MqttClientOptions.PasswordVariable})" };
        var caFile = new Option<string?>("--ca-file") { Description = "CA certificate for mqtts://" };
        var certFile = new Option<string?>("--cert-file") { Description = "client certificate for mqtts://" };
        var keyFile = new Option<string?>("--key-file") { Description = "client key for mqtts://" };
        var http = new Option<string?>("--http") { Description = "serve GET /metrics (Prometheus text) and GET /healthz on http://HOST:PORT, e.g. http://127.0.0.1:9464 (default: no HTTP)" };
        var root = new RootCommand("ConfigSpec verifier: the target model behind MQTT, verifying drafts from many boards")
        {
            model, targetId, broker, instance, threads, gpuLayers, maxSessions, window, maxBatch, maxDraft, maxPipeline, ctx, llamaDir, username, password, caFile, certFile, keyFile, http,
        };
        root.SetAction(async (parse, token) =>
        {
            var modelPath = parse.GetValue(model)!;
            var target = parse.GetValue(targetId) ?? Path.GetFileNameWithoutExtension(modelPath);
            var instanceId = parse.GetValue(instance) ?? $"verifier-{Environment.MachineName}-{Guid.NewGuid().ToString("N")[..6]}";
            var brokerOptions = MqttClientOptions.FromSettings(parse.GetValue(broker)!, "--broker", parse.GetValue(username), parse.GetValue(password),
                parse.GetValue(caFile), parse.GetValue(certFile), parse.GetValue(keyFile));
            var verifierOptions = new VerifierOptions
            {
                ContextLength = parse.GetValue(ctx),
                MaxSessions = parse.GetValue(maxSessions),
                BatchWindow = TimeSpan.FromMilliseconds(parse.GetValue(window)),
                MaxDraftLength = parse.GetValue(maxDraft),
                MaxBatchRounds = parse.GetValue(maxBatch),
                MaxPipeline = parse.GetValue(maxPipeline),
                Threads = parse.GetValue(threads),
                InstanceId = instanceId,
            };
            verifierOptions.Validate();

            var httpAddress = parse.GetValue(http);
            if (httpAddress is { Length: > 0 } && !(Uri.TryCreate(httpAddress, UriKind.Absolute, out var httpUri) && httpUri.Scheme == "http"))
            {
                throw new SettingException("http", $"'{httpAddress}' must be http://HOST:PORT (e.g. http://127.0.0.1:9464)");
            }

            using var targetModel = LlamaModel.Load(modelPath, new LlamaModelOptions { GpuLayers = parse.GetValue(gpuLayers) },
                new LlamaRuntimeOptions { LibraryDirectory = parse.GetValue(llamaDir) });
            await using var engine = new VerifierEngine(targetModel, verifierOptions);
            if (httpAddress is { Length: > 0 })
            {
                var web = WebApplication.CreateSlimBuilder();
                web.WebHost.UseUrls(httpAddress);
                AddVerifier(web, engine, brokerOptions, target);
                web.Services.AddOpenTelemetry()
                    .ConfigureResource(resource => resource.AddService("configspec-verifier", serviceInstanceId: instanceId, serviceVersion: ProductInfo.Version))
                    .WithMetrics(metrics => metrics.AddMeter(VerifierMetrics.MeterName).AddPrometheusExporter());
                await using var app = web.Build();
                app.MapPrometheusScrapingEndpoint(); // GET /metrics
                var server = app.Services.GetRequiredService<MqttVerifierServer>();
                app.MapGet("/healthz", () =>
                {
                    var health = new VerifierHealth(server.Connected ? "ok" : "broker_disconnected", instanceId, target, server.Connected,
                        engine.SessionCount, engine.DecodeCalls);
                    return Results.Text(Contract.Write(health), "application/json", statusCode: server.Connected ? 200 : 503);
                });
                try
                {
                    await app.RunAsync(token).ConfigureAwait(false);
                }
                catch (IOException ex)
                {
                    throw new SettingException("http", $"cannot listen on {httpAddress}: {ex.Message}");
                }
            }
            else
            {
                var builder = Host.CreateApplicationBuilder();
                AddVerifier(builder, engine, brokerOptions, target);
                using var host = builder.Build();
                await host.RunAsync(token).ConfigureAwait(false);
            }

            return 0;
        });

        var parse = root.Parse(args);
        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false }, cancellationToken)
                .ConfigureAwait(false);
        }
        catch (ConfigSpecException ex)
        {
            await error.WriteLineAsync($"configspec-verifier: error: {ex.CommandLineMessage.ReplaceLineEndings(" ")}").ConfigureAwait(false);
            return 2;
        }
    }
}

/// <summary>Runs the MQTT server for the host's lifetime; on stop it tells open sessions and publishes offline.</summary>
internal sealed class VerifierService(MqttVerifierServer server, VerifierEngine engine) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => server.StartAsync(cancellationToken);

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await server.DisposeAsync().ConfigureAwait(false);
        await engine.DisposeAsync().ConfigureAwait(false);
    }
}
