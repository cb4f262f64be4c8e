using System.Diagnostics.Metrics;
using ConfigSpec.Board;

namespace ConfigSpec.Edge.Daemon;

/// <summary>
/// What an operator scrapes from a board daemon (<c>GET /metrics</c> on its loopback HTTP): generations, tokens, rounds,
/// drafted and accepted tokens, verification round trips, drafting energy, commands by outcome, refused inputs by
/// reason, the outbox, the broker link, whether it serves, the draft length and the board's power. Goodput and
/// acceptance over any window come from the counters in the scraper (<c>rate(configspec_edge_generated_tokens_total[1m])</c>).
/// One daemon per process: its server and publisher are bound once (<see cref="Bind"/>).
/// </summary>
public static class EdgeMetrics
{
    public const string MeterName = "ConfigSpec.Edge";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Counter<long> Generations = Meter.CreateCounter<long>("configspec_edge_generations", description: "Generation requests completed");

    private static readonly Counter<long> Tokens = Meter.CreateCounter<long>("configspec_edge_generated_tokens", description: "Tokens generated (the target's output)");

    private static readonly Counter<long> Rounds = Meter.CreateCounter<long>("configspec_edge_rounds", description: "Speculative rounds (one verification each)");

    private static readonly Counter<long> Drafted = Meter.CreateCounter<long>("configspec_edge_drafted_tokens", description: "Draft tokens proposed");

    private static readonly Counter<long> Accepted = Meter.CreateCounter<long>("configspec_edge_accepted_tokens", description: "Draft tokens the target accepted");

    private static readonly Counter<double> DraftSeconds = Meter.CreateCounter<double>("configspec_edge_draft_time", "s", "Seconds spent drafting");

    private static readonly Counter<double> DraftJoules = Meter.CreateCounter<double>("configspec_edge_draft_energy", "J", "Joules drafting took on the board (estimated=\"true\" when no sensor measures them)");

    private static readonly Histogram<double> RoundTrip = Meter.CreateHistogram<double>("configspec_edge_verify_round_trip", "s", "Seconds from sending a draft block to having the verdict",
        tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });

    private static readonly Histogram<double> Duration = Meter.CreateHistogram<double>("configspec_edge_generation_duration", "s", "Seconds one generation request took",
        tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120] });

    private static readonly Counter<long> Commands = Meter.CreateCounter<long>("configspec_edge_commands", description: "Fleet commands answered, by command and outcome (applied, refused)");

    private static EdgeServer? _server;
    private static EdgePublisher? _publisher;

    static EdgeMetrics()
    {
        Meter.CreateObservableCounter("configspec_edge_inputs_refused", RefusedInputs, description: "Inputs refused, by input (cmd, generate, recommendation, http_generate) and reason");
        Meter.CreateObservableGauge("configspec_edge_outbox_pending", () => _publisher?.Outbox.Pending ?? 0, description: "Messages waiting in the outbox for the broker");
        Meter.CreateObservableCounter("configspec_edge_outbox_refused", () => _publisher?.Outbox.Refused ?? 0, description: "Messages the broker refused and the outbox dropped");
        Meter.CreateObservableGauge("configspec_edge_broker_connected", () => _publisher?.Client.IsConnected == true ? 1 : 0, description: "1 while the MQTT connection is up");
        Meter.CreateObservableGauge("configspec_edge_serving", () => _server is { Unavailable: null, Choice: not null } ? 1 : 0, description: "1 while the daemon serves generation");
        Meter.CreateObservableGauge("configspec_edge_draft_length", () => _server?.Choice?.Config.K ?? 0, description: "Draft length K of the configuration served (the policy's ceiling under an online policy)");
        Meter.CreateObservableGauge("configspec_edge_power", Power, "W", "The board's power at the latest sample (estimated=\"true\" when no sensor measures it)");
    }

    /// <summary>Makes the daemon's server and publisher the source of the observed figures.</summary>
    internal static void Bind(EdgeServer server, EdgePublisher publisher) => (_server, _publisher) = (server, publisher);

    internal static void Generation(GenerationReply reply)
    {
        var r = reply.Result;
        Generations.Add(1);
        Tokens.Add(r.Tokens.Count);
        Rounds.Add(r.Rounds.Count);
        Drafted.Add(r.DraftedTokens);
        Accepted.Add(r.AcceptedTokens);
        DraftSeconds.Add(r.DraftSeconds);
        Duration.Record(r.WallSeconds);
        foreach (var round in r.Rounds)
        {
            RoundTrip.Record(round.VerifySeconds);
        }

        if (reply.DraftJoules is { } joules)
        {
            DraftJoules.Add(joules, new KeyValuePair<string, object?>("estimated", reply.PowerEstimated ? "true" : "false"));
        }
    }

    internal static void Command(string command, bool applied) =>
        Commands.Add(1, new KeyValuePair<string, object?>("command", command), new KeyValuePair<string, object?>("outcome", applied ? "applied" : "refused"));

    private static IEnumerable<Measurement<long>> RefusedInputs()
    {
        if (_server is null)
        {
            yield break;
        }

        foreach (var (input, counts) in _server.Intake.Snapshot())
        {
            foreach (var (reason, n) in counts.ByReason)
            {
                yield return new Measurement<long>(n, new KeyValuePair<string, object?>("input", input), new KeyValuePair<string, object?>("reason", reason));
            }
        }
    }

    private static IEnumerable<Measurement<double>> Power()
    {
        if (_server?.Power is not PowerSession power || power.Sampler.Latest is not { } latest)
        {
            yield break;
        }

        yield return new Measurement<double>(latest.Watts, new KeyValuePair<string, object?>("estimated", power.Source.IsEstimate ? "true" : "false"));
    }
}
