using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Contracts;

public sealed partial class ContractTests
{
    private static readonly DateTimeOffset T = new(2026, 12, 1, 20, 0, 0, TimeSpan.Zero);
    private static readonly string Sha = new('c', 64);
    private static readonly ServedConfig Served = new("goodput", "stories260K-Q8_0", "Q8_0", Sha, 4, new PredictedFigures(41.5, null, 0.02), "best goodput", "profile");

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>One instance of every contract record, written and read back.</summary>
    public static TheoryData<string> Records() => [.. Samples().Keys];

    private static Dictionary<string, (Func<string> Write, Func<string, string> ReadAndWrite)> Samples() => new()
    {
        ["header"] = Sample(new MessageHeader("configspec.edge.status", 1, "pi-1", 3, T)),
        ["status"] = Sample(new StatusMessage(BoardState.Serving, "Raspberry Pi 5", "pi", "0.14.0", "goodput", "K=4")),
        ["served_config"] = Sample(Served),
        ["metrics"] = Sample(new MetricsMessage(30, 2, 100, 40, 0.7, 2.8, 4, 5.1, 0.02, true)),
        ["command"] = Sample(new CommandMessage(FleetCommand.SetObjective, "c-1", "energy", null, null, T)),
        ["command_result"] = Sample(new CommandResult("c-1", "apply", true, null, Served)),
        ["recommendation"] = Sample(new RecommendationMessage("raspberry-pi-5", T, new Dictionary<string, RecommendedConfig> { ["goodput"] = new("d", "Q4_0", Sha, 3, 20, "tokens/s", 2, 0.5) })),
        ["profile"] = Sample(new ProfileMessage("Raspberry Pi 5", ConfigSpec.Profiling.Profiles.ProfileJson.ToDocument(ConfigSpec.Tests.Profiling.ProfileFixtures.ThreeDrafts()))),
        ["saved_choice"] = Sample(new SavedChoice("/var/lib/configspec/models/d.gguf", Served)),
        ["generation_request"] = Sample(new GenerationRequest("Once upon a time", 16, true, "reply/here")),
        ["generation_summary"] = Sample(new GenerationSummary("text", 5, 3, "length", "d", "Q8_0", 4, "profile", "ucb-specstop", 3.5, 2, 7, 4, 0.5714, 2, 0.1, 50, 0.05, 0.04, 0.3, true, "done")),
        ["generation_token"] = Sample(new GenerationToken(Type: "token", Text: " a")),
        ["error_reply"] = Sample(new ErrorReply("busy", "error", true)),
        ["edge_status"] = Sample(new EdgeStatus("pi-1", "Raspberry Pi 5", BoardState.Serving, "K=4", null, 0, 1, "not authorized",
            new Dictionary<string, IntakeCounts> { ["cmd"] = new(2, new Dictionary<string, long> { ["malformed_json"] = 2 }) }, true, Served)),
        ["ranked_row"] = Sample(new RankedRow(1, "d", "Q4_0", Sha, 3, 20, "tokens/s", 2, 0.5, true, false)),
        ["verifier_status"] = Sample(new VerifierStatus("online", "replica-a", "stories260K", T)),
        ["verifier_health"] = Sample(new VerifierHealth("ok", "replica-a", "stories260K", true, 2, 40)),
        ["prompt_line"] = Sample(new PromptLine("Tell a story", "about a dog", "creative_writing")),
        ["profile_document"] = Sample(ConfigSpec.Profiling.Profiles.ProfileJson.ToDocument(ConfigSpec.Tests.Profiling.ProfileFixtures.ThreeDrafts())),
        ["aggregator_health"] = Sample(new AggregatorHealth(true, 12.5, 10, 8, 1, 0, 0, 1, new Dictionary<string, long> { ["invalid_field"] = 1 },
            [new RecentRejection("2026-12-01T20:00:00Z", "configspec/v1/edge/x/metrics", "invalid_field", "field 'k' must be an integer")], new Dictionary<string, long> { ["devices"] = 1 }, 3)),
        ["api_version"] = Sample(new ApiVersion(7)),
        ["fleet_devices"] = Sample(new FleetDevices([Device()])),
        ["fleet_device_detail"] = Sample(new FleetDeviceDetail(Device(), [new DeviceCurve("d", "Q8_0", Sha, [new CurvePoint(2, 30, 1e6, null, 1.6)])],
            new DeviceProfileSummary(T, T, "estimate:board=rpi5", true, "stories260K", 2), [new DeviceMetricsPoint(T, 30, 0.7, 4, null, null, 100)])),
        ["fleet_rankings"] = Sample(new FleetRankings("goodput", 2, [new BoardRanking("raspberry-pi-5", new RecommendedConfig("d", "Q4_0", Sha, 3, 20, "tokens/s", 2, 0.5),
            [new RankedRow(1, "d", "Q4_0", Sha, 3, 20, "tokens/s", 2, 0.5, true, true)])], [new ParetoPoint("raspberry-pi-5", "d", 3, 20, 1e6, null, true)])),
        ["system_report"] = Sample(new SystemReport("0.14.0", ".NET 10", true, "arm64", "Cortex-A76", 4, ["asimd", "dotprod"], "2.36", "6.6", "Debian 12", "Raspberry Pi 5",
            8064, "/opt/configspec/lib", "b6500 ABI", "libggml-cpu-armv8.2_2.so", ["libggml-cpu-armv8.2_2.so"], "NEON = 1", [new PowerSourceFound("estimate:board=rpi5", true, "labelled estimate")])),
        ["power_report"] = Sample(new PowerReport("replay:file=x.csv", "board", false, 19, 1000, 20, 1, 0, 304, true, new WattsRange(16, 16, 16), [new RailWatts("wall", 16, 16, 16)], Recorded: true)),
        ["generation_report"] = Sample(new GenerationReport("text", [1, 2], 3, 4, 1, "max_tokens", 1.5, [0.9, null], [10, 0], 4, 500, 0.01, 0.02, 0.03, 66,
            new TargetOnlyRun(0.05, 40, 1.6, true), new GenerationEnergy("estimate:board=rpi5", true, 0.1, 0.01, 10, 0.025, 0.05, 1, 0, 0))),
        ["selection_report"] = Sample(new SelectionReport("goodput", "pi-1", false, 0, [Candidate()], Candidate() with { Reason = "best goodput" }, [new SweepPoint(0.02, Candidate())])),
        ["validation_report"] = Sample(new ValidationReport("d", "Q8_0", 4, Candidate(), new MeasuredFigures(30, 28, 1e6, null, 2.4, 500, 0.01, 0.02, 10, 40), 1.5, -2, null)),
        ["policy_bench_report"] = Sample(new PolicyBenchReport([new PolicyFigures("ucb-specstop", 12.5, 20, 3.2, 0.7, 1.5)], new BestStatic("static:4", 12.9, 4.5))),
        ["model_report"] = Sample(new ModelReport("m.gguf", "llama", "stories", 292_000, 1_100_000, 1_000_000, 128, 5, 64, 8, 4, 512, 1, 2, new string('f', 64), 3, 48,
            new Dictionary<string, int> { ["f32"] = 48 })),
        ["discovery_sensor"] = Sample(new DiscoverySensor("Goodput", "configspec_pi_goodput", "configspec/v1/edge/pi/metrics", "{{ value_json.goodput }}",
            "measurement", "configspec/v1/edge/pi/status", "{{ 'online' }}", new DiscoveryDevice(["configspec_pi"], "ConfigSpec pi", "Raspberry Pi 5", "ConfigSpec", "0.14.0"), "tokens/s")),
    };

    private static CandidateReport Candidate() => new("d", "Q8_0", 4, 2.4, 30, 1e6, 1, null, 0.01, 0.02, 12.5, true);

    private static FleetDevice Device() => new("pi-1", "Raspberry Pi 5", "raspberry-pi-5", "pi", "serving", "0.14.0", "goodput", null, T, T,
        JsonDocument.Parse(Contract.Write(Served)).RootElement.Clone(), null);

    private static (Func<string>, Func<string, string>) Sample<T>(T value)
        where T : IContract => (() => Contract.Write(value), json => Contract.Write(Contract.Read<T>(B(json))));

    [Theory]
    [MemberData(nameof(Records))]
    public void Every_record_round_trips(string name)
    {
        var (write, readAndWrite) = Samples()[name];
        var json = write();
        Assert.Equal(json, readAndWrite(json));
        Assert.DoesNotContain("\\u0022", json, StringComparison.Ordinal);
        Assert.Matches("^\\{\"[a-z]", json); // an object of snake_case members
    }

    [Fact]
    public void A_board_message_is_its_header_and_body_in_one_object()
    {
        var json = FleetMessages.Config("pi-1", 9, T, Served);
        using var doc = JsonDocument.Parse(json);
        var names = doc.RootElement.EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal(["schema", "version", "device_id", "seq", "time", "objective", "draft", "quant", "sha256", "k", "predicted", "reason", "source", "pipeline"], names);
        var (header, body) = Contract.ReadEdge<ServedConfig>(B(json), FleetMessages.ConfigSchema, "pi-1");
        Assert.Equal(9, header.Seq);
        Assert.Equal(Served, body);
    }

    [Theory]
    [InlineData("""{"command":"apply","draft":"d","k":4.0}""", "field 'k' must be an integer")]
    [InlineData("""{"command":"apply","draft":"d","k":1e308}""", "field 'k' must be an integer")]
    [InlineData("""{"command":"apply","draft":"d","k":9223372036854775808}""", "field 'k' must be an integer")]
    [InlineData("""{"command":"apply","draft":"d","k":[4]}""", "field 'k' must be an integer")]
    [InlineData("""{"command":"apply","draft":{"name":"d"},"k":4}""", "field 'draft' must be a string")]
    [InlineData("""{"command":"apply","draft":"d","k":4,"time":"noon"}""", "field 'time' must be an ISO 8601 time")]
    [InlineData("""{"command":null}""", "field 'command' must be one of")]
    [InlineData("""{"id":"x"}""", "field 'command' is missing")]
    [InlineData("""{"command":"reprofile","id":""}""", "field 'id' must be a non-empty string")]
    [InlineData("""{"command":"reprofile","schema":"configspec.edge.status"}""", "schema 'configspec.edge.status'")]
    [InlineData("""{"command":"reprofile","future":{"deep":[1,2,3]}}""", null)] // unknown members are a newer sender's: skipped
    public void Commands_are_read_strictly_and_refusals_name_the_field(string payload, string? error)
    {
        if (error is null)
        {
            Assert.Equal(FleetCommand.Reprofile, FleetMessages.ReadCommand(B(payload)).Command);
            return;
        }

        var ex = Assert.Throws<ContractException>(() => FleetMessages.ReadCommand(B(payload)));
        Assert.Contains(error, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotMatch("System\\.|ConfigSpec\\.", ex.Message);
    }

    [Fact]
    public void Nesting_deeper_than_32_levels_is_malformed()
    {
        var deep = """{"command":"reprofile","x":""" + new string('[', 40) + new string(']', 40) + "}";
        Assert.Equal(ContractFault.MalformedJson, Assert.Throws<ContractException>(() => FleetMessages.ReadCommand(B(deep))).Fault);
    }

    [Fact]
    public void Nested_fields_are_named_by_their_path()
    {
        var json = Contract.Write(new RecommendationMessage("b", T, new Dictionary<string, RecommendedConfig> { ["goodput"] = new("d", "Q4_0", Sha, 3, 20, "tokens/s", 2, 0.5) }));
        var ex = Assert.Throws<ContractException>(() => FleetMessages.ReadRecommendation(B(json.Replace("\"k\":3", "\"k\":\"3\"", StringComparison.Ordinal))));
        Assert.Equal("field 'objectives.goodput.k' must be an integer (at most 2147483647)", ex.Message);
        ex = Assert.Throws<ContractException>(() => FleetMessages.ReadRecommendation(B(json.Replace("\"k\":3", "\"k\":40", StringComparison.Ordinal))));
        Assert.Equal($"field 'objectives.goodput.k' must be an integer in {DraftLength.Range}", ex.Message);
    }

    /// <summary>
    /// The fleet reference's table (docs/fleet-topics.md) names every member of each topic's record and nothing else (the header's members are
    /// documented once above the table).
    /// </summary>
    [Fact]
    public void The_reference_schema_tables_agree_with_the_records()
    {
        var topics = File.ReadAllLines(Path.Combine(TestEnvironment.RepositoryRoot, "docs", "fleet-topics.md"));
        var rows = topics.Where(l => l.StartsWith("| `configspec/v1/", StringComparison.Ordinal)).ToDictionary(l => Cells().Split(l)[1].Trim().Trim('`'), l => Cells().Split(l)[3]);
        var expected = new Dictionary<string, string[]>
        {
            ["configspec/v1/edge/{id}/status"] = Members<StatusMessage>(),
            ["configspec/v1/edge/{id}/profile"] = [.. Contract.Info<ProfileMessage>().Properties.Select(p => p.Name)], // the document: its own table
            ["configspec/v1/edge/{id}/config"] = Members<ServedConfig>(),
            ["configspec/v1/edge/{id}/metrics"] = Members<MetricsMessage>(),
            ["configspec/v1/edge/{id}/cmd"] = [.. Members<CommandMessage>().Union(Contract.Info<CommandResult>().Properties.Select(p => p.Name))], // the result's config is the config topic's
            ["configspec/v1/fleet/{boardModel}/recommendation"] = [.. Members<RecommendationMessage>(), "goodput", "cost", "energy"], // the objectives' names
        };
        foreach (var (topic, members) in expected)
        {
            Assert.True(rows.TryGetValue(topic, out var text), $"docs/fleet-topics.md has no row for {topic}");
            var documented = Documented(text).Order(StringComparer.Ordinal).ToArray();
            Assert.Equal(members.Except(["schema", "version"]).Distinct().Order(StringComparer.Ordinal), documented);
        }

        // The profile document's table names every member of ProfileDocument and its parts, and nothing else.
        var profiling = File.ReadAllLines(Path.Combine(TestEnvironment.RepositoryRoot, "docs", "profiling.md"));
        var profileRows = profiling.SkipWhile(l => !l.StartsWith("| profile part |", StringComparison.Ordinal)).Skip(2).TakeWhile(l => l.StartsWith('|')).ToList();
        Assert.NotEmpty(profileRows);
        Assert.Equal(Members<ProfileDocument>().Distinct().Order(StringComparer.Ordinal),
            profileRows.SelectMany(r => Documented(Cells().Split(r)[1] + Cells().Split(r)[2])).Distinct().Order(StringComparer.Ordinal));

        // /v1/status: every member is named in its paragraph.
        var daemon = File.ReadAllLines(Path.Combine(TestEnvironment.RepositoryRoot, "docs", "daemon.md"));
        var status = string.Join('\n', daemon.SkipWhile(l => !l.StartsWith("`GET /v1/status`", StringComparison.Ordinal)).TakeWhile(l => l.Length > 0));
        Assert.All(Members<EdgeStatus>().Where(m => !Members<ServedConfig>().Contains(m) && m is not ("total" or "by_reason")), m => Assert.Contains($"`{m}`", status, StringComparison.Ordinal));
    }

    /// <summary>The JSON member names of a record and of the records inside it.</summary>
    private static string[] Members<T>() => [.. Walk(Contract.Info<T>()).Distinct()];

    private static IEnumerable<string> Walk(JsonTypeInfo info, int depth = 0)
    {
        if (depth > 4)
        {
            yield break;
        }

        var inner = info.Kind switch
        {
            JsonTypeInfoKind.Object => info.Properties.Select(p => (p.Name, (Type?)p.PropertyType)),
            JsonTypeInfoKind.Dictionary or JsonTypeInfoKind.Enumerable => [(string.Empty, info.ElementType)],
            _ => [],
        };
        foreach (var (name, type) in inner)
        {
            if (name.Length > 0)
            {
                yield return name;
            }

            var t = Nullable.GetUnderlyingType(type!) ?? type!;
            if (t != typeof(string) && t != typeof(JsonElement) && !t.IsPrimitive && t != typeof(DateTimeOffset) && !t.IsEnum)
            {
                foreach (var n in Walk(Contract.Options.GetTypeInfo(t), depth + 1))
                {
                    yield return n;
                }
            }
        }
    }

    /// <summary>Backticked member names in a reference table's cell: <c>`name`</c> and the keys of backticked JSON examples.</summary>
    private static IEnumerable<string> Documented(string cell) =>
        Backticked().Matches(cell).Select(m => m.Groups[1].Value)
            .SelectMany(t => t.StartsWith('{') ? JsonKeys().Matches(t).Select(k => k.Groups[1].Value) : [t])
            .Where(t => MemberName().IsMatch(t))
            .Distinct();

    [GeneratedRegex(@"(?<!\\)\|")]
    private static partial Regex Cells();

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex Backticked();

    [GeneratedRegex("\"([a-z_]+)\":")]
    private static partial Regex JsonKeys();

    [GeneratedRegex("^[a-z][a-z0-9_]*$")]
    private static partial Regex MemberName();
}
