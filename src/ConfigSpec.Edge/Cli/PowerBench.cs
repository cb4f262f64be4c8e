using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using ConfigSpec.Interop;
using ConfigSpec.Telemetry.Energy;
using ConfigSpec.Telemetry.Sources;

namespace ConfigSpec.Edge.Cli;

/// <summary><c>bench power</c>: achieved sample rate and the sampler's CPU cost per source and rate.</summary>
internal static class PowerBench
{
    public static Command Create(TextWriter output)
    {
        var sources = new Option<string>("--sources") { Description = "semicolon-separated source specifications", Required = true };
        var rates = new Option<string>("--rates") { Description = "comma-separated rates in Hz", DefaultValueFactory = _ => "10,50,100" };
        var seconds = new Option<double>("--seconds") { Description = "seconds per measurement", DefaultValueFactory = _ => 3 };
        var command = new Command("power", "sampling rate achieved and CPU used by the power sampler, per source and rate") { sources, rates, seconds };
        command.SetAction(async (parse, token) =>
        {
            var c = CultureInfo.InvariantCulture;
            var duration = TimeSpan.FromSeconds(parse.GetValue(seconds));
            var hz = parse.GetValue(rates)!.Split(',').Select(r => int.TryParse(r, NumberStyles.None, c, out var v) && v > 0 ? v
                : throw new ConfigSpecException($"--rates: '{r}' is not a positive rate")).ToArray();
            output.WriteLine(string.Create(c, $"{"source",-44} {"asked_hz",8} {"achieved_hz",11} {"failed",6} {"cpu_%",7} {"cpu_us/sample",13}"));
            foreach (var spec in parse.GetValue(sources)!.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                foreach (var rate in hz)
                {
                    using var source = PowerSources.Create(spec, Board.PowerSession.Sources);
                    await using var sampler = new PowerSampler(source, TimeSpan.FromSeconds(1.0 / rate));
                    var process = Process.GetCurrentProcess();
                    var cpuBefore = process.TotalProcessorTime;
                    var wall = Stopwatch.StartNew();
                    sampler.Start();
                    await Task.Delay(duration, token).ConfigureAwait(false);
                    await sampler.DisposeAsync().ConfigureAwait(false);
                    wall.Stop();
                    process.Refresh();
                    var cpu = (process.TotalProcessorTime - cpuBefore).TotalSeconds;
                    var samples = sampler.Snapshot().Count;
                    output.WriteLine(string.Create(c,
                        $"{spec,-44} {rate,8} {samples / wall.Elapsed.TotalSeconds,11:F1} {sampler.Failures,6} {cpu / wall.Elapsed.TotalSeconds * 100,7:F2} {(samples > 0 ? cpu / samples * 1e6 : 0),13:F1}"));
                }
            }

            return EdgeCli.ExitOk;
        });
        return command;
    }
}
