using System.CommandLine;
using ConfigSpec.Aggregator.Ingest;
using ConfigSpec.Aggregator.Storage;
using ConfigSpec.Aggregator.Web;
using ConfigSpec.Fleet;
using ConfigSpec.Interop;
using ConfigSpec.Transport.Mqtt;
using Microsoft.AspNetCore.Builder;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ConfigSpec.Aggregator;

/// <summary>The aggregator's settings (validated at start; each error names the option).</summary>
public sealed record AggregatorOptions
{
    public required MqttClientOptions Broker { get; init; }

    public required string Database { get; init; }

    /// <summary>Where the API and dashboard listen, e.g. http://127.0.0.1:8090 (port 0 = any free port).</summary>
    public string Http { get; init; } = "http://127.0.0.1:8090";

    /// <summary>How long the broker keeps the aggregator's session, queueing the fleet's messages, while it is away.</summary>
    public TimeSpan SessionExpiry { get; init; } = TimeSpan.FromDays(7);
}

/// <summary>Builds and runs configspec-aggregator: MQTT ingest into SQLite, ranking, retained recommendations, HTTP API and dashboard.</summary>
public static class AggregatorApp
{
    public static WebApplication Build(AggregatorOptions options, Action<ILoggingBuilder>? logging = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!Uri.TryCreate(options.Http, UriKind.Absolute, out var http) || http.Scheme != "http")
        {
            throw new ConfigSpecException($"--http '{options.Http}' must be http://HOST:PORT");
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(options.Http);
        ServiceLogging.Configure(builder.Logging);
        logging?.Invoke(builder.Logging);
        var store = new FleetStore(options.Database);
        var state = new FleetState();
        // A persistent MQTT 5 session (clean start false, a session expiry): what boards publish while the aggregator
        // restarts waits on the broker, and is stored once by its seq.
        var client = new MqttClient(options.Broker with { PersistentSession = true, SessionExpiry = options.SessionExpiry });
        client.ConnectionChanged += connected => state.BrokerConnected = connected;
        builder.Services.AddSingleton(store);
        builder.Services.AddSingleton(state);
        builder.Services.AddSingleton(client);
        builder.Services.AddHostedService<BrokerConnection>();
        builder.Services.AddHostedService<FleetIngestor>();
        builder.Services.AddHostedService<RecommendationPublisher>();
        builder.Services.AddOpenTelemetry().ConfigureResource(resource => resource.AddService("configspec-aggregator", serviceVersion: ProductInfo.Version))
            .WithMetrics(metrics => metrics.AddMeter(Metrics.AggregatorMetrics.MeterName).AddPrometheusExporter());
        var app = builder.Build();
        FleetApi.Map(app);
        app.MapPrometheusScrapingEndpoint(); // GET /metrics
        return app;
    }

    /// <summary>The address the API listens on once started (resolves port 0).</summary>
    public static string Address(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
    }

    private static Command BenchCommand(TextWriter output)
    {
        var broker = new Option<string>("--broker") { Description = "MQTT broker to load (use a private one)", Required = true };
        var devices = new Option<int>("--devices") { Description = "simulated boards", DefaultValueFactory = _ => 1000 };
        var connections = new Option<int>("--connections") { Description = "MQTT connections the boards share", DefaultValueFactory = _ => 20 };
        var seconds = new Option<double>("--seconds") { Description = "length of the load", DefaultValueFactory = _ => 20 };
        var models = new Option<int>("--board-models") { Description = "board models among the devices", DefaultValueFactory = _ => 3 };
        var db = new Option<string?>("--db") { Description = "SQLite file (default: a fresh temporary one)" };
        var rate = new Option<double>("--rate") { Description = "metrics per device per second (0 = as fast as the broker acknowledges)" };
        var command = new Command("bench", "ingest rate from simulated boards over MQTT and API latency under that load")
        {
            broker, devices, connections, seconds, models, db, rate,
        };
        command.SetAction(async (parse, token) =>
        {
            var n = parse.GetValue(devices);
            var c = parse.GetValue(connections);
            if (n < 1 || c < 1 || c > n)
            {
                throw new ConfigSpecException("--devices and --connections must be positive, with no more connections than devices");
            }

            var path = parse.GetValue(db) ?? Path.Combine(Path.GetTempPath(), $"configspec-bench-{Guid.NewGuid():N}.db");
            await Bench.IngestBench.RunAsync(new Bench.IngestBenchOptions(MqttClientOptions.ParseBroker(parse.GetValue(broker)!, "--broker"), n, c,
                TimeSpan.FromSeconds(parse.GetValue(seconds)), Math.Max(1, parse.GetValue(models)), path, Math.Max(0, parse.GetValue(rate))), output, token).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var broker = new Option<string>("--broker") { Description = "MQTT broker, mqtt://HOST[:PORT] or mqtts://HOST[:PORT]", DefaultValueFactory = _ => "mqtt://127.0.0.1:1883" };
        var db = new Option<string>("--db")
        {
            Description = "the fleet database: a SQLite file, or a PostgreSQL connection string \"Host=H;Database=D;Username=U\" (password from PGPASSWORD or ~/.pgpass); default $CONFIGSPEC_DB, else configspec-fleet.db",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("CONFIGSPEC_DB") is { Length: > 0 } fromEnvironment ? fromEnvironment : "configspec-fleet.db",
        };
        var httpUrl = new Option<string>("--http") { Description = "API and dashboard address (loopback by default; put a TLS proxy in front to expose it)", DefaultValueFactory = _ => "http://127.0.0.1:8090" };
        var username = new Option<string?>("--username") { Description = "MQTT user name" };
        var password = new Option<string?>("--password") { Description = $"MQTT password (or {MqttClientOptions.PasswordVariable})" };
        var caFile = new Option<string?>("--ca-file") { Description = "CA certificate for mqtts://" };
        var certFile = new Option<string?>("--cert-file") { Description = "client certificate for mqtts://" };
        var keyFile = new Option<string?>("--key-file") { Description = "client key for mqtts://" };
        var clientId = new Option<string>("--client-id")
        {
            Description = "MQTT client id; the broker keeps this id's session (and queues the fleet's messages) while the aggregator restarts",
            DefaultValueFactory = _ => "configspec-aggregator",
        };
        var sessionHours = new Option<double>("--session-hours")
        {
            Description = "how long the broker keeps the aggregator's session and queues the fleet's messages while it is away",
            DefaultValueFactory = _ => 168,
        };
        var root = new RootCommand("ConfigSpec aggregator: stores what the fleet publishes, ranks configurations per board model, recommends, serves a dashboard")
        {
            broker, db, httpUrl, username, password, caFile, certFile, keyFile, clientId, sessionHours,
        };
        root.SetAction(async (parse, token) =>
        {
            var options = new AggregatorOptions
            {
                Broker = MqttClientOptions.FromSettings(parse.GetValue(broker)!, "--broker", parse.GetValue(username), parse.GetValue(password),
                    parse.GetValue(caFile), parse.GetValue(certFile), parse.GetValue(keyFile)) with { ClientId = parse.GetValue(clientId)! },
                Database = parse.GetValue(db)!,
                Http = parse.GetValue(httpUrl)!,
                SessionExpiry = parse.GetValue(sessionHours) is var hours && hours is > 0 and <= 24 * 365 * 10
                    ? TimeSpan.FromHours(hours)
                    : throw new ConfigSpecException($"--session-hours {hours.ToString(System.Globalization.CultureInfo.InvariantCulture)} must be more than 0 and at most ten years"),
            };
            await using var app = Build(options);
            await app.StartAsync(token).ConfigureAwait(false);
            await output.WriteLineAsync($"configspec-aggregator: dashboard and API on {Address(app)}, database {app.Services.GetRequiredService<FleetStore>().Description}").ConfigureAwait(false);
            await output.FlushAsync(token).ConfigureAwait(false);
            await app.WaitForShutdownAsync(token).ConfigureAwait(false);
            return 0;
        });

        root.Subcommands.Add(BenchCommand(output));
        var parsed = root.Parse(args);
        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false }, cancellationToken)
                .ConfigureAwait(false);
        }
        catch (ConfigSpecException ex)
        {
            await error.WriteLineAsync($"configspec-aggregator: error: {ex.CommandLineMessage.ReplaceLineEndings(" ")}").ConfigureAwait(false);
            return 2;
        }
        catch (IOException ex) when (ex.InnerException is System.Net.Sockets.SocketException)
        {
            await error.WriteLineAsync($"configspec-aggregator: error: --http: {ex.Message}").ConfigureAwait(false);
            return 2;
        }
    }
}

/// <summary>Connects the shared MQTT client at start (it reconnects by itself) and disconnects at stop.</summary>
internal sealed class BrokerConnection(MqttClient client, FleetState state) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await client.ConnectAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (MqttException)
        {
            // The network thread keeps retrying; /api/health shows broker_connected false until then.
        }

        state.BrokerConnected = client.IsConnected;
    }

    public async Task StopAsync(CancellationToken cancellationToken) => await client.DisposeAsync().ConfigureAwait(false);
}
