using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using System.CommandLine;
using ConfigSpec.Board;
using ConfigSpec.Edge.Daemon;
using ConfigSpec.Fleet;
using ConfigSpec.Fleet.Systemd;
using ConfigSpec.Profiling.Profiles;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ConfigSpec.Edge.Cli;

/// <summary><c>run</c>: the board daemon (systemd Type=notify service): profile, select, serve, publish.</summary>
internal static class RunCommand
{
    public static Command Create(TextWriter output)
    {
        var config = new Option<string?>("--config") { Description = $"settings file (default: {EdgeSettings.DefaultConfigPath} when it exists)" };
        var set = new Option<string[]>("--set") { Description = "override a setting, key=value (sections joined by ':'), repeatable", AllowMultipleArgumentsPerToken = false };
        var check = new Option<bool>("--check") { Description = "validate the settings, print them and exit" };
        var command = new Command("run", "run the board daemon: profile or adopt the fleet's choice, select, serve over HTTP and MQTT, publish status, profile, configuration and metrics")
        {
            config, set, check,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var settings = EdgeSettings.Load(parse.GetValue(config), parse.GetValue(set) ?? []);
            if (parse.GetValue(check))
            {
                output.WriteLine($"settings valid: device {settings.DeviceId}, board {settings.Board ?? DeviceIdentity.Board()}, state {settings.StateDirectory}, broker {settings.Broker.Broker}, {settings.Drafts.Count} draft(s), objective {EdgeDaemon.Name(settings.Objective)}, http {(settings.Http.Length == 0 ? "off" : settings.Http)}");
                return EdgeCli.ExitOk;
            }

            await RunAsync(settings, output, cancellationToken).ConfigureAwait(false);
            return Environment.ExitCode == 0 ? EdgeCli.ExitOk : EdgeCli.ExitUnexpected; // the daemon gave up: let systemd restart it
        });
        return command;
    }

    public static async Task RunAsync(EdgeSettings settings, TextWriter output, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(settings.StateDirectory);
        await using var power = await PowerSession.StartAsync(settings.Power, $"{settings.PowerInterval.TotalMilliseconds}ms", settings.IdleBaseline, cancellationToken)
            .ConfigureAwait(false);
        var notifier = new ServiceNotifier();
        await using var app = Build(settings, power, notifier);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var listening = settings.Http.Length == 0 ? "no HTTP" : string.Join(", ", app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses);
        notifier.Ready($"started; HTTP {listening}");
        await output.WriteLineAsync($"configspec-edge: device {settings.DeviceId} running; {listening}; state in {settings.StateDirectory}").ConfigureAwait(false);
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        var daemon = app.Services.GetRequiredService<EdgeDaemon>();
        using var watchdog = notifier.WatchdogInterval is { } interval
            ? new Timer(_ =>
            {
                if (daemon.Alive)
                {
                    notifier.Watchdog();
                }
            }, null, TimeSpan.Zero, interval / 2)
            : null;
        await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
    }

    internal static WebApplication Build(EdgeSettings settings, PowerSession? power, ServiceNotifier notifier)
    {
        var builder = WebApplication.CreateSlimBuilder();
        ServiceLogging.Configure(builder.Logging);
        if (settings.Http.StartsWith("unix:", StringComparison.Ordinal))
        {
            var socket = settings.Http["unix:".Length..];
            File.Delete(socket);
            builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(socket));
        }
        else if (settings.Http.Length > 0)
        {
            builder.WebHost.UseUrls(settings.Http);
        }

        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));
        var board = settings.Board ?? DeviceIdentity.Board();
        var publisher = new EdgePublisher(settings, board);
        var server = new EdgeServer(settings, power);
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton(publisher);
        builder.Services.AddSingleton(server);
        builder.Services.AddSingleton(notifier);
        builder.Services.AddSingleton<EdgeDaemon>();
        builder.Services.AddHostedService(s => s.GetRequiredService<EdgeDaemon>());
        EdgeMetrics.Bind(server, publisher);
        if (settings.Http.Length > 0)
        {
            builder.Services.AddOpenTelemetry()
                .ConfigureResource(resource => resource.AddService("configspec-edge", serviceInstanceId: settings.DeviceId, serviceVersion: ProductInfo.Version))
                .WithMetrics(metrics => metrics.AddMeter(EdgeMetrics.MeterName).AddPrometheusExporter());
        }

        var app = builder.Build();
        if (settings.Http.Length > 0)
        {
            EdgeHttpApi.Map(app);
            app.MapPrometheusScrapingEndpoint(); // GET /metrics
        }
        else
        {
            app.Urls.Clear();
        }

        return app;
    }
}
