using System.Text.Json;
using ConfigSpec.Edge.Cli;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Adaptive;

/// <summary>bench-policy in both modes: simulation from a profile, and real models through a real verifier behind the in-process delay proxy.</summary>
public sealed class BenchPolicyCliTests
{
    [Fact]
    public async Task Real_mode_runs_every_policy_through_the_proxy_and_reports_in_the_issue_shape()
    {
        using var broker = new MosquittoBroker();
        using var verifier = new VerifierProcess("bench-policy-verifier", broker.Uri);
        await verifier.WaitForOutputAsync("serving target", TimeSpan.FromSeconds(60));
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await EdgeCli.RunAsync(["--llama-dir", TestEnvironment.LlamaDirectory, "bench-policy", "--verifier", broker.Uri.ToString(),
            "--draft-file", TestEnvironment.Model("stories260K-Q8_0.gguf"), "--k-max", "3", "--delay", "fixed:2", "--tokens", "100",
            "--policies", "static:1,ucb-specstop,ucb-specstop:probe,oracle", "--parallel", "3", "--draft-tokens-per-s", "100", "--json"], output, error);
        Assert.True(code == 0, error.ToString());
        using var doc = JsonDocument.Parse(output.ToString());
        var policies = doc.RootElement.GetProperty("policies").EnumerateArray().ToList();
        Assert.Equal(["static:1", "ucb-specstop", "ucb-specstop:probe", "oracle"], policies.Select(p => p.GetProperty("policy").GetString()));
        Assert.Equal(0, policies[3].GetProperty("regret_pct").GetDouble());
        // Drafting held to 100 tokens/s: static:1 spends at least 10 ms per round drafting, plus the 4 ms round trip, for at
        // most 2 tokens (unpaced, the shipped draft takes well under 1 ms).
        Assert.True(policies[0].GetProperty("mean_ms_per_token").GetDouble() >= 7, output.ToString());
        Assert.InRange(policies[2].GetProperty("mean_k").GetDouble(), 1, 3);
        Assert.InRange(policies[0].GetProperty("mean_k").GetDouble(), 0.9, 1.0); // a generation's last round may draft nothing
        Assert.InRange(policies[1].GetProperty("mean_k").GetDouble(), 1, 3);
        Assert.All(policies, p => Assert.True(p.GetProperty("mean_ms_per_token").GetDouble() > 0));
        Assert.All(policies, p => Assert.InRange(p.GetProperty("acceptance").GetDouble(), 0, 1));
        Assert.StartsWith("static:", doc.RootElement.GetProperty("best_static").GetProperty("policy").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Real_mode_with_a_pipeline_runs_every_policy_with_blocks_in_flight()
    {
        using var broker = new MosquittoBroker();
        using var verifier = new VerifierProcess("bench-policy-pipe-verifier", broker.Uri);
        await verifier.WaitForOutputAsync("serving target", TimeSpan.FromSeconds(60));
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await EdgeCli.RunAsync(["--llama-dir", TestEnvironment.LlamaDirectory, "bench-policy", "--verifier", broker.Uri.ToString(),
            "--draft-file", TestEnvironment.Model("stories260K-Q4_0.gguf"), "--k-max", "3", "--delay", "fixed:20", "--tokens", "80",
            "--policies", "static:2,ucb-specstop,oracle", "--parallel", "3", "--draft-tokens-per-s", "200", "--pipeline", "3"], output, error);
        Assert.True(code == 0, error.ToString());
        var text = output.ToString();
        Assert.Contains("pipelined: up to 3 blocks in flight", text, StringComparison.Ordinal);
        foreach (var policy in new[] { "static:2", "ucb-specstop", "oracle" })
        {
            var row = text.Split('\n').First(l => l.StartsWith(policy + " ", StringComparison.Ordinal)); // the table's row comes first
            var msPerToken = double.Parse(row.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
            // 40 ms round trip; with blocks in flight a token costs less than a sequential round of 2 drafts would (≥ 50 ms for ≤ 3 tokens).
            Assert.InRange(msPerToken, 1, 40);
        }
    }

    [Fact]
    public async Task Simulation_reports_every_policy_and_its_chart_lays_out_one_panel_per_adaptive_policy_in_a_browser()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var profilePath = Path.Combine(dir, "board.json");
        var (exit, output, error) = await Cli.EdgeCliTests.Run("profile", "--target", TestEnvironment.Model("stories260K.gguf"),
            "--drafts", TestEnvironment.Model("stories260K-Q4_0.gguf"), "--k-max", "8", "--max-rounds", "150", "--timing-rounds", "0", "--out", profilePath);
        Assert.True(exit == 0, error + output);
        var (csv, svg) = (Path.Combine(dir, "rounds.csv"), Path.Combine(dir, "k.svg"));
        (exit, output, error) = await Cli.EdgeCliTests.Run("bench-policy", "--simulate", "--profile", profilePath, "--draft-tokens-per-s", "25",
            "--delay", "markov:20,150,3", "--tokens", "3000", "--csv", csv, "--svg", svg);
        Assert.True(exit == 0, error + output);
        string[] policies = ["static:2", "static:6", "profile", "confidence:0.6", "ucb-specstop", "ucb-specstop:probe", "oracle"];
        foreach (var policy in policies)
        {
            Assert.Matches($"(?m)^{System.Text.RegularExpressions.Regex.Escape(policy)} +[0-9.]+ ", output);
        }

        Assert.Matches("ucb-specstop:probe: [+-][0-9.]+% from the oracle", output);
        var rows = File.ReadAllLines(csv);
        Assert.Equal("policy,time_s,k,drafted,accepted,round_ms,delay_ms", rows[0]);
        Assert.Equal(policies, rows.Skip(1).Select(r => r.Split(',')[0]).Distinct());
        Assert.Equal(["150", "20"], rows.Skip(1).Select(r => r.Split(',')[6]).Distinct().Order(StringComparer.Ordinal));

        await using var browser = await HeadlessChromium.OpenAsync(new Uri(svg).AbsoluteUri);
        Assert.Equal("profile|confidence:0.6|ucb-specstop|ucb-specstop:probe|oracle",
            await browser.EvaluateAsync("[...document.querySelectorAll('g.panel')].map(g => g.dataset.policy).join('|')"));
        // Each panel: its K line and its delay area lie inside its frame and span most of its width; the delay area
        // has height (the delay switches); panels do not overlap; the time axis is labelled 0..60 s.
        var check = await browser.EvaluateAsync("""
            (() => {
              const panels = [...document.querySelectorAll('g.panel')];
              const bad = [];
              let previousBottom = -1;
              for (const g of panels) {
                const f = g.querySelector('rect.frame').getBBox(), k = g.querySelector('path.k').getBBox(), d = g.querySelector('path.delay').getBBox();
                const inside = b => b.x >= f.x - 1 && b.y >= f.y - 1 && b.x + b.width <= f.x + f.width + 1 && b.y + b.height <= f.y + f.height + 1;
                if (!inside(k) || !inside(d)) bad.push(g.dataset.policy + ': outside');
                if (k.width < 0.8 * f.width || d.height < 0.5 * f.height) bad.push(g.dataset.policy + ': too small');
                if (f.y <= previousBottom) bad.push(g.dataset.policy + ': overlaps');
                previousBottom = f.y + f.height;
              }
              const ticks = [...document.querySelectorAll('text.t-tick')].map(t => t.textContent).join(',');
              return bad.length ? bad.join('; ') : ticks;
            })()
            """);
        Assert.Equal("0,10,20,30,40,50,60", check);
    }

    [Fact]
    public async Task Bad_input_names_the_option()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        Assert.Equal(2, await EdgeCli.RunAsync(["bench-policy", "--delay", "fixed:5"], output, error));
        Assert.Contains("--verifier", error.ToString(), StringComparison.Ordinal);
        using var error2 = new StringWriter();
        Assert.Equal(2, await EdgeCli.RunAsync(["bench-policy", "--simulate", "--delay", "fixed:5"], output, error2));
        Assert.Contains("--profile", error2.ToString(), StringComparison.Ordinal);
    }
}
