using System.Diagnostics;
using System.Net;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Profiling.Adaptive;
using ConfigSpec.Profiling.Measurement;
using ConfigSpec.Profiling.Prompts;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Speculative.Policies;
using ConfigSpec.Transport.Mqtt;
using ConfigSpec.Transport.Network;
using ConfigSpec.Transport.Remote;

namespace ConfigSpec.Edge.Cli;

/// <summary>
/// bench-policy with real models: every run gets its own delay proxy (in this process, in front of the broker) whose
/// schedule starts at the run's start, so every policy meets the same delay trace; the true delay state of each round
/// is read from that schedule when the round's K is chosen (the oracle is told it; the others only record it).
/// </summary>
internal static class RealPolicyBench
{
    public static async Task<PolicyEvaluation> RunAsync(MqttClientOptions broker, string targetId, LlamaModel draft, string delaySpec, ulong seed,
        int tokens, int kMax, double verifySecondsGuess, IReadOnlyList<Func<IDraftLengthPolicy>> policies, double? paceTokensPerSecond, int parallel,
        bool lateOracle, int pipeline, CancellationToken cancellationToken)
    {
        if (parallel > 1)
        {
            // Paced drafting holds its thread while it waits; keep enough threads that parallel runs do not queue for one.
            ThreadPool.GetMinThreads(out var workers, out var io);
            ThreadPool.SetMinThreads(Math.Max(workers, (4 * parallel) + 4), io);
        }

        return await PolicySimulator.EvaluateAsync(policies, kMax, RunOneAsync, parallel, lateOracle).ConfigureAwait(false);

        async Task<PolicyRun> RunOneAsync(IDraftLengthPolicy policy, Action<int>? tellState)
        {
            var schedule = DelayTrace.Parse(delaySpec, seed);
            await using var proxy = new DelayProxy(new DelayProxyOptions
            {
                Listen = new IPEndPoint(IPAddress.Loopback, 0),
                Upstream = new DnsEndPoint(broker.Broker.Host, broker.Port),
                Schedule = schedule,
            });
            proxy.Start();
            var started = Stopwatch.GetTimestamp();
            // A board id of its own per run: its own reply topic, so parallel runs never see each other's verdicts or probes.
            var device = "bench-policy-" + Guid.NewGuid().ToString("N")[..8];
            var viaProxy = broker with { Broker = new Uri($"mqtt://127.0.0.1:{proxy.LocalEndpoint.Port}"), ClientId = device };
            await using var verifier = await MqttVerifierClient.ConnectAsync(viaProxy, new RemoteVerifierOptions { TargetId = targetId, DeviceId = device },
                cancellationToken).ConfigureAwait(false);
            var recording = new StateRecordingPolicy(policy, () =>
            {
                var delay = schedule.DelayMs(Stopwatch.GetElapsedTime(started).TotalSeconds);
                var state = DelayStates.Of((2 * delay / 1000) + verifySecondsGuess);
                tellState?.Invoke(state);
                return (state, delay);
            }, paceTokensPerSecond, () => verifier.ProbeRoundTripSeconds);
            var generator = new SpeculativeGenerator(verifier, draft);
            var prompts = PromptSet.BuiltIn().Prompts;
            var rounds = new List<SimulatedRound>();
            var produced = 0;
            for (var i = 0; produced < tokens; i++)
            {
                var prompt = Profiler.PromptTokens(draft, prompts[i % prompts.Count], 512, kMax);
                var before = recording.Recorded.Count;
                var result = await generator.GenerateAsync(prompt, new GenerationOptions
                {
                    DraftLength = kMax,
                    Policy = recording,
                    MaxTokens = Math.Min(96, tokens - produced + 1),
                    DeviceId = device,
                    Pipeline = pipeline,
                }, draft, cancellationToken).ConfigureAwait(false);
                if (pipeline > 1)
                {
                    Pipelined(result, started, schedule, verifySecondsGuess, rounds);
                    produced += result.Tokens.Count;
                    continue;
                }

                for (var r = 0; r < result.Rounds.Count; r++)
                {
                    var round = result.Rounds[r];
                    var (state, delay) = recording.Recorded[before + r];
                    rounds.Add(new SimulatedRound(round.DraftStart - (started / (double)Stopwatch.Frequency), round.Drafted, round.Drafted, round.Accepted, round.RoundSeconds, delay, state));
                }

                produced += result.Tokens.Count;
            }

            return PolicySimulator.Summarise(policy.Name, rounds);
        }
    }

    /// <summary>
    /// A pipelined run's verified blocks as rounds: blocks overlap, so each takes the time since the verdict before it
    /// (the first, since its drafting began) and commits its accepted drafts and, where it ended a chain, the verifier's
    /// token (the run's last block takes what is left of its tokens). Blocks drafted and discarded are not rounds; their
    /// time is in the next verdict's. The true state is the schedule's when the block's drafting began.
    /// </summary>
    private static void Pipelined(GenerationResult result, long started, DelayTrace schedule, double verifySecondsGuess, List<SimulatedRound> rounds)
    {
        var origin = started / (double)Stopwatch.Frequency;
        var previous = result.Rounds.Count > 0 ? result.Rounds[0].DraftStart : 0;
        var committed = 0;
        for (var r = 0; r < result.Rounds.Count; r++)
        {
            var round = result.Rounds[r];
            var verdict = round.DraftStart + round.RoundSeconds;
            var yield = r == result.Rounds.Count - 1 ? Math.Max(0, result.Tokens.Count - committed) : round.Accepted + (round.Accepted < round.Drafted ? 1 : 0);
            committed += yield;
            var delay = schedule.DelayMs(round.DraftStart - origin);
            rounds.Add(new SimulatedRound(round.DraftStart - origin, round.Drafted, round.Drafted, round.Accepted, Math.Max(0, verdict - previous), delay,
                DelayStates.Of((2 * delay / 1000) + verifySecondsGuess)) { Committed = yield });
            previous = Math.Max(previous, verdict);
        }
    }

    /// <summary>
    /// Passes through to a policy and records the true delay (and state) when each round's K is chosen. With a pace, the
    /// policy is held to it (<see cref="PacedPolicy"/>) and asked with the time and the probe's news as they are then.
    /// </summary>
    private sealed class StateRecordingPolicy(IDraftLengthPolicy policy, Func<(int State, double DelayMs)> now, double? pace, Func<double?> probe) : IDraftLengthPolicy
    {
        private readonly IDraftLengthPolicy _inner = pace is { } v ? new PacedPolicy(policy, v, probe) : policy;

        public List<(int State, double DelayMs)> Recorded { get; } = [];

        public string Name => _inner.Name;

        public int KMax => _inner.KMax;

        public int Choose()
        {
            Recorded.Add(now()); // before the inner choice, so the oracle is told this round's state
            return _inner.Choose();
        }

        public void Observe(RoundObservation round) => _inner.Observe(round);

        public bool StopDrafting(in DraftProgress progress) => _inner.StopDrafting(progress);

        public bool WantsLinkProbe => _inner.WantsLinkProbe;

        public bool ReadsConfidence => _inner.ReadsConfidence;
    }
}
