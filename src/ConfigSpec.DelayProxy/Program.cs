using System.CommandLine;
using ConfigSpec.Interop;
using ConfigSpec.Transport.Network;

// configspec-delayproxy: a TCP proxy adding a delay (and jitter) in each direction, for network experiments on loopback.
var listen = new Option<string>("--listen") { Description = "address:port to accept on, e.g. 127.0.0.1:18830", Required = true };
var upstream = new Option<string>("--upstream") { Description = "host:port to forward to (the broker)", Required = true };
var delay = new Option<double>("--delay-ms") { Description = "delay added in each direction", Required = true };
var jitter = new Option<double>("--jitter-ms") { Description = "uniform jitter ± this much" };
var trace = new Option<string?>("--trace") { Description = "CSV file of every forwarded chunk" };
var root = new RootCommand("Delay-injecting TCP proxy") { listen, upstream, delay, jitter, trace };
root.SetAction(async (parse, token) =>
{
    await using var proxy = new DelayProxy(new DelayProxyOptions
    {
        Listen = DelayProxyOptions.ParseListen(parse.GetValue(listen)!),
        Upstream = DelayProxyOptions.ParseUpstream(parse.GetValue(upstream)!),
        Delay = TimeSpan.FromMilliseconds(parse.GetValue(delay)),
        Jitter = TimeSpan.FromMilliseconds(parse.GetValue(jitter)),
        TraceFile = parse.GetValue(trace),
    });
    proxy.Start();
    Console.Error.WriteLine($"configspec-delayproxy: {proxy.LocalEndpoint} -> {parse.GetValue(upstream)}, +{parse.GetValue(delay)} ms each way");
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
    Console.Error.WriteLine($"configspec-delayproxy: error: {ex.Message}");
    return 2;
}
