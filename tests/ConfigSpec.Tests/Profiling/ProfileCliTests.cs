using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Tests.Cli;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Profiling;

/// <summary>profile → select → validate → report with the real models, a real verifier and a real browser.</summary>
public class ProfileCliTests
{
    public ProfileCliTests() => TestEnvironment.InitializeRuntime();

    /// <summary>A short local profile run; settings in <paramref name="more"/> replace the defaults (flags pass through).</summary>
    private static string[] Quick(string outFile, params string[] more)
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["--target"] = TestEnvironment.Model("stories260K.gguf"), ["--k-max"] = "4", ["--min-rounds"] = "10", ["--max-rounds"] = "40",
            ["--timing-rounds"] = "4", ["--tokens-per-prompt"] = "24", ["--idle-baseline"] = "0s", ["--out"] = outFile,
        };
        var flags = new List<string>();
        for (var i = 0; i < more.Length; i++)
        {
            if (i + 1 < more.Length && !more[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                settings[more[i]] = more[++i];
            }
            else
            {
                flags.Add(more[i]);
            }
        }

        return ["profile", .. settings.SelectMany(p => new[] { p.Key, p.Value }), .. flags];
    }

    [Fact]
    public async Task Profile_then_select_validate_and_report_agree_with_each_other()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var profilePath = Path.Combine(dir, "board.json");
        var q8 = TestEnvironment.Model("stories260K-Q8_0.gguf");
        var (exit, output, error) = await EdgeCliTests.Run(Quick(profilePath, "--drafts", $"{q8},{TestEnvironment.Model("stories260K-prune1234-F32.gguf")}",
            "--power", "estimate:board=rpi5"));
        Assert.True(exit == 0, error + output);
        Assert.Contains("power figures are ESTIMATED", output, StringComparison.Ordinal);

        var profile = ProfileJson.Load(profilePath);
        Assert.Equal(2, profile.Configurations.Count);
        var (good, bad) = (profile.Configurations[0], profile.Configurations[1]);
        Assert.Equal("Q8_0", good.Quant);
        Assert.Equal("F32", bad.Quant);
        Assert.True(good.AcceptanceByPosition[0] > 0.8, $"Q8_0 alpha_1 {good.AcceptanceByPosition[0]}");
        Assert.True(good.MeanAccepted.Mean > bad.MeanAccepted.Mean + 2, $"Q8_0 {good.MeanAccepted.Mean} vs prune1234 {bad.MeanAccepted.Mean}");
        Assert.All(profile.Configurations, c =>
        {
            Assert.InRange(c.Rounds, 10, 40);
            Assert.Equal(4, c.TimingByK.Count);
            Assert.True(c.DraftTokensPerSecond.Low <= c.DraftTokensPerSecond.Mean && c.DraftTokensPerSecond.Mean <= c.DraftTokensPerSecond.High);
            Assert.True(c.Power!.DraftWatts > 0);
            Assert.Equal(64, c.Sha256.Length);
        });
        Assert.True(profile.Power.Estimated);
        Assert.Equal("local", profile.Verifier.Kind);
        // The chain pass: pipelined blocks of K_max, 4 in flight, reach positions past K_max (Q8_0 is accepted ~99 %).
        var chain = good.Chain!;
        Assert.Equal((4, 4), (chain.K, chain.Depth));
        Assert.Equal(16, chain.AcceptanceByPosition.Count);
        Assert.True(chain.ReachedByPosition.Skip(4).Sum() > 0, string.Join(",", chain.ReachedByPosition));
        Assert.True(chain.ChainedVerify is { Rounds: > 0 }, "blocks sent chained to one in flight are timed");
        Assert.Contains("chain pass (K 4, D 4)", output, StringComparison.Ordinal);
        Assert.Equal(3, File.ReadAllLines(Path.ChangeExtension(profilePath, ".csv")).Length);

        // select --json: every (draft, K), the chosen one first.
        (exit, output, error) = await EdgeCliTests.Run("select", "--profile", profilePath, "--json");
        Assert.True(exit == 0, error);
        using var selection = JsonDocument.Parse(output);
        var ranked = selection.RootElement.GetProperty("ranked").EnumerateArray().ToList();
        Assert.Equal(8, ranked.Count);
        var chosen = selection.RootElement.GetProperty("chosen");
        Assert.Equal(ranked.Max(r => r.GetProperty("goodput_tokens_per_s").GetDouble()), chosen.GetProperty("goodput_tokens_per_s").GetDouble());
        Assert.False(string.IsNullOrWhiteSpace(chosen.GetProperty("reason").GetString()));
        foreach (var field in new[] { "draft", "quant", "k", "goodput_tokens_per_s", "tokens_per_usd", "joules_per_token", "pareto" })
        {
            Assert.True(ranked[0].TryGetProperty(field, out _), field);
        }

        // validate: real generation against the prediction.
        (exit, output, error) = await EdgeCliTests.Run("validate", "--profile", profilePath, "--draft", q8, "--k", "4",
            "--target", TestEnvironment.Model("stories260K.gguf"), "--tokens", "96", "--power", "estimate:board=rpi5", "--json");
        Assert.True(exit == 0, error);
        using var validation = JsonDocument.Parse(output);
        var predicted = validation.RootElement.GetProperty("predicted");
        var measured = validation.RootElement.GetProperty("measured");
        Assert.InRange(measured.GetProperty("expected_accepted").GetDouble(), predicted.GetProperty("expected_accepted").GetDouble() - 1, 4);
        // The error is signed, in percent of the prediction. (How close they come is a benchmark, bench.sh section 8, not a timed test.)
        var predictedGoodput = predicted.GetProperty("goodput_tokens_per_s").GetDouble();
        Assert.Equal((measured.GetProperty("goodput_tokens_per_s").GetDouble() - predictedGoodput) / predictedGoodput * 100,
            validation.RootElement.GetProperty("goodput_error_pct").GetDouble(), 6);
        Assert.True(measured.GetProperty("goodput_tokens_per_s").GetDouble() > 0);
        Assert.True(measured.GetProperty("joules_per_token").GetDouble() > 0);
        Assert.Equal(96, measured.GetProperty("tokens").GetInt32());
        Assert.False(validation.RootElement.TryGetProperty("predicted_generation_goodput_tokens_per_s", out _), "sequential rounds are their steady state");

        // validate --pipeline: measured over the generations' spans, so the prediction is for generations of those lengths.
        (exit, output, error) = await EdgeCliTests.Run("validate", "--profile", profilePath, "--draft", q8, "--k", "2", "--pipeline", "3",
            "--target", TestEnvironment.Model("stories260K.gguf"), "--tokens", "64", "--tokens-per-prompt", "32", "--json");
        Assert.True(exit == 0, error);
        using var pipelined = JsonDocument.Parse(output);
        Assert.Equal(3, pipelined.RootElement.GetProperty("pipeline").GetInt32());
        var forLength = pipelined.RootElement.GetProperty("predicted_generation_goodput_tokens_per_s").GetDouble();
        Assert.True(forLength > 0 && double.IsFinite(forLength));
        Assert.Equal((pipelined.RootElement.GetProperty("measured").GetProperty("goodput_tokens_per_s").GetDouble() - forLength) / forLength * 100,
            pipelined.RootElement.GetProperty("goodput_error_pct").GetDouble(), 6);
        Assert.Equal(64, pipelined.RootElement.GetProperty("measured").GetProperty("tokens").GetInt32());

        // report: the page renders in a real browser, its charts are laid out, and its numbers are the selection's.
        var reportDir = Path.Combine(dir, "report");
        (exit, _, error) = await EdgeCliTests.Run("report", "--profile", profilePath, "--out", reportDir);
        Assert.True(exit == 0, error);
        Assert.True(File.Exists(Path.Combine(reportDir, "ranked.csv")));
        await using var browser = await HeadlessChromium.OpenAsync(new Uri(Path.Combine(reportDir, "report.html")).AbsoluteUri);
        var page = await browser.EvaluateAsync("""
            JSON.stringify({
              charts: [...document.querySelectorAll('svg.chart')].map(s => ({ id: s.dataset.chart, w: s.getBoundingClientRect().width,
                h: s.getBoundingClientRect().height, points: s.querySelectorAll('circle').length, stars: [...s.querySelectorAll('path.optimum')].map(p => +p.dataset.value) })),
              top: [...document.querySelectorAll('#top-goodput tr[data-k]')].map(r => ({ draft: r.dataset.draft, k: +r.dataset.k,
                goodput: +r.querySelector('[data-field=goodput_tokens_per_s]').dataset.value, shown: r.getBoundingClientRect().height > 0 })),
              estimated: !!document.getElementById('estimated-power'),
              scripts: document.scripts.length
            })
            """);
        using var dom = JsonDocument.Parse(page!);
        var charts = dom.RootElement.GetProperty("charts").EnumerateArray().ToDictionary(c => c.GetProperty("id").GetString()!);
        Assert.Equal(["cost", "energy", "goodput", "pareto"], charts.Keys.Order(StringComparer.Ordinal));
        Assert.All(charts.Values, c => Assert.True(c.GetProperty("w").GetDouble() > 300 && c.GetProperty("h").GetDouble() > 200, c.ToString()));
        Assert.Equal(8, charts["goodput"].GetProperty("points").GetInt32());
        Assert.Equal(8, charts["pareto"].GetProperty("points").GetInt32());
        var bestPerDraft = ranked.GroupBy(r => r.GetProperty("draft").GetString()).Select(g => g.Max(r => r.GetProperty("goodput_tokens_per_s").GetDouble())).Order().ToList();
        var stars = charts["goodput"].GetProperty("stars").EnumerateArray().Select(s => s.GetDouble()).Order().ToList();
        Assert.Equal(bestPerDraft.Count, stars.Count);
        for (var i = 0; i < stars.Count; i++)
        {
            Assert.Equal(bestPerDraft[i], stars[i], 9);
        }

        var top = dom.RootElement.GetProperty("top").EnumerateArray().ToList();
        Assert.Equal(5, top.Count);
        for (var i = 0; i < top.Count; i++)
        {
            Assert.True(top[i].GetProperty("shown").GetBoolean());
            Assert.Equal(ranked[i].GetProperty("draft").GetString(), top[i].GetProperty("draft").GetString());
            Assert.Equal(ranked[i].GetProperty("k").GetInt32(), top[i].GetProperty("k").GetInt32());
            Assert.Equal(ranked[i].GetProperty("goodput_tokens_per_s").GetDouble(), top[i].GetProperty("goodput").GetDouble(), 9);
        }

        Assert.True(dom.RootElement.GetProperty("estimated").GetBoolean());
        Assert.Equal(0, dom.RootElement.GetProperty("scripts").GetInt32());

        // A title that names the machine; a Pareto legend with a swatch per draft and the point kinds; at 1280 px nothing
        // overflows the window (the measurements table scrolls inside its own box if it must) and every column shows.
        Assert.StartsWith("ConfigSpec profile of ", await browser.EvaluateAsync("document.title"), StringComparison.Ordinal);
        Assert.DoesNotContain("(unknown)", await browser.EvaluateAsync("document.title"), StringComparison.Ordinal);
        Assert.Equal("5", await browser.EvaluateAsync("document.querySelectorAll('#pareto-legend .swatch').length")); // two drafts, filled, hollow, the front line
        var (_, pngWidth, _) = await browser.ScreenshotAsync();
        Assert.Equal(1280, pngWidth);
        var fit = await browser.EvaluateAsync("""
            (() => { const t = document.getElementById('measurements'), w = t.parentElement.getBoundingClientRect();
              const cell = t.querySelector('tr:last-child td:last-child'), last = cell.getBoundingClientRect();
              return JSON.stringify({ fits: w.right <= document.documentElement.clientWidth && last.right <= w.right + 0.5, box: w.right, cell: last.right, text: cell.textContent }); })()
            """);
        using var fitted = JsonDocument.Parse(fit!);
        Assert.True(fitted.RootElement.GetProperty("fits").GetBoolean(), fit);
        Assert.Matches("^(intervals met|round budget)$", fitted.RootElement.GetProperty("text").GetString());
    }

    [Fact]
    public async Task Resume_keeps_finished_configurations_and_an_existing_profile_is_not_overwritten_by_accident()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var profilePath = Path.Combine(dir, "board.json");
        var q8 = TestEnvironment.Model("stories260K-Q8_0.gguf");
        var q4 = TestEnvironment.Model("stories260K-Q4_0.gguf");
        var (exit, _, error) = await EdgeCliTests.Run(Quick(profilePath, "--drafts", q8, "--timing-rounds", "0"));
        Assert.True(exit == 0, error);
        var first = ProfileJson.Load(profilePath).Configurations.Single();

        (exit, _, error) = await EdgeCliTests.Run(Quick(profilePath, "--drafts", $"{q8},{q4}", "--timing-rounds", "0"));
        Assert.Equal(2, exit);
        Assert.Contains("exists: add --resume", error, StringComparison.Ordinal);

        (exit, var output, error) = await EdgeCliTests.Run(Quick(profilePath, "--drafts", $"{q8},{q4}", "--timing-rounds", "0", "--resume"));
        Assert.True(exit == 0, error);
        Assert.Contains("already in the profile, kept", output, StringComparison.Ordinal);
        var resumed = ProfileJson.Load(profilePath);
        Assert.Equal(2, resumed.Configurations.Count);
        Assert.Equal(first, resumed.Configurations[0] with { AcceptanceByPosition = first.AcceptanceByPosition, ReachedByPosition = first.ReachedByPosition, TimingByK = first.TimingByK, DraftSecondsByK = first.DraftSecondsByK, Chain = first.Chain });
        Assert.Equal(first.AcceptanceByPosition, resumed.Configurations[0].AcceptanceByPosition);
        Assert.Equal(first.Chain!.ReachedByPosition, resumed.Configurations[0].Chain!.ReachedByPosition);
        Assert.Equal("Q4_0", resumed.Configurations[1].Quant);

        (exit, _, error) = await EdgeCliTests.Run(Quick(profilePath, "--drafts", q4, "--k-max", "3", "--resume"));
        Assert.Equal(2, exit);
        Assert.Contains("profiled with --k-max 4; this run asks for 3", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Drafts_derived_from_a_base_model_are_quantised_then_profiled()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var profilePath = Path.Combine(dir, "board.json");
        var (exit, output, error) = await EdgeCliTests.Run(Quick(profilePath, "--base", TestEnvironment.Model("stories260K.gguf"), "--quants", "Q8_0,Q4_0",
            "--timing-rounds", "0", "--max-rounds", "12"));
        Assert.True(exit == 0, error + output);
        var profile = ProfileJson.Load(profilePath);
        Assert.Equal(["Q8_0", "Q4_0"], profile.Configurations.Select(c => c.Quant));
        Assert.True(File.Exists(Path.Combine(dir, "drafts", "stories260K-Q8_0.gguf")));
        // The derived Q8_0 is the published one, byte for byte.
        Assert.Equal("ff8701a45da28293b7af11a695ab33575b692e9b109a2eae6238c906c31415da", profile.Configurations[0].Sha256);
    }

    [Fact]
    public async Task Profiling_over_mqtt_splits_the_round_trip_into_network_and_server_time()
    {
        using var broker = new MosquittoBroker();
        using var verifier = new VerifierProcess("profile-verifier", broker.Uri);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!verifier.Log.Contains("serving target", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        var dir = TestEnvironment.NewTemporaryDirectory();
        var profilePath = Path.Combine(dir, "board.json");
        var (exit, output, error) = await EdgeCliTests.Run("profile", "--verifier", broker.Uri.ToString(), "--target-id", "stories260K",
            "--drafts", TestEnvironment.Model("stories260K-Q4_K_M.gguf"), "--k-max", "3", "--min-rounds", "10", "--max-rounds", "30", "--timing-rounds", "3",
            "--tokens-per-prompt", "24", "--device-id", "board-7", "--out", profilePath);
        Assert.True(exit == 0, error + output + verifier.Log);
        var profile = ProfileJson.Load(profilePath);
        Assert.Equal("mqtt", profile.Verifier.Kind);
        Assert.Equal("stories260K", profile.Verifier.Target);
        Assert.Equal($"mqtt://127.0.0.1:{broker.Port}", profile.Verifier.Broker);
        Assert.Equal("board-7", profile.Device.Id);
        Assert.Equal("none", profile.Power.Source);
        var verify = profile.Configurations.Single().Verify;
        Assert.True(verify.ServerMedian > 0 && verify.RoundTripMedian > verify.ServerMedian, $"round trip {verify.RoundTripMedian}, server {verify.ServerMedian}");
        Assert.True(verify.RoundTripP95 >= verify.RoundTripMedian);

        // Without power figures the energy objective says what to do.
        (exit, _, error) = await EdgeCliTests.Run("select", "--profile", profilePath, "--objective", "energy");
        Assert.Equal(2, exit);
        Assert.Contains("profile again with --power", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--objective", "fastest", "--objective 'fastest' is not known")]
    [InlineData("--price-per-mtok", "0", "--price-per-mtok 0 must be a positive number")]
    [InlineData("--price-per-mtok", "-2", "--price-per-mtok -2 must be a positive number")]
    [InlineData("--min-goodput", "1e9", "--min-goodput 1000000000 excludes 24 of 24")]
    [InlineData("--billed-tokens", "k+2", "--billed-tokens 'k+2' must be k or k+1")]
    [InlineData("--weights", "1,2", "--weights '1,2' must be three")]
    public async Task Select_refuses_bad_settings_with_exit_2(string option, string value, string message)
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var path = Path.Combine(dir, "p.json");
        ProfileJson.Save(ProfileFixtures.ThreeDrafts(), path);
        var (exit, _, error) = await EdgeCliTests.Run("select", "--profile", path, option, value);
        Assert.Equal(2, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
        Assert.Single(error.Trim().Split('\n'));
    }

    [Fact]
    public async Task Select_text_output_marks_the_front_and_explains_and_sweeps_the_delay()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var path = Path.Combine(dir, "p.json");
        ProfileJson.Save(ProfileFixtures.ThreeDrafts(), path);
        var (exit, output, error) = await EdgeCliTests.Run("select", "--profile", path, "--sweep-t-verify", "1ms,50ms,500ms", "--max-memory-mb", "700");
        Assert.True(exit == 0, error);
        Assert.Contains("chosen: ", output, StringComparison.Ordinal);
        Assert.Contains("why: ", output, StringComparison.Ordinal);
        var sweep = output.Split('\n').Where(l => l.StartsWith("T_verify", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, sweep.Count);
        var ks = sweep.Select(l => int.Parse(l[(l.IndexOf("K=", StringComparison.Ordinal) + 2)..].Split(':')[0], CultureInfo.InvariantCulture)).ToList();
        Assert.True(ks[2] >= ks[0], string.Join(" | ", sweep));
    }

    /// <summary>select, report and the ranked CSV with pipelines on offer: D in every row, one chart series per draft and D.</summary>
    [Fact]
    public async Task Select_and_report_with_pipelines_show_D()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var path = Path.Combine(dir, "p.json");
        ProfileJson.Save(ProfileFixtures.ThreeDrafts(wait: 0.2), path);
        var (exit, output, error) = await EdgeCliTests.Run("select", "--profile", path, "--pipeline", "3", "--json");
        Assert.True(exit == 0, error);
        using (var doc = System.Text.Json.JsonDocument.Parse(output))
        {
            var ranked = doc.RootElement.GetProperty("ranked").EnumerateArray().ToList();
            Assert.Equal(3 * 8 * 3, ranked.Count);
            Assert.Equal([1, 2, 3], ranked.Select(c => c.GetProperty("pipeline").GetInt32()).Distinct().Order());
            Assert.True(doc.RootElement.GetProperty("chosen").GetProperty("pipeline").GetInt32() > 1, output);
        }

        (exit, output, error) = await EdgeCliTests.Run("select", "--profile", path, "--pipeline", "3");
        Assert.True(exit == 0, error);
        Assert.Matches(@"chosen: \S+ \(\S+\) K=\d+ D=[23]", output);
        (exit, _, error) = await EdgeCliTests.Run("report", "--profile", path, "--out", Path.Combine(dir, "r"), "--pipeline", "3");
        Assert.True(exit == 0, error);
        var html = File.ReadAllText(Path.Combine(dir, "r", "report.html"));
        Assert.Contains("<th>D</th>", html, StringComparison.Ordinal);
        Assert.Contains("qwen-0.5b (Q8_0) D=3", html, StringComparison.Ordinal);
        var csv = File.ReadAllLines(Path.Combine(dir, "r", "ranked.csv"));
        Assert.EndsWith(",pipeline", csv[0], StringComparison.Ordinal);
        Assert.Equal(3 * 8 * 3, csv.Length - 1);
        (exit, _, error) = await EdgeCliTests.Run("select", "--profile", path, "--pipeline", "17");
        Assert.Equal(2, exit);
        Assert.Contains("--pipeline 17 is out of range (1..16)", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_chain_pass_can_be_left_out_and_an_out_of_range_depth_is_refused()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var path = Path.Combine(dir, "board.json");
        var (exit, output, error) = await EdgeCliTests.Run(Quick(path, "--drafts", TestEnvironment.Model("stories260K-Q8_0.gguf"), "--chain-depth", "1"));
        Assert.True(exit == 0, error + output);
        Assert.Null(ProfileJson.Load(path).Configurations[0].Chain);
        Assert.DoesNotContain("\"chain\"", File.ReadAllText(path), StringComparison.Ordinal);
        (exit, _, error) = await EdgeCliTests.Run(Quick(path, "--drafts", TestEnvironment.Model("stories260K-Q8_0.gguf"), "--chain-depth", "17", "--force"));
        Assert.Equal(2, exit);
        Assert.Contains("--chain-depth 17 is out of range: use 1..16", error, StringComparison.Ordinal);
    }

        [Fact]
    public async Task Validate_and_report_refuse_what_they_cannot_use()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var path = Path.Combine(dir, "p.json");
        ProfileJson.Save(ProfileFixtures.ThreeDrafts(), path);
        var (exit, _, error) = await EdgeCliTests.Run("validate", "--profile", path, "--draft", TestEnvironment.Model("stories260K-Q8_0.gguf"), "--k", "2",
            "--target", TestEnvironment.Model("stories260K.gguf"));
        Assert.Equal(2, exit);
        Assert.Contains("is not in the profile (profiled: qwen-0.5b (Q8_0)", error, StringComparison.Ordinal);
        (exit, _, error) = await EdgeCliTests.Run("validate", "--profile", path, "--draft", TestEnvironment.Model("stories260K-Q8_0.gguf"), "--k", "9",
            "--target", TestEnvironment.Model("stories260K.gguf"));
        Assert.Equal(2, exit);
        Assert.Contains("--k 9 is out of range", error, StringComparison.Ordinal);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"version\": 1", "\"version\": 7", StringComparison.Ordinal));
        (exit, _, error) = await EdgeCliTests.Run("report", "--profile", path, "--out", Path.Combine(dir, "r"));
        Assert.Equal(2, exit);
        Assert.Contains("version 7 is not supported", error, StringComparison.Ordinal);
    }
}

/// <summary>Statistical stopping, a Dolly-style prompt file, and the lab campaign script, each run for real.</summary>
public class ProfileCampaignTests
{
    public ProfileCampaignTests() => TestEnvironment.InitializeRuntime();

    [Fact]
    public async Task Profiling_stops_once_the_intervals_are_tight_and_every_prompt_was_used()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var prompts = Path.Combine(dir, "dolly.jsonl");
        File.WriteAllLines(prompts,
        [
            """{"instruction": "Tell me a story about a cat.", "context": "", "response": "", "category": "creative_writing"}""",
            """{"instruction": "Who found the ball?", "context": "Tim and Sue played in the park. Sue found a red ball.", "response": "Sue", "category": "closed_qa"}""",
            """{"instruction": "Name three animals on a farm.", "context": "", "response": "", "category": "brainstorming"}""",
        ]);
        var profilePath = Path.Combine(dir, "board.json");
        var (exit, output, error) = await EdgeCliTests.Run("profile", "--target", TestEnvironment.Model("stories260K.gguf"),
            "--drafts", TestEnvironment.Model("stories260K-Q8_0.gguf"), "--k-max", "4", "--tolerance", "0.5", "--min-rounds", "5", "--max-rounds", "400",
            "--timing-rounds", "0", "--tokens-per-prompt", "24", "--prompts", prompts, "--out", profilePath);
        Assert.True(exit == 0, error + output);
        var profile = ProfileJson.Load(profilePath);
        var c = profile.Configurations.Single();
        Assert.True(c.Converged);
        Assert.InRange(c.Rounds, 5, 399);
        Assert.True(c.Prompts >= 3, $"{c.Prompts} prompts");
        Assert.True(c.DraftTokensPerSecond.RelativeHalfWidth <= 0.5 && c.MeanAccepted.IsWithin(0.5, floor: 1));
        Assert.Equal(prompts, profile.Settings.PromptSource);
        Assert.Equal(3, profile.Settings.PromptCount);
        Assert.Empty(c.TimingByK);
    }

    [Fact]
    public async Task The_lab_sweep_script_writes_a_dated_campaign_folder()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var edge = Path.Combine(dir, "configspec-edge");
        File.WriteAllText(edge, $"#!/bin/sh\nexec dotnet '{TestEnvironment.ProductBinary("ConfigSpec.Edge", "configspec-edge.dll")}' --llama-dir '{TestEnvironment.LlamaDirectory}' \"$@\"\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(edge, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var m = TestEnvironment.ModelsDirectory;
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[]
        {
            Path.Combine(TestEnvironment.RepositoryRoot, "scripts", "lab-sweep.sh"), "--quick", "--out", dir, "--device-id", "lab-board", "--k-max", "4",
            "--power", "estimate:board=rpi4b", "--target", Path.Combine(m, "stories260K.gguf"),
            "--drafts", $"{Path.Combine(m, "stories260K-Q8_0.gguf")},{Path.Combine(m, "stories260K-Q4_0.gguf")}",
        })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["CONFIGSPEC_EDGE"] = edge;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = await process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)), "lab-sweep.sh did not finish");
        Assert.True(process.ExitCode == 0, stderr + await stdout);
        var run = Assert.Single(Directory.GetDirectories(dir, "lab-board-*"));
        Assert.Matches(@"lab-board-\d{8}$", run);
        Assert.Equal(2, ProfileJson.Load(Path.Combine(run, "profile.json")).Configurations.Count);
        foreach (var file in new[] { "profile.csv", "select-goodput.json", "select-cost.json", "select-energy.json", "select-weighted.json", "delay-sweep.txt", "report/report.html", "README.txt" })
        {
            Assert.True(File.Exists(Path.Combine(run, file)), file);
        }

        using var goodput = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "select-goodput.json")));
        Assert.Equal(8, goodput.RootElement.GetProperty("ranked").GetArrayLength());
        Assert.Equal(6, File.ReadAllLines(Path.Combine(run, "delay-sweep.txt")).Count(l => l.StartsWith("T_verify", StringComparison.Ordinal)));
    }
}
