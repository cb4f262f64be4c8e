using System.Diagnostics;
using System.Text.Json;
using ConfigSpec.Edge.Cli;
using ConfigSpec.Tests.Infrastructure;

namespace ConfigSpec.Tests.Cli;

public class EdgeCliTests
{
    public EdgeCliTests() => TestEnvironment.InitializeRuntime();

    internal static async Task<(int Exit, string Out, string Err)> Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await EdgeCli.RunAsync(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Generate_json_reports_text_tokens_and_acceptance_by_position()
    {
        var (exit, output, error) = await Run("generate", "--target", TestEnvironment.Model("stories260K.gguf"),
            "--draft", TestEnvironment.Model("stories260K-Q4_K_M.gguf"), "--k", "4", "--max-tokens", "50", "--prompt", "Once upon a time", "--json");
        Assert.True(exit == 0, error);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.StartsWith(", there was a little girl named Lily", root.GetProperty("text").GetString(), StringComparison.Ordinal);
        Assert.Equal(50, root.GetProperty("tokens").GetArrayLength());
        Assert.Equal(4, root.GetProperty("accepted_by_position").GetArrayLength());
        Assert.InRange(root.GetProperty("mean_accepted").GetDouble(), 0.0, 4.0);
        Assert.True(root.GetProperty("rounds").GetInt32() >= 10);
        Assert.True(root.GetProperty("draft_tokens_per_s").GetDouble() > 0);
        Assert.True(root.GetProperty("wall_s").GetDouble() > 0);
    }

    [Theory]
    [InlineData(new[] { "generate", "--k", "abc", "--prompt", "x" }, "Cannot parse argument 'abc' for option '--k' as a whole number", "configspec-edge generate --help")]
    [InlineData(new[] { "generate", "--bogus", "--prompt", "x" }, "Unrecognized command or argument '--bogus'", "configspec-edge generate --help")]
    [InlineData(new[] { "nosuch" }, "Unrecognized command or argument 'nosuch'", "configspec-edge --help")]
    [InlineData(new[] { "power", "--interval" }, "--interval", "configspec-edge power --help")]
    public async Task Mistakes_the_argument_parser_catches_give_one_line_and_exit_2(string[] args, string message, string help)
    {
        var (exit, output, error) = await Run(args);
        Assert.Equal(2, exit);
        Assert.Empty(output);
        Assert.Single(error.Trim().Split('\n'));
        Assert.Contains(message, error, StringComparison.Ordinal);
        Assert.Contains(help, error, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task K_zero_decodes_with_the_target_alone()
    {
        var (exit, output, error) = await Run("generate", "--target", TestEnvironment.Model("stories260K.gguf"),
            "--k", "0", "--max-tokens", "20", "--prompt", "Once upon a time", "--json");
        Assert.True(exit == 0, error);
        using var json = JsonDocument.Parse(output);
        Assert.Equal(20, json.RootElement.GetProperty("rounds").GetInt32());
        Assert.Equal(0, json.RootElement.GetProperty("accepted_by_position").GetArrayLength());
    }

    /// <summary>Drafting held to a slow board's pace: the same tokens, drafted no faster than the pace asked for.</summary>
    [Fact]
    public async Task Drafting_held_to_a_pace_gives_the_same_tokens_at_that_pace()
    {
        string[] common = ["generate", "--target", TestEnvironment.Model("stories260K.gguf"), "--draft", TestEnvironment.Model("stories260K-Q4_0.gguf"),
            "--k", "4", "--max-tokens", "40", "--prompt", "Once upon a time", "--json"];
        var (exit, free, error) = await Run(common);
        Assert.True(exit == 0, error);
        (exit, var paced, error) = await Run([.. common, "--draft-tokens-per-s", "200"]);
        Assert.True(exit == 0, error);
        using var a = JsonDocument.Parse(free);
        using var b = JsonDocument.Parse(paced);
        Assert.Equal(a.RootElement.GetProperty("tokens").GetRawText(), b.RootElement.GetProperty("tokens").GetRawText());
        var rate = b.RootElement.GetProperty("draft_tokens_per_s").GetDouble();
        Assert.InRange(rate, 120, 200 * 1.02); // each token waits for its time at 200 tokens/s; the unpaced draft runs thousands
        Assert.True(a.RootElement.GetProperty("draft_tokens_per_s").GetDouble() > 1000, free);

        (exit, _, error) = await Run([.. common, "--draft-tokens-per-s", "0"]);
        Assert.Equal(2, exit);
        Assert.Contains("--draft-tokens-per-s 0 must be a positive number of tokens per second", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--k", "33", "--k 33 is out of range")]
    [InlineData("--k", "-2", "--k -2 is out of range")]
    [InlineData("--temperature", "-1", "--temperature -1 is out of range")]
    [InlineData("--max-tokens", "0", "--max-tokens 0 must be at least 1")]
    public async Task Bad_settings_give_one_line_naming_the_setting_and_exit_2(string option, string value, string message)
    {
        var (exit, _, error) = await Run("generate", "--target", TestEnvironment.Model("stories260K.gguf"),
            "--draft", TestEnvironment.Model("stories260K-Q8_0.gguf"), "--prompt", "Hi", option, value);
        Assert.Equal(2, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
        Assert.Single(error.Trim().Split('\n'));
    }

    [Fact]
    public async Task Missing_and_foreign_model_files_are_named()
    {
        var (exit, _, error) = await Run("generate", "--target", "/nonexistent/target.gguf", "--k", "0", "--prompt", "Hi");
        Assert.Equal(2, exit);
        Assert.Contains("model file '/nonexistent/target.gguf': does not exist", error, StringComparison.Ordinal);

        var (exit2, _, error2) = await Run("generate", "--target", TestEnvironment.Model("stories260K.gguf"),
            "--draft", TestEnvironment.Model("llama-2-tiny-random.gguf"), "--k", "4", "--prompt", "Hi");
        Assert.Equal(2, exit2);
        Assert.Contains("different vocabulary", error2, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Prompt_longer_than_the_context_is_refused()
    {
        var prompt = string.Join(' ', Enumerable.Repeat("once upon a time", 60));
        var (exit, _, error) = await Run("generate", "--target", TestEnvironment.Model("stories260K.gguf"),
            "--k", "0", "--ctx", "64", "--prompt", prompt);
        Assert.Equal(2, exit);
        Assert.Contains("shorten the prompt or raise --ctx", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Model_info_json_lists_metadata_and_tensor_types()
    {
        var (exit, output, error) = await Run("model", "info", TestEnvironment.Model("stories260K-Q4_0.gguf"), "--json");
        Assert.True(exit == 0, error);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.Equal("llama", root.GetProperty("architecture").GetString());
        Assert.Equal(277_024, root.GetProperty("file_bytes").GetInt64());
        Assert.Equal(512, root.GetProperty("vocabulary_size").GetInt32());
        Assert.True(root.GetProperty("tensor_types").TryGetProperty("Q4_0", out _));
        Assert.Equal(64, root.GetProperty("vocabulary_fingerprint").GetString()!.Length);
    }

    [Fact]
    public async Task Model_quantize_writes_a_loadable_draft_and_rejects_unknown_types()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var output = Path.Combine(dir, "q5.gguf");
        var (exit, text, error) = await Run("model", "quantize", "--in", TestEnvironment.Model("stories260K.gguf"), "--out", output, "--type", "Q5_0", "--prune-layers", "3");
        Assert.True(exit == 0, error);
        Assert.Contains("pruned layers 3", text, StringComparison.Ordinal);
        var (infoExit, info, _) = await Run("model", "info", output, "--json");
        Assert.Equal(0, infoExit);
        Assert.Equal(4, JsonDocument.Parse(info).RootElement.GetProperty("layers").GetInt32());

        var (badExit, _, badError) = await Run("model", "quantize", "--in", TestEnvironment.Model("stories260K.gguf"), "--out", output, "--type", "Q9_9");
        Assert.Equal(2, badExit);
        Assert.Contains("unknown quantisation type 'Q9_9'", badError, StringComparison.Ordinal);
        Directory.Delete(dir, true);
    }

    /// <summary>Runs in a child process, because the library folder is chosen once per process.</summary>
    [Fact]
    public async Task Missing_native_libraries_are_reported_with_the_folders_searched_and_the_fix()
    {
        var empty = TestEnvironment.NewTemporaryDirectory();
        var (exit, error) = await AbiMismatchTests.RunEdgeAsync("model", "info", TestEnvironment.Model("stories260K.gguf"), "--llama-dir", empty);
        Assert.Equal(2, exit);
        Assert.Contains("llama.cpp native libraries not found", error, StringComparison.Ordinal);
        Assert.Contains(empty, error, StringComparison.Ordinal);
        Assert.Contains("scripts/fetch-llama.sh", error, StringComparison.Ordinal);
        Directory.Delete(empty, true);
    }
}

/// <summary>The start-up ABI check must refuse a llama.cpp build whose structs differ from the pinned header.</summary>
public class AbiMismatchTests
{
    // A stand-in library whose llama_model_params gained a field at the front (88 bytes instead of 80).
    private const string ShiftedLibrary = """
        #include <stdint.h>
        #include <string.h>
        struct model_params { void *new_field; void *devices; void *overrides; int32_t n_gpu_layers, split_mode, load_mode, lazy_mode, main_gpu;
                              const float *tensor_split; void *cb, *cb_data, *kv; _Bool b[6]; };
        struct model_params llama_model_default_params(void) {
            struct model_params p; memset(&p, 0, sizeof p); p.n_gpu_layers = -1; p.split_mode = 1; p.b[2] = 1; return p; }
        struct context_params { uint8_t raw[160]; };
        struct context_params llama_context_default_params(void) { struct context_params p; memset(&p, 0, sizeof p); return p; }
        struct quantize_params { uint8_t raw[64]; };
        struct quantize_params llama_model_quantize_default_params(void) { struct quantize_params p; memset(&p, 0, sizeof p); return p; }
        """;

    [Fact]
    public async Task A_build_with_a_shifted_struct_is_refused_before_use()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        await File.WriteAllTextAsync(Path.Combine(dir, "fake.c"), ShiftedLibrary);
        await File.WriteAllTextAsync(Path.Combine(dir, "empty.c"), "int ggml_placeholder(void) { return 0; }\n");
        Assert.Equal(0, await RunAsync("cc", dir, "-shared", "-fPIC", "-o", "libllama.so", "fake.c"));
        Assert.Equal(0, await RunAsync("cc", dir, "-shared", "-fPIC", "-o", "libggml.so", "empty.c"));

        var (exit, error) = await RunEdgeAsync("model", "info", TestEnvironment.Model("stories260K.gguf"), "--llama-dir", dir);
        Assert.Equal(2, exit);
        Assert.Contains("does not match the ABI", error, StringComparison.Ordinal);
        Assert.Contains("llama_model_default_params writes 88 bytes, expected a 80-byte struct", error, StringComparison.Ordinal);
        Directory.Delete(dir, true);
    }

    internal static async Task<int> RunAsync(string program, string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = workingDirectory, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, error);
        return process.ExitCode;
    }

    internal static async Task<(int Exit, string Error)> RunEdgeAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(TestEnvironment.ProductBinary("ConfigSpec.Edge", "configspec-edge.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Remove(ConfigSpec.Interop.Llama.LlamaLibraryResolver.EnvironmentVariable);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        await stdout;
        return (process.ExitCode, error);
    }
}

public class PowerCliTests
{
    private static Task<(int Exit, string Out, string Err)> Run(params string[] args) => EdgeCliTests.Run(args);

    [Fact]
    public async Task Power_samples_a_recording_and_reports_energy_and_rate()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        var csv = Path.Combine(dir, "run.csv");
        await File.WriteAllLinesAsync(csv, Enumerable.Range(0, 2000).Select(i => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{i * 0.01:F2},5.0")).Prepend("time_s,watts"));
        var record = Path.Combine(dir, "again.csv");
        var (exit, output, error) = await Run("power", "--source", $"replay:file={csv}", "--duration", "500ms", "--interval", "10ms", "--json", "--record", record);
        Assert.True(exit == 0, error);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.False(root.GetProperty("estimated").GetBoolean());
        Assert.True(root.GetProperty("complete").GetBoolean(), output);
        Assert.InRange(root.GetProperty("total_w").GetProperty("mean").GetDouble(), 4.999, 5.001);
        var seconds = root.GetProperty("duration_s").GetDouble();
        Assert.InRange(root.GetProperty("energy_j").GetDouble(), 5.0 * seconds * 0.99, 5.0 * seconds * 1.01);
        Assert.True(root.GetProperty("samples").GetInt32() >= 20);
        Assert.StartsWith("time_s,watts,recorded", (await File.ReadAllLinesAsync(record))[0], StringComparison.Ordinal);
        Directory.Delete(dir, true);
    }

    [Fact]
    public async Task An_estimate_is_labelled_in_every_output()
    {
        var (exit, output, _) = await Run("power", "--source", "estimate:board=rpi4b", "--duration", "100ms", "--interval", "20ms");
        Assert.Equal(0, exit);
        Assert.Contains("ESTIMATED, not measured", output, StringComparison.Ordinal);
        Assert.Contains("energy", output, StringComparison.Ordinal);
        var (jsonExit, json, _) = await Run("power", "--source", "estimate:board=rpi4b", "--duration", "100ms", "--json");
        Assert.Equal(0, jsonExit);
        Assert.True(JsonDocument.Parse(json).RootElement.GetProperty("estimated").GetBoolean());
    }

    [Theory]
    [InlineData("--duration", "5x", "--duration '5x' is not a duration")]
    [InlineData("--interval", "0ms", "--interval '0ms' is not a duration")]
    public async Task Bad_durations_are_named(string option, string value, string message)
    {
        var (exit, _, error) = await Run("power", "--source", "estimate:board=rpi4b", option, value);
        Assert.Equal(2, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Detect_lists_estimate_as_always_available()
    {
        var (exit, output, _) = await Run("power", "--detect");
        Assert.Equal(0, exit);
        Assert.Contains("estimate:board=", output, StringComparison.Ordinal);
        Assert.Contains("ina219", output, StringComparison.Ordinal);
    }
}

public class GenerateEnergyTests
{
    [Fact]
    public async Task Drafting_energy_is_charged_to_the_drafting_windows()
    {
        TestEnvironment.InitializeRuntime();
        var dir = TestEnvironment.NewTemporaryDirectory();
        var csv = Path.Combine(dir, "constant.csv");
        await File.WriteAllLinesAsync(csv, Enumerable.Range(0, 5000).Select(i => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{i * 0.01:F2},5.0")));
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await EdgeCli.RunAsync(
        [
            "generate", "--target", TestEnvironment.Model("stories260K.gguf"), "--draft", TestEnvironment.Model("stories260K-Q4_0.gguf"),
            "--k", "4", "--max-tokens", "120", "--prompt", "Once upon a time", "--json",
            "--power", $"replay:file={csv}", "--power-interval", "10ms", "--idle-baseline", "200ms",
        ], output, error);
        Assert.True(exit == 0, error.ToString());
        var root = JsonDocument.Parse(output.ToString()).RootElement;
        var energy = root.GetProperty("energy");
        Assert.False(energy.GetProperty("estimated").GetBoolean());
        var seconds = energy.GetProperty("draft_s").GetDouble();
        // Within 1e-6 s, not "equal to 6 decimals": two sums that differ by 5e-12 can round to either side of a digit.
        Assert.Equal(root.GetProperty("draft_s").GetDouble(), seconds, 1e-6);
        Assert.InRange(energy.GetProperty("windows").GetInt32(), root.GetProperty("rounds").GetInt32() - 1, root.GetProperty("rounds").GetInt32());
        Assert.Equal(5.0, energy.GetProperty("idle_w").GetDouble(), 6);
        var joules = energy.GetProperty("draft_j").GetDouble();
        if (energy.GetProperty("windows_over_gaps").GetInt32() == 0)
        {
            Assert.Equal(5.0 * seconds, joules, 1e-6); // constant power: exactly P × drafting time
        }
        else
        {
            Assert.True(joules < 5.0 * seconds); // unsampled windows are left out, never filled in
        }

        Assert.Equal(joules / root.GetProperty("tokens").GetArrayLength(), energy.GetProperty("j_per_generated_token").GetDouble(), 9);
        Directory.Delete(dir, true);
    }
}
