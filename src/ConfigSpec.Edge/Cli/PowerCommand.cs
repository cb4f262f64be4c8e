using ConfigSpec.Contracts;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using ConfigSpec.Interop;
using ConfigSpec.Profiling;
using ConfigSpec.Telemetry;
using ConfigSpec.Telemetry.Energy;
using ConfigSpec.Telemetry.Sources;

namespace ConfigSpec.Edge.Cli;

/// <summary><c>power --detect</c> and <c>power --source SPEC --duration D --interval I</c>.</summary>
internal static class PowerCommand
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static Command Create(TextWriter output)
    {
        var detect = new Option<bool>("--detect") { Description = "list the power sources found on this machine, and why others are not" };
        var source = new Option<string?>("--source") { Description = $"source specification ({string.Join(", ", PowerSources.Names)}), e.g. ina219:bus=1,addr=0x40,shunt=0.1" };
        var duration = new Option<string>("--duration") { Description = "how long to sample, e.g. 10s, 500ms", DefaultValueFactory = _ => "10s" };
        var interval = new Option<string>("--interval") { Description = "sampling interval, e.g. 20ms", DefaultValueFactory = _ => "20ms" };
        var json = new Option<bool>("--json") { Description = "print one JSON object" };
        var record = new Option<string?>("--record") { Description = "write every sample to a CSV (time_s,watts,rails…), replayable with replay:file=" };
        var command = new Command("power", "power telemetry: detect sources, or sample one and report watts and energy") { detect, source, duration, interval, json, record };
        command.SetAction(async (parse, token) =>
        {
            if (parse.GetValue(detect))
            {
                foreach (var found in PowerSources.Detect(Board.PowerSession.Sources))
                {
                    output.WriteLine(DetectedLine(found));
                }

                return EdgeCli.ExitOk;
            }

            var spec = parse.GetValue(source) ?? throw new ConfigSpecException("power needs --source SPEC (or --detect)");
            var length = Durations.Parse(parse.GetValue(duration)!, "duration");
            var step = Durations.Parse(parse.GetValue(interval)!, "interval");
            using var powerSource = PowerSources.Create(spec, Board.PowerSession.Sources);
            if (powerSource is IRecordedPowerSource recorded)
            {
                await ReportRecordingAsync(output, spec, recorded, parse.GetValue(json), parse.GetValue(record)).ConfigureAwait(false);
                return EdgeCli.ExitOk;
            }

            await using var sampler = new PowerSampler(powerSource, step);
            var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            sampler.Start();
            // The window opens at the first sample, so it is covered from its start.
            var start = await sampler.FirstSampleAsync(token).ConfigureAwait(false);
            await Task.Delay(length, token).ConfigureAwait(false);
            var end = PowerSampler.Now;
            var window = await sampler.MeasureAsync(start, end, token).ConfigureAwait(false);
            var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
            var samples = sampler.Snapshot().Where(s => s.Time >= start && s.Time <= end).ToList();
            if (samples.Count == 0)
            {
                throw new ConfigSpecException($"{spec}: no sample could be read ({sampler.LastError ?? "no reason given"})");
            }

            if (parse.GetValue(record) is { } file)
            {
                await WriteCsvAsync(file, samples).ConfigureAwait(false);
            }

            var rails = samples.Where(s => s.Rails is not null).SelectMany(s => s.Rails!).GroupBy(r => r.Rail)
                .Select(g => (Rail: g.Key, Mean: g.Average(r => r.Watts), Min: g.Min(r => r.Watts), Max: g.Max(r => r.Watts))).ToList();
            var rate = samples.Count / (end - start);
            var label = powerSource.IsEstimate ? " (ESTIMATED, not measured)" : string.Empty;
            if (parse.GetValue(json))
            {
                JsonOutput.Write(output, new PowerReport(spec, powerSource.Scope.ToString().ToLowerInvariant(), powerSource.IsEstimate, end - start,
                    step.TotalMilliseconds, samples.Count, rate, sampler.Failures, window.Joules, window.Complete,
                    new WattsRange(window.MeanWatts, samples.Min(s => s.Watts), samples.Max(s => s.Watts)), [.. rails.Select(r => new RailWatts(r.Rail, r.Mean, r.Min, r.Max))],
                    CpuPercent: cpu / (end - start) * 100, IncompleteReason: window.Reason));
            }
            else
            {
                output.WriteLine(string.Create(C, $"{spec}: {powerSource.Scope}{label}"));
                output.WriteLine(string.Create(C, $"{"rail",-24} {"mean W",9} {"min W",9} {"max W",9}"));
                foreach (var (rail, mean, min, max) in rails)
                {
                    output.WriteLine(string.Create(C, $"{rail,-24} {mean,9:F3} {min,9:F3} {max,9:F3}"));
                }

                output.WriteLine(string.Create(C, $"{"total",-24} {window.MeanWatts,9:F3} {samples.Min(s => s.Watts),9:F3} {samples.Max(s => s.Watts),9:F3}"));
                output.WriteLine(string.Create(C,
                    $"energy {window.Joules:F3} J{label} over {end - start:F2} s; {samples.Count} samples, {rate:F1} Hz achieved ({1 / step.TotalSeconds:F0} Hz asked), {sampler.Failures} failed reads, sampler CPU {cpu / (end - start) * 100:F2} %"));
                if (!window.Complete)
                {
                    output.WriteLine($"incomplete: {window.Reason}");
                }
            }

            return EdgeCli.ExitOk;
        });
        return command;
    }

    /// <summary>
    /// A log is reported on its own time line, whole: the trapezoid of its total over its timestamps, time-weighted
    /// means (so each lies within its minimum and maximum); --duration and --interval do not apply to it.
    /// </summary>
    private static async Task ReportRecordingAsync(TextWriter output, string spec, IRecordedPowerSource source, bool json, string? record)
    {
        var readings = source.Recording;
        RecordedEnergy summary;
        try
        {
            summary = RecordedEnergy.Of(readings);
        }
        catch (PowerSourceException ex)
        {
            throw new PowerSourceException($"{spec}: {ex.Message}", ex);
        }

        if (record is not null)
        {
            await WriteCsvAsync(record, [.. readings.Select(r => new PowerSample(r.Time, r.TotalWatts, r.Rails))]).ConfigureAwait(false);
        }

        var label = source.IsEstimate ? " (ESTIMATED, not measured)" : string.Empty;
        if (json)
        {
            JsonOutput.Write(output, new PowerReport(spec, source.Scope.ToString().ToLowerInvariant(), source.IsEstimate, summary.Seconds,
                summary.MedianIntervalSeconds * 1000, summary.Samples, summary.Seconds > 0 ? (summary.Samples - 1) / summary.Seconds : 0, 0, summary.Joules, true,
                new WattsRange(summary.MeanWatts, summary.MinWatts, summary.MaxWatts), [.. summary.Rails.Select(r => new RailWatts(r.Rail, r.Mean, r.Min, r.Max))], Recorded: true));
            return;
        }

        output.WriteLine(string.Create(C, $"{spec}: {source.Scope}{label}, a recording read on its own time line (--duration and --interval do not apply)"));
        output.WriteLine(string.Create(C, $"{"rail",-24} {"mean W",9} {"min W",9} {"max W",9}"));
        foreach (var r in summary.Rails)
        {
            output.WriteLine(string.Create(C, $"{r.Rail,-24} {r.Mean,9:F3} {r.Min,9:F3} {r.Max,9:F3}"));
        }

        output.WriteLine(string.Create(C, $"{"total",-24} {summary.MeanWatts,9:F3} {summary.MinWatts,9:F3} {summary.MaxWatts,9:F3}"));
        output.WriteLine(string.Create(C, $"energy {summary.Joules:F3} J{label} over {summary.Seconds:F2} s of the log; {summary.Samples} samples, median step {summary.MedianIntervalSeconds * 1000:F0} ms"));
    }

    /// <summary>One line of <c>power --detect</c> (and of <c>system</c>): found or absent, the spec, and why.</summary>
    internal static string DetectedLine(DetectedSource found) =>
        string.Create(C, $"{(found.Available ? "found  " : "absent ")} {found.Spec,-34} {found.Detail}");

    private static async Task WriteCsvAsync(string file, List<PowerSample> samples)
    {
        var railNames = samples.FirstOrDefault(s => s.Rails is not null).Rails?.Select(r => r.Rail).ToList() ?? [];
        await using var writer = new StreamWriter(file);
        await writer.WriteLineAsync(string.Join(',', railNames.Prepend("watts").Prepend("time_s"))).ConfigureAwait(false);
        var origin = samples[0].Time;
        foreach (var sample in samples)
        {
            var fields = new List<string> { (sample.Time - origin).ToString("F6", C), sample.Watts.ToString("F6", C) };
            fields.AddRange(railNames.Select(name => sample.Rails?.FirstOrDefault(r => r.Rail == name).Watts.ToString("F6", C) ?? string.Empty));
            await writer.WriteLineAsync(string.Join(',', fields)).ConfigureAwait(false);
        }
    }
}
