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
            "--policies", "static:1,ucb-specstop,oracle", "--json"], output, error);
        Assert.True(code == 0, error.ToString());
        using var doc = JsonDocument.Parse(output.ToString());
        var policies = doc.RootElement.GetProperty("policies").EnumerateArray().ToList();
        Assert.Equal(["static:1", "ucb-specstop", "oracle"], policies.Select(p => p.GetProperty("policy").GetString()));
        Assert.Equal(0, policies[2].GetProperty("regret_pct").GetDouble());
        Assert.InRange(policies[0].GetProperty("mean_k").GetDouble(), 0.9, 1.0); // a generation's last round may draft nothing
        Assert.InRange(policies[1].GetProperty("mean_k").GetDouble(), 1, 3);
        Assert.All(policies, p => Assert.True(p.GetProperty("mean_ms_per_token").GetDouble() > 0));
        Assert.All(policies, p => Assert.InRange(p.GetProperty("acceptance").GetDouble(), 0, 1));
        Assert.StartsWith("static:", doc.RootElement.GetProperty("best_static").GetProperty("policy").GetString(), StringComparison.Ordinal);
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
