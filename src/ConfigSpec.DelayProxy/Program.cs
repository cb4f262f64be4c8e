using System.CommandLine;
using ConfigSpec;
using ConfigSpec.Transport.Network;

// configspec-delayproxy: a TCP proxy adding a delay (and jitter) in each direction, for network experiments on loopback.
var listen = new Option<string>("--listen") { Description = "address:port to accept on, e.g. 127.0.0.1:18830", Required = true };
var upstream = new Option<string>("--upstream") { Description = "host:port to forward to (the broker)", Required = true };
var delay = new Option<double?>("--delay-ms") { Description = "delay added in each direction (or --delay)" };
var schedule = new Option<string?>("--delay") { Description = "a delay that changes over time: fixed:MS, jitter:MS,J, markov:LOW,HIGH,DWELL_S or a time_s,delay_ms CSV" };
var seed = new Option<ulong>("--seed") { Description = "random seed for jitter and markov", DefaultValueFactory = _ => 1 };
var jitter = new Option<double>("--jitter-ms") { Description = "uniform jitter ± this much" };
var traceFile = new Option<string?>("--trace") { Description = "CSV file of every forwarded chunk" };
var root = new RootCommand("Delay-injecting TCP proxy") { listen, upstream, delay, schedule, seed, jitter, traceFile };
root.SetAction(async (parse, token) =>
{
    if ((parse.GetValue(delay) is null) == (parse.GetValue(schedule) is null))
    {
        throw new ConfigSpecException("give one of --delay-ms MS or --delay SPEC");
    }

    var trace = parse.GetValue(schedule) is { } spec ? ConfigSpec.Speculative.Policies.DelayTrace.Parse(spec, parse.GetValue(seed)) : null;
    await using var proxy = new DelayProxy(new DelayProxyOptions
    {
        Listen = DelayProxyOptions.ParseListen(parse.GetValue(listen)!),
        Upstream = DelayProxyOptions.ParseUpstream(parse.GetValue(upstream)!),
        Delay = TimeSpan.FromMilliseconds(parse.GetValue(delay) ?? 0),
        Schedule = trace,
        Jitter = TimeSpan.FromMilliseconds(parse.GetValue(jitter)),
        TraceFile = parse.GetValue(traceFile),
    });
    proxy.Start();
    Console.Error.WriteLine($"configspec-delayproxy: {proxy.LocalEndpoint} -> {parse.GetValue(upstream)}, +{(trace is null ? parse.GetValue(delay) + " ms" : trace.Spec)} each way");
    try
    {
        await Task.Delay(Timeout.Infinite, token).ConfigureAwait(false);
    }
    catch (OperationCanceledException)
    {
    }

    return 0;
});

try
{
    return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
}
catch (ConfigSpecException ex)
{
    Console.Error.WriteLine($"configspec-delayproxy: error: {ex.CommandLineMessage}");
    return 2;
}
