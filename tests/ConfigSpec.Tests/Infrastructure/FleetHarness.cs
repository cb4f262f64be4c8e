using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ConfigSpec.Aggregator;
using ConfigSpec.Transport.Mqtt;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace ConfigSpec.Tests.Infrastructure;

/// <summary>Pieces of a fleet for tests: an aggregator in this process, edge daemons as child processes, polling helpers.</summary>
public static class FleetHarness
{
    public static async Task<(WebApplication App, string Url)> StartAggregatorAsync(Uri broker, string db, string? clientId = null)
    {
        var app = AggregatorApp.Build(new AggregatorOptions
        {
            Broker = new MqttClientOptions { Broker = broker, ClientId = clientId ?? "aggregator-" + Guid.NewGuid().ToString("N")[..6], ReconnectDelay = TimeSpan.FromSeconds(1), ReconnectDelayMax = TimeSpan.FromSeconds(1) },
            Database = db,
            Http = "http://127.0.0.1:0",
        }, logging => logging.SetMinimumLevel(LogLevel.Warning));
        await app.StartAsync();
        return (app, AggregatorApp.Address(app).TrimEnd('/') + "/");
    }

    /// <summary>Writes a daemon settings file for the shipped models (small profiling budget) and returns its path.</summary>
    /// <param name="verifier">The verifier section's contents (default: the remote stories260K target).</param>
    /// <param name="profile">The profile section's contents (default: a small profiling budget).</param>
    public static string DaemonConfig(string dir, string deviceId, Uri broker, string board, string[] drafts, int httpPort, string extra = "", bool adopt = true,
        double metricsInterval = 1, string verifier = "\"target_id\": \"stories260K\"",
        string profile = "\"max_rounds\": 24, \"min_rounds\": 12, \"timing_rounds\": 2, \"tokens_per_prompt\": 24, \"idle_baseline\": \"0s\"", string? llamaDir = null)
    {
        var json = $$"""
            {
              "device_id": "{{deviceId}}", "board": "{{board}}", "state_dir": "{{Path.Combine(dir, "state")}}",
              "broker": {"url": "{{broker}}"}, "verifier": { {{verifier}} },
              "drafts": [{{string.Join(", ", drafts.Select(d => $"\"{TestEnvironment.Model(d)}\""))}}],
              "power": "estimate:board=rpi5", "k_max": 4, "http": "http://127.0.0.1:{{httpPort}}", "metrics_interval_s": {{metricsInterval.ToString(CultureInfo.InvariantCulture)}},
              "llama_dir": "{{llamaDir ?? TestEnvironment.LlamaDirectory}}",
              "profile": { {{profile}} },
              "fleet": {"wait_s": 2, "adopt": {{(adopt ? "true" : "false")}}} {{extra}}
            }
            """;
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "edge.json");
        File.WriteAllText(path, json);
        return path;
    }

    public static ProductProcess StartDaemon(string config, IReadOnlyDictionary<string, string>? environment = null) =>
        new("ConfigSpec.Edge", "configspec-edge.dll", ["run", "--config", config], environment);

    public static async Task<JsonElement> GetJsonAsync(HttpClient http, string url)
    {
        ArgumentNullException.ThrowIfNull(http);
        using var doc = JsonDocument.Parse(await http.GetStringAsync(new Uri(url)));
        return doc.RootElement.Clone();
    }

    /// <summary>Polls until <paramref name="condition"/> holds; fails with <paramref name="what"/> and the last value seen.</summary>
    public static async Task<T> EventuallyAsync<T>(Func<Task<T>> probe, Func<T, bool> condition, TimeSpan timeout, string what)
    {
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(condition);
        var deadline = DateTime.UtcNow + timeout;
        T last;
        while (true)
        {
            last = await probe();
            if (condition(last))
            {
                return last;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what} did not happen within {timeout.TotalSeconds} s; last: {last}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Subscribes a fresh client to <paramref name="filter"/> and returns the first message's payload.</summary>
    public static async Task<MqttMessage> FirstMessageAsync(Uri broker, string filter, TimeSpan timeout)
    {
        await using var client = new MqttClient(new MqttClientOptions { Broker = broker });
        await client.ConnectAsync();
        await client.SubscribeAsync(filter, 1);
        using var cts = new CancellationTokenSource(timeout);
        return await client.Messages.ReadAsync(cts.Token);
    }

    public static async Task<HttpResponseMessage> PostJsonAsync(HttpClient http, string url, string json)
    {
        ArgumentNullException.ThrowIfNull(http);
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        return await http.PostAsync(new Uri(url), content);
    }

    public static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);
}
