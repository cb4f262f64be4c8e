using System.Text;
using ConfigSpec.Fleet;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Tests.Profiling;

namespace ConfigSpec.Tests.Fleet;

public sealed class FleetMessageTests
{
    private static readonly DateTimeOffset T = new(2026, 11, 22, 12, 0, 0, TimeSpan.Zero);
    private static readonly string Sha = new('a', 64);

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Status_config_and_metrics_round_trip()
    {
        var status = new StatusMessage(BoardState.Serving, "Raspberry Pi 5", "pi", "1.0.0", "goodput", "Q8_0 K=4");
        var (h, readStatus) = Contract.ReadEdge<StatusMessage>(B(FleetMessages.Status("pi5-a", 7, T, status)), FleetMessages.StatusSchema, "pi5-a");
        Assert.Equal(new MessageHeader(FleetMessages.StatusSchema, 1, "pi5-a", 7, T), h);
        Assert.Equal(status, readStatus);

        var config = new ServedConfig("cost", "d", "Q4_0", Sha, 3, new PredictedFigures(12.5, 1e6, null), "why", "profile");
        Assert.Equal(config, Contract.ReadEdge<ServedConfig>(B(FleetMessages.Config("x", 1, T, config)), FleetMessages.ConfigSchema, "x").Body);

        var metrics = new MetricsMessage(30, 4, 200, 55.5, 0.8, 3.1, 4, 5.2, 0.01, true);
        Assert.Equal(metrics, Contract.ReadEdge<MetricsMessage>(B(FleetMessages.Metrics("x", 2, T, metrics)), FleetMessages.MetricsSchema, "x").Body);
    }

    [Fact]
    public void Profile_message_carries_the_whole_profile()
    {
        var profile = ProfileFixtures.ThreeDrafts();
        profile = profile with { Device = profile.Device with { Id = "pi5-lab-1" } };
        var (_, body) = Contract.ReadEdge<ProfileMessage>(B(FleetMessages.Profile("pi5-lab-1", 3, T, profile)), FleetMessages.ProfileSchema, "pi5-lab-1");
        var (board, read) = FleetMessages.ReadProfile(body, "pi5-lab-1");
        Assert.Equal(profile.Device.Board, board);
        Assert.Equal(ProfileJson.Serialize(profile), ProfileJson.Serialize(read));
    }

    [Theory]
    [InlineData("{not json", ContractFault.MalformedJson, "not JSON")]
    [InlineData("[1,2]", ContractFault.MalformedJson, "JSON object")]
    [InlineData("""{"schema":"configspec.edge.metrics","version":1,"device_id":"a","seq":1,"time":"2026-11-22T12:00:00Z"}""", ContractFault.UnknownSchema, "configspec.edge.status")]
    [InlineData("""{"schema":"configspec.edge.status","version":2,"device_id":"a","seq":1,"time":"2026-11-22T12:00:00Z"}""", ContractFault.UnsupportedVersion, "version 2")]
    [InlineData("""{"schema":"configspec.edge.status","version":1,"device_id":"b","seq":1,"time":"2026-11-22T12:00:00Z"}""", ContractFault.DeviceMismatch, "'b'")]
    [InlineData("""{"schema":"configspec.edge.status","version":1,"device_id":"a","seq":-1,"time":"2026-11-22T12:00:00Z"}""", ContractFault.InvalidField, "'seq'")]
    [InlineData("""{"schema":"configspec.edge.status","version":1,"device_id":"a","seq":1,"time":"yesterday"}""", ContractFault.InvalidField, "'time'")]
    public void Headers_that_do_not_match_the_topic_are_refused_with_the_reason(string payload, ContractFault reason, string mentions)
    {
        var ex = Assert.Throws<ContractException>(() => Contract.ReadEdge<StatusMessage>(B(payload), FleetMessages.StatusSchema, "a"));
        Assert.Equal(reason, ex.Fault);
        Assert.Contains(mentions, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bodies_with_bad_fields_name_the_field()
    {
        var config = FleetMessages.Config("x", 1, T, new ServedConfig("goodput", "d", "Q4_0", Sha, 3, new PredictedFigures(1, 1, null), "r", "profile"));
        Assert.Contains("'k'", Refusal<ServedConfig>(config.Replace("\"k\":3", "\"k\":0", StringComparison.Ordinal), FleetMessages.ConfigSchema), StringComparison.Ordinal);
        Assert.Contains("'k'", Refusal<ServedConfig>(config.Replace("\"k\":3", "\"k\":33", StringComparison.Ordinal), FleetMessages.ConfigSchema), StringComparison.Ordinal);
        Assert.Contains("'sha256'", Refusal<ServedConfig>(config.Replace(Sha, "XYZ", StringComparison.Ordinal), FleetMessages.ConfigSchema), StringComparison.Ordinal);
        Assert.Contains("'predicted.goodput'", Refusal<ServedConfig>(config.Replace("\"goodput\":1", "\"goodput\":\"fast\"", StringComparison.Ordinal), FleetMessages.ConfigSchema), StringComparison.Ordinal);
        var metrics = FleetMessages.Metrics("x", 1, T, new MetricsMessage(30, 1, 1, 1, 0.5, 1, 2, null, null, false));
        Assert.Contains("'acceptance'", Refusal<MetricsMessage>(metrics.Replace("\"acceptance\":0.5", "\"acceptance\":1.5", StringComparison.Ordinal), FleetMessages.MetricsSchema), StringComparison.Ordinal);
        Assert.Contains("'requests' must be an integer", Refusal<MetricsMessage>(metrics.Replace("\"requests\":1", "\"requests\":1.5", StringComparison.Ordinal), FleetMessages.MetricsSchema), StringComparison.Ordinal);
        Assert.Contains("'tokens' is missing", Refusal<MetricsMessage>(metrics.Replace("\"tokens\":1,", string.Empty, StringComparison.Ordinal), FleetMessages.MetricsSchema), StringComparison.Ordinal);
        var status = FleetMessages.Status("x", 1, T, new StatusMessage(BoardState.Serving, "b", "h", "s", null, null));
        Assert.Contains("'state'", Refusal<StatusMessage>(status.Replace("serving", "dancing", StringComparison.Ordinal), FleetMessages.StatusSchema), StringComparison.Ordinal);
        Assert.Contains("'board' must be a string", Refusal<StatusMessage>(status.Replace("\"board\":\"b\"", "\"board\":null", StringComparison.Ordinal), FleetMessages.StatusSchema), StringComparison.Ordinal);
    }

    private static string Refusal<T>(string payload, string schema)
        where T : IContract => Assert.Throws<ContractException>(() => Contract.ReadEdge<T>(B(payload), schema, "x")).Message;

    [Fact]
    public void A_profile_whose_device_differs_from_the_sender_is_refused()
    {
        var profile = ProfileFixtures.ThreeDrafts(); // device pi5-lab-1
        var (_, body) = Contract.ReadEdge<ProfileMessage>(B(FleetMessages.Profile("other", 1, T, profile)), FleetMessages.ProfileSchema, "other");
        Assert.Equal(ContractFault.DeviceMismatch, Assert.Throws<ContractException>(() => FleetMessages.ReadProfile(body, "other")).Fault);
    }

    [Theory]
    [InlineData("""{"command":"reprofile"}""", "reprofile", null)]
    [InlineData("""{"schema":"configspec.edge.cmd","version":1,"command":"set-objective","objective":"energy","id":"c1"}""", "set-objective", null)]
    [InlineData("""{"command":"apply","draft":"stories260K-Q8_0","k":4}""", "apply", null)]
    [InlineData("""{"command":"reboot"}""", null, "'command'")]
    [InlineData("""{"command":"set-objective"}""", null, "'objective'")]
    [InlineData("""{"command":"apply","draft":"x"}""", null, "'k'")]
    [InlineData("""{"command":"apply","draft":"x","k":99}""", null, "'k'")]
    [InlineData("""{"command":"reprofile","version":7}""", null, "version")]
    [InlineData("""reprofile""", null, "not JSON")]
    [InlineData("""{"command":1}""", null, "'command' must be one of reprofile, set-objective, apply")]
    [InlineData("""{"command":"1"}""", null, "'command'")]
    [InlineData("""{"command":"reprofile","command":"apply"}""", null, "not JSON")]
    [InlineData("""{"command":"apply","draft":"x","k":"4"}""", null, "'k' must be an integer")]
    public void Commands_are_refused_unless_well_formed(string payload, string? command, string? error)
    {
        if (command is not null)
        {
            Assert.Equal(command, CommandMessage.Name(FleetMessages.ReadCommand(B(payload)).Command));
        }
        else
        {
            Assert.Contains(error!, Assert.Throws<ContractException>(() => FleetMessages.ReadCommand(B(payload))).Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Recommendation_round_trips()
    {
        var m = new RecommendationMessage("raspberry-pi-5", T, new Dictionary<string, RecommendedConfig>
        {
            ["goodput"] = new("d", "Q8_0", Sha, 6, 21.5, "tokens/s", 3, 0.4),
            ["energy"] = new("e", "Q4_0", new string('b', 64), 2, 0.05, "J/token", 2, 0.001),
        });
        var read = FleetMessages.ReadRecommendation(B(FleetMessages.Recommendation(m)));
        Assert.Equal(m.Board, read.Board);
        Assert.Equal(m.Time, read.Time);
        Assert.Equal(m.Objectives["goodput"], read.Objectives["goodput"]);
        Assert.Equal(m.Objectives["energy"], read.Objectives["energy"]);
    }

    [Theory]
    [InlineData("Raspberry Pi 5 Model B Rev 1.0", "raspberry-pi-5-model-b-rev-1-0")]
    [InlineData("  NVIDIA Jetson Orin Nano (8GB)  ", "nvidia-jetson-orin-nano-8gb")]
    [InlineData("///", "unknown")]
    public void Board_models_become_one_topic_level(string board, string key) => Assert.Equal(key, FleetTopics.BoardKey(board));

    [Fact]
    public void Board_topics_parse_back_to_device_and_kind()
    {
        Assert.Equal(("pi5-a", EdgeTopicKind.Metrics), FleetTopics.Parse(FleetTopics.Metrics("pi5-a")));
        Assert.Equal(("pi5-a", EdgeTopicKind.CommandResult), FleetTopics.Parse(FleetTopics.CommandResult("pi5-a")));
        Assert.Null(FleetTopics.Parse("configspec/v1/edge/pi5-a/reply"));
        Assert.Null(FleetTopics.Parse("configspec/v1/verifier/x/status"));
        Assert.Throws<ArgumentException>(() => FleetTopics.Status("a/b"));
    }

    [Theory]
    [InlineData("\"version\":1.5", ContractFault.UnsupportedVersion, "version 1.5")]
    [InlineData("\"version\":9223372036854775808", ContractFault.UnsupportedVersion, "9223372036854775808")]
    [InlineData("\"k\":2.5", ContractFault.InvalidField, "k")]
    [InlineData("\"board\":\"\\ud800\"", ContractFault.InvalidField, "'board' must be a string (it holds text that is not valid Unicode)")]
    public void A_type_confused_recommendation_is_refused_with_the_reason_not_an_exception_of_another_kind(string replacement, ContractFault reason, string mentions)
    {
        var valid = FleetMessages.Recommendation(new RecommendationMessage("Raspberry Pi 5", DateTimeOffset.UtcNow, new Dictionary<string, RecommendedConfig>(StringComparer.Ordinal)
        {
            ["goodput"] = new("d", "Q4_0", new string('a', 64), 2, 1, "tokens/s", 1, 0),
        }));
        var key = replacement[..(replacement.IndexOf(':', StringComparison.Ordinal) + 1)];
        var start = valid.IndexOf(key, StringComparison.Ordinal);
        Assert.True(start >= 0, valid);
        var end = valid.IndexOfAny([',', '}'], start);
        var broken = valid[..start] + replacement + valid[end..];
        var ex = Assert.Throws<ContractException>(() => FleetMessages.ReadRecommendation(System.Text.Encoding.UTF8.GetBytes(broken)));
        Assert.Equal(reason, ex.Fault);
        Assert.Contains(mentions, ex.Message, StringComparison.Ordinal);
    }
}
