using System.Text.Json;
using System.Text.Json.Nodes;
using ConfigSpec.Interop;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Profiling.Prompts;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Profiling;

public class ProfileFormatTests
{
    [Fact]
    public void A_profile_survives_a_round_trip_through_its_json()
    {
        var three = ProfileFixtures.ThreeDrafts();
        var profile = three with { Configurations = [three.Configurations[0] with { Chain = ProfileFixtures.Chain(0.9) }, .. three.Configurations.Skip(1)] };
        var text = ProfileJson.Serialize(profile);
        var back = ProfileJson.Parse(text);
        Assert.Equal(profile.Device, back.Device);
        Assert.Equal(profile.Power, back.Power);
        Assert.Equal(profile.Settings, back.Settings);
        Assert.Equal(profile.Configurations.Count, back.Configurations.Count);
        for (var i = 0; i < profile.Configurations.Count; i++)
        {
            var a = profile.Configurations[i];
            var b = back.Configurations[i];
            Assert.Equal((a.Draft, a.Quant, a.Sha256), (b.Draft, b.Quant, b.Sha256));
            Assert.Equal(a.AcceptanceByPosition, b.AcceptanceByPosition);
            Assert.Equal(a.DraftTokensPerSecond, b.DraftTokensPerSecond);
            Assert.Equal(a.Verify, b.Verify);
            Assert.Equal(a.Power, b.Power);
            Assert.Equal(a.Chain is null, b.Chain is null);
            if (a.Chain is { } chain)
            {
                Assert.Equal((chain.K, chain.Depth, chain.Blocks, chain.ChainedVerify), (b.Chain!.K, b.Chain.Depth, b.Chain.Blocks, b.Chain.ChainedVerify));
                Assert.Equal(chain.AcceptanceByPosition, b.Chain.AcceptanceByPosition);
                Assert.Equal(chain.ReachedByPosition, b.Chain.ReachedByPosition);
            }
        }

        Assert.Contains("\"chain\"", text, StringComparison.Ordinal);

        Assert.Equal(text, ProfileJson.Serialize(back));
    }

    private static JsonObject Chain(int depth, double rate) => new()
    {
        ["k"] = 8, ["depth"] = depth, ["blocks"] = 10, ["acceptance_by_position"] = new JsonArray(0.9, rate), ["reached_by_position"] = new JsonArray(10, 9),
    };

        private static string Mutate(Action<JsonObject> change)
    {
        var node = JsonNode.Parse(ProfileJson.Serialize(ProfileFixtures.ThreeDrafts()))!.AsObject();
        change(node);
        return node.ToJsonString();
    }

    [Theory]
    [InlineData("version", "version 2 is not supported")]
    [InlineData("schema", "schema is 'something.else'")]
    [InlineData("missing", "field 'device' is missing")]
    [InlineData("type", "field 'configurations[1].rounds' must be an integer")]
    [InlineData("zero", "configurations[0] (qwen-0.5b Q8_0) has zero samples")]
    [InlineData("alpha", "acceptance_by_position has 3 entries, expected k_max = 8")]
    [InlineData("rate", "rate outside 0..1")]
    [InlineData("chain-rate", "chain.acceptance_by_position")]
    [InlineData("chain-depth", "chain.depth")]
    [InlineData("chain-type", "chain")]
    public void Bad_profiles_are_refused_naming_the_field(string fault, string message)
    {
        var text = Mutate(node =>
        {
            var configurations = node["configurations"]!.AsArray();
            switch (fault)
            {
                case "version": node["version"] = 2; break;
                case "schema": node["schema"] = "something.else"; break;
                case "missing": node.Remove("device"); break;
                case "type": configurations[1]!["rounds"] = "many"; break;
                case "zero": configurations[0]!["rounds"] = 0; break;
                case "alpha": configurations[2]!["acceptance_by_position"] = new JsonArray(0.5, 0.4, 0.3); break;
                case "rate": configurations[2]!["acceptance_by_position"]!.AsArray()[0] = 1.5; break;
                case "chain-rate": configurations[0]!["chain"] = Chain(depth: 4, rate: 1.5); break;
                case "chain-depth": configurations[0]!["chain"] = Chain(depth: 0, rate: 0.5); break;
                case "chain-type": configurations[0]!["chain"] = "deep"; break;
            }
        });
        var ex = Assert.Throws<ProfileFormatException>(() => ProfileJson.Parse(text, "lab.json"));
        Assert.Contains("profile lab.json", ex.Message, StringComparison.Ordinal);
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Not_json_and_absent_files_are_refused()
    {
        Assert.Contains("not JSON", Assert.Throws<ProfileFormatException>(() => ProfileJson.Parse("{ nope", "x.json")).Message, StringComparison.Ordinal);
        Assert.Contains("cannot read", Assert.Throws<ProfileFormatException>(() => ProfileJson.Load("/nonexistent/profile.json")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Saving_is_atomic_and_leaves_no_temporary_file()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var path = Path.Combine(dir, "p.json");
        ProfileJson.Save(ProfileFixtures.ThreeDrafts(), path);
        ProfileJson.Save(ProfileFixtures.ThreeDrafts(0.2), path);
        Assert.Equal(0.2, ProfileJson.Load(path).Configurations[0].Verify.WaitMean, 12);
        Assert.Single(Directory.GetFiles(dir));
    }

    [Fact]
    public void The_built_in_prompts_cover_the_dolly_categories()
    {
        var set = PromptSet.BuiltIn();
        Assert.True(set.Prompts.Count >= 20);
        Assert.Superset(new HashSet<string> { "open_qa", "brainstorming", "summarization", "creative_writing", "classification", "information_extraction" },
            set.Categories.ToHashSet());
        // Interleaving visits every category within the first round robin.
        Assert.Equal(6, set.Interleaved().Take(6).Select(p => p.Category).Distinct().Count());
        Assert.Equal(set.Prompts.Count, set.Interleaved().Count);
    }

    [Fact]
    public void Dolly_jsonl_is_read_with_context_and_category()
    {
        var text = """
            {"instruction": "When did Virgin Australia start operating?", "context": "Virgin Australia commenced services on 31 August 2000.", "response": "31 August 2000", "category": "closed_qa"}

            {"instruction": "Which is a species of fish? Tope or Rope", "context": "", "response": "Tope", "category": "classification"}
            """;
        var set = PromptSet.Parse(text, "dolly.jsonl");
        Assert.Equal(2, set.Prompts.Count);
        Assert.Equal("When did Virgin Australia start operating?\n\nVirgin Australia commenced services on 31 August 2000.", set.Prompts[0].Text);
        Assert.Equal("Which is a species of fish? Tope or Rope", set.Prompts[1].Text);
        Assert.Equal("classification", set.Prompts[1].Category);
    }

    [Theory]
    [InlineData("{\"context\": \"x\"}", "line 1: field 'instruction' is missing")]
    [InlineData("{\"instruction\": \"a\"}\n[1, 2]", "line 2: a message must be a JSON object")]
    [InlineData("{\"instruction\": \"  \"}", "line 1: field 'instruction' must be a non-empty string")]
    [InlineData("{\"instruction\": \"a\"}\n{broken", "line 2: not JSON")]
    [InlineData("{\"instruction\": 5}", "'instruction' must be a string")]
    [InlineData("\n\n", "no prompts")]
    public void Bad_prompt_files_name_the_line(string text, string message) =>
        Assert.Contains(message, Assert.Throws<ConfigSpecException>(() => PromptSet.Parse(text, "p.jsonl")).Message, StringComparison.Ordinal);
}
