using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using ConfigSpec.Interop;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Sampling;
using ConfigSpec.Speculative.Verification;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Remote;

namespace ConfigSpec.Edge.Cli;

/// <summary><c>bench rounds</c> (protocol overhead) and <c>bench fleet</c> (verifier throughput against concurrent boards).</summary>
internal static class RemoteBench
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    private static Option<string> VerifierOption() => new("--verifier") { Description = "MQTT broker of the verifier, mqtt://HOST[:PORT]", Required = true };

    private static Option<string> TargetOption() => new("--target-id") { Description = "target id", DefaultValueFactory = _ => "stories260K" };

    public static Command Rounds(TextWriter output)
    {
        var verifier = VerifierOption();
        var targetId = TargetOption();
        var draft = new Option<string>("--draft") { Description = "draft GGUF model", Required = true };
        var k = new Option<int>("--k") { Description = "draft block length", DefaultValueFactory = _ => 4 };
        var rounds = new Option<int>("--rounds") { Description = "rounds to time (after 20 warm-up rounds)", DefaultValueFactory = _ => 500 };
        var command = new Command("rounds", "round time over MQTT minus the verifier's own compute time (protocol overhead)") { verifier, targetId, draft, k, rounds };
        command.SetAction(async (parse, token) =>
        {
            using var draftModel = EdgeCli.LoadModel(parse, parse.GetValue(draft)!, "--draft");
            await using var client = await MqttVerifierClient.ConnectAsync(
                EdgeCli.Broker(parse, parse.GetValue(verifier)!, "--verifier"),
                new RemoteVerifierOptions { TargetId = parse.GetValue(targetId)!, DeviceId = "bench-rounds" }, token).ConfigureAwait(false);
            var generator = new SpeculativeGenerator(client, draftModel);
            var prompt = draftModel.Tokenize("Once upon a time");
            var want = parse.GetValue(rounds) + 20;
            while (client.RoundTimes.Count < want)
            {
                await generator.GenerateAsync(prompt, new GenerationOptions { DraftLength = parse.GetValue(k), MaxTokens = 400, ContextLength = 512 }, draftModel, token)
                    .ConfigureAwait(false);
            }

            var times = client.RoundTimes.Skip(20).ToArray();
            var rtt = times.Select(t => t.RoundTrip * 1000).ToArray();
            var compute = times.Select(t => t.Compute * 1000).ToArray();
            var overhead = times.Select(t => (t.RoundTrip - t.Compute) * 1000).ToArray();
            var transport = times.Select(t => (t.RoundTrip - t.Compute - t.Queue) * 1000).ToArray();
            output.WriteLine(string.Create(C, $"rounds={times.Length} k={parse.GetValue(k)}"));
            output.WriteLine(string.Create(C, $"{"ms",-34} {"median",8} {"p95",8}"));
            foreach (var (name, values) in new[]
            {
                ("round trip", rtt), ("verifier compute", compute), ("round trip - compute", overhead), ("round trip - compute - queue", transport),
            })
            {
                output.WriteLine(string.Create(C, $"{name,-34} {Percentile(values, 0.5),8:F3} {Percentile(values, 0.95),8:F3}"));
            }

            return EdgeCli.ExitOk;
        });
        return command;
    }

    public static Command Fleet(TextWriter output)
    {
        var verifier = VerifierOption();
        var targetId = TargetOption();
        var boards = new Option<string>("--boards") { Description = "comma-separated board counts", DefaultValueFactory = _ => "1,2,4,8,16,32" };
        var k = new Option<int>("--k") { Description = "draft tokens per round", DefaultValueFactory = _ => 4 };
        var seconds = new Option<double>("--seconds") { Description = "measuring time per board count", DefaultValueFactory = _ => 3 };
        var label = new Option<string>("--label") { Description = "label for the table", DefaultValueFactory = _ => "verifier" };
        var command = new Command("fleet",
            "verified tokens/s against the number of concurrent boards; boards send fixed synthetic drafts so only the verifier is measured")
        {
            verifier, targetId, boards, k, seconds, label,
        };
        command.SetAction(async (parse, token) =>
        {
            var broker = EdgeCli.Broker(parse, parse.GetValue(verifier)!, "--verifier");
            var counts = parse.GetValue(boards)!.Split(',').Select(v => int.TryParse(v, NumberStyles.None, C, out var n) && n > 0 ? n
                : throw new ConfigSpecException($"--boards: '{v}' is not a positive count")).ToArray();
            var draftLength = parse.GetValue(k);
            var duration = TimeSpan.FromSeconds(parse.GetValue(seconds));
            output.WriteLine(string.Create(C, $"{parse.GetValue(label)}: K={draftLength}"));
            output.WriteLine(string.Create(C, $"{"boards",6} {"verified_tok/s",15} {"rounds/s",10} {"median_round_ms",16} {"p95_round_ms",13}"));
            foreach (var count in counts)
            {
                var clients = await Task.WhenAll(Enumerable.Range(0, count).Select(i => MqttVerifierClient.ConnectAsync(broker,
                    new RemoteVerifierOptions { TargetId = parse.GetValue(targetId)!, DeviceId = $"bench-board{i}", RequestTimeout = TimeSpan.FromSeconds(10) }, token)))
                    .ConfigureAwait(false);
                try
                {
                    var until = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
                    var started = Stopwatch.GetTimestamp();
                    var perBoard = await Task.WhenAll(clients.Select(c => RunBoardAsync(c, draftLength, until, token))).ConfigureAwait(false);
                    var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
                    var roundTimes = perBoard.SelectMany(b => b).ToArray();
                    output.WriteLine(string.Create(C,
                        $"{count,6} {roundTimes.Length * draftLength / elapsed,15:F0} {roundTimes.Length / elapsed,10:F0} {Percentile(roundTimes, 0.5),16:F2} {Percentile(roundTimes, 0.95),13:F2}"));
                }
                finally
                {
                    foreach (var client in clients)
                    {
                        await client.DisposeAsync().ConfigureAwait(false);
                    }
                }
            }

            return EdgeCli.ExitOk;
        });
        return command;
    }

    /// <summary>One synthetic board: rounds of fixed drafts until the deadline, re-opening when the context fills.</summary>
    private static async Task<double[]> RunBoardAsync(MqttVerifierClient verifier, int k, long until, CancellationToken token)
    {
        var times = new List<double>();
        int[] prompt = [1, 403, 407, 261, 378];
        var drafts = Enumerable.Repeat(5, k).ToArray();
        while (Stopwatch.GetTimestamp() < until)
        {
            var session = await verifier.OpenAsync(new OpenSessionRequest(prompt, SamplingSettings.Greedy, null), token).ConfigureAwait(false);
            var committed = prompt.Length;
            for (var round = 1; committed + k + 2 < session.ContextLength && Stopwatch.GetTimestamp() < until; round++)
            {
                var t0 = Stopwatch.GetTimestamp();
                var result = await verifier.VerifyAsync(new VerifyRequest(session.SessionId, drafts, null, round, committed), token).ConfigureAwait(false);
                times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                committed += result.AcceptedCount + 1;
            }

            await verifier.CloseAsync(session.SessionId, token).ConfigureAwait(false);
        }

        return [.. times];
    }

    private static double Percentile(double[] values, double q)
    {
        if (values.Length == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, (int)Math.Floor(q * sorted.Length))];
    }
}
