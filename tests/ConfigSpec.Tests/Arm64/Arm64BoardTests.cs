using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using ConfigSpec.Fleet;
using ConfigSpec.Tests.Cli;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Transport.Mqtt;

namespace ConfigSpec.Tests.Arm64;

/// <summary>
/// The boards' build: linux-arm64 native AOT configspec-edge under qemu as a Raspberry Pi 4B core and a Pi 5 core,
/// checked against this machine's x64 build. Needs <c>scripts/build.sh linux-arm64 --package</c> (scripts/test.sh runs it).
/// </summary>
[Trait("Category", Arm64Board.Category)]
public sealed class Arm64BoardTests
{
    private static readonly string Target = TestEnvironment.Model("stories260K.gguf");
    private static readonly string Draft = TestEnvironment.Model("stories260K-Q4_0.gguf");

    public Arm64BoardTests() => TestEnvironment.InitializeRuntime();

    private static string[] GenerateArgs(string prompt) =>
        ["generate", "--target", Target, "--draft", Draft, "--k", "4", "--max-tokens", "64", "--prompt", prompt, "--json"];

    [Fact]
    public async Task Generate_as_a_pi4b_and_as_a_pi5_core_gives_the_tokens_of_the_x64_build()
    {
        var prompt = DeterminismPrompts.All[0];
        var (exit, x64, error) = await EdgeCliTests.Run(GenerateArgs(prompt));
        Assert.True(exit == 0, error);
        using var expected = JsonDocument.Parse(x64);
        var tokens = expected.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToArray();
        Assert.Equal(64, tokens.Length);
        foreach (var cpu in new[] { Arm64Board.Pi4Cpu, Arm64Board.Pi5Cpu })
        {
            var (armExit, arm, armError) = await Arm64Board.RunEdgeAsync(cpu, GenerateArgs(prompt));
            Assert.True(armExit == 0, $"{cpu}: {armError}");
            using var actual = JsonDocument.Parse(arm);
            Assert.Equal(tokens, actual.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToArray());
            Assert.Equal(expected.RootElement.GetProperty("text").GetString(), actual.RootElement.GetProperty("text").GetString());
        }
    }

    [Fact]
    public async Task System_names_the_core_its_features_and_the_ggml_variant_each_board_cpu_loads()
    {
        var (exit, x64Out, error) = await EdgeCliTests.Run("system", "--json");
        Assert.True(exit == 0, error);
        using var x64 = JsonDocument.Parse(x64Out);
        Assert.Equal("x64", x64.RootElement.GetProperty("arch").GetString());
        Assert.StartsWith("libggml-cpu-", x64.RootElement.GetProperty("llama_cpu_variant").GetString(), StringComparison.Ordinal);

        var seen = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var cpu in new[] { Arm64Board.Pi4Cpu, Arm64Board.Pi5Cpu })
        {
            var (armExit, output, armError) = await Arm64Board.RunEdgeAsync(cpu, "system", "--json");
            Assert.True(armExit == 0, $"{cpu}: {armError}");
            using var doc = JsonDocument.Parse(output);
            seen[cpu] = doc.RootElement.Clone();
        }

        var pi4 = seen[Arm64Board.Pi4Cpu];
        var pi5 = seen[Arm64Board.Pi5Cpu];
        foreach (var report in new[] { pi4, pi5 })
        {
            Assert.Equal("arm64", report.GetProperty("arch").GetString());
            Assert.True(report.GetProperty("native_aot").GetBoolean());
            Assert.Equal(x64.RootElement.GetProperty("version").GetString(), report.GetProperty("version").GetString());
            Assert.Equal(x64.RootElement.GetProperty("llama_build").GetString(), report.GetProperty("llama_build").GetString());
            Assert.Matches(@"^2\.\d+$", report.GetProperty("glibc").GetString());
            Assert.Equal(x64.RootElement.GetProperty("board").GetString(), report.GetProperty("board").GetString()); // the same machine's device tree / DMI
            // The libraries beside the program are the ones loaded (the x64 folder in the test run's environment is not passed on).
            Assert.Equal(Path.GetFullPath(Arm64Board.BuildDirectory).TrimEnd('/'), report.GetProperty("llama_dir").GetString());
            Assert.Equal(7, report.GetProperty("power_sources").GetArrayLength());
        }

        // ggml chose its kernels by the CPU: plain Armv8.0 NEON on the Pi 4B's core, dot product on the Pi 5's.
        Assert.Equal("libggml-cpu-armv8.0_1.so", pi4.GetProperty("llama_cpu_variant").GetString());
        Assert.Equal("libggml-cpu-armv8.2_2.so", pi5.GetProperty("llama_cpu_variant").GetString());
        Assert.StartsWith("Cortex-A72", pi4.GetProperty("cpu_model").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("Cortex-A76", pi5.GetProperty("cpu_model").GetString(), StringComparison.Ordinal);
        string[] Features(JsonElement r) => [.. r.GetProperty("cpu_features").EnumerateArray().Select(f => f.GetString()!)];
        Assert.Contains("asimd", Features(pi4));
        Assert.DoesNotContain("asimddp", Features(pi4));
        Assert.Contains("asimddp", Features(pi5));
        Assert.Contains("DOTPROD = 1", pi5.GetProperty("llama_system_info").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain("DOTPROD", pi4.GetProperty("llama_system_info").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Power_sources_on_board_fixtures_give_the_figures_of_the_x64_build()
    {
        var dir = TestEnvironment.NewTemporaryDirectory();
        // A Jetson's INA3221 hwmon tree, an AGX Orin tegrastats log (no input rail: the module rails are summed), Pi 5 PMIC output.
        var hwmon = Path.Combine(dir, "hwmon", "hwmon3");
        Directory.CreateDirectory(hwmon);
        foreach (var (file, value) in new[]
        {
            ("name", "ina3221"), ("in1_label", "VDD_IN"), ("in1_input", "5064"), ("curr1_input", "1432"),
            ("in2_label", "VDD_CPU_GPU_CV"), ("in2_input", "5048"), ("curr2_input", "388"), ("in3_label", "VDD_SOC"), ("in3_input", "5056"), ("curr3_input", "276"),
        })
        {
            await File.WriteAllTextAsync(Path.Combine(hwmon, file), value + "\n");
        }

        var tegrastats = Path.Combine(dir, "tegrastats.log");
        await File.WriteAllLinesAsync(tegrastats, Enumerable.Range(0, 30).Select(i => string.Create(CultureInfo.InvariantCulture,
            $"12-01-2026 10:01:{i:D2} RAM 3311/62841MB (lfb 14x4MB) CPU [1%@729,0%@729] GR3D_FREQ 0% cpu@47.9C VDD_GPU_SOC {3150 + (i % 3 * 400)}mW/2971mW VDD_CPU_CV {14312 - (i % 5 * 900)}mW/12415mW VIN_SYS_5V0 4968mW/5048mW NC 0mW/0mW VDDQ_VDD2_1V8AO 502mW/498mW")));
        var pmic = Path.Combine(dir, "pmic.txt");
        await File.WriteAllTextAsync(pmic, "   VDD_CORE_A current(7)=1.11625000A\n   VDD_CORE_V volt(15)=0.72000000V\n   DDR_VDDQ_A current(4)=0.31250000A\n   DDR_VDDQ_V volt(12)=0.60000000V\n    EXT5V_V volt(24)=5.12000000V\n");

        foreach (var spec in new[] { $"hwmon:root={Path.Combine(dir, "hwmon")}", $"tegrastats:file={tegrastats}", $"pmic:file={pmic}" })
        {
            string[] args = ["power", "--source", spec, "--duration", "300ms", "--interval", "20ms", "--json"];
            var (exit, x64Out, error) = await EdgeCliTests.Run(args);
            Assert.True(exit == 0, $"{spec}: {error}");
            var (armExit, armOut, armError) = await Arm64Board.RunEdgeAsync(Arm64Board.Pi5Cpu, args);
            Assert.True(armExit == 0, $"{spec} on arm64: {armError}");
            using var x64 = JsonDocument.Parse(x64Out);
            using var arm = JsonDocument.Parse(armOut);
            foreach (var root in new[] { x64.RootElement, arm.RootElement })
            {
                Assert.False(root.GetProperty("estimated").GetBoolean());
                Assert.True(root.GetProperty("samples").GetInt32() >= 3, root.ToString());
            }

            Assert.Equal(x64.RootElement.GetProperty("scope").GetString(), arm.RootElement.GetProperty("scope").GetString());
            Assert.Equal(x64.RootElement.GetProperty("total_w").GetProperty("min").GetDouble(), arm.RootElement.GetProperty("total_w").GetProperty("min").GetDouble(), 9);
            Assert.Equal(x64.RootElement.GetProperty("total_w").GetProperty("max").GetDouble(), arm.RootElement.GetProperty("total_w").GetProperty("max").GetDouble(), 9);
            Assert.Equal(x64.RootElement.GetProperty("total_w").GetProperty("mean").GetDouble(), arm.RootElement.GetProperty("total_w").GetProperty("mean").GetDouble(), 9);
            var x64Rails = x64.RootElement.GetProperty("rails").EnumerateArray().Select(r => (r.GetProperty("rail").GetString(), Math.Round(r.GetProperty("mean").GetDouble(), 9))).ToList();
            var armRails = arm.RootElement.GetProperty("rails").EnumerateArray().Select(r => (r.GetProperty("rail").GetString(), Math.Round(r.GetProperty("mean").GetDouble(), 9))).ToList();
            Assert.NotEmpty(x64Rails);
            Assert.Equal(x64Rails, armRails);
        }

        Directory.Delete(dir, true);
    }

    [Fact]
    public async Task The_abi_check_refuses_an_arm64_llama_build_whose_struct_moved()
    {
        // A stand-in whose llama_model_params keeps its size but has a field inserted before n_gpu_layers (one dropped at
        // the end): on arm64 the check reads the defaults at the pinned offsets, so the move shows as a wrong default.
        const string shifted = """
            #include <stdint.h>
            #include <string.h>
            struct model_params { void *devices; void *overrides; int32_t new_field, n_gpu_layers, split_mode, load_mode, lazy_mode, main_gpu;
                                  const float *tensor_split; void *cb, *cb_data; _Bool b[8]; };
            struct model_params llama_model_default_params(void) {
                struct model_params p; memset(&p, 0, sizeof p); p.new_field = 7; p.n_gpu_layers = -1; p.split_mode = 1; p.b[5] = 1; return p; }
            struct context_params { uint8_t raw[160]; };
            struct context_params llama_context_default_params(void) { struct context_params p; memset(&p, 0, sizeof p); return p; }
            struct quantize_params { uint8_t raw[64]; };
            struct quantize_params llama_model_quantize_default_params(void) { struct quantize_params p; memset(&p, 0, sizeof p); return p; }
            """;
        var dir = TestEnvironment.NewTemporaryDirectory();
        await File.WriteAllTextAsync(Path.Combine(dir, "fake.c"), shifted);
        await File.WriteAllTextAsync(Path.Combine(dir, "empty.c"), "int ggml_placeholder(void) { return 0; }\n");
        Assert.Equal(0, await AbiMismatchTests.RunAsync("aarch64-linux-gnu-gcc", dir, "-shared", "-fPIC", "-o", "libllama.so", "fake.c"));
        Assert.Equal(0, await AbiMismatchTests.RunAsync("aarch64-linux-gnu-gcc", dir, "-shared", "-fPIC", "-o", "libggml.so", "empty.c"));

        var (exit, _, error) = await Arm64Board.RunEdgeAsync(Arm64Board.Pi5Cpu, "model", "info", Target, "--llama-dir", dir);
        Assert.Equal(2, exit);
        Assert.Contains("does not match the ABI", error, StringComparison.Ordinal);
        Assert.Contains("llama_model_params.n_gpu_layers default is 7, expected -1", error, StringComparison.Ordinal);
        Assert.Single(error.Trim().Split('\n'));

        // The pinned arm64 build passes the same check.
        var (ok, info, okError) = await Arm64Board.RunEdgeAsync(Arm64Board.Pi5Cpu, "model", "info", Target);
        Assert.True(ok == 0, okError);
        Assert.Contains("parameters     292,800", info, StringComparison.Ordinal);
        Directory.Delete(dir, true);
    }

    [Fact]
    public async Task An_arm64_daemon_against_an_x64_verifier_profiles_publishes_and_serves_the_x64_greedy_text()
    {
        using var broker = new MosquittoBroker();
        using var verifier = new VerifierProcess("arm-verifier", broker.Uri);
        await verifier.WaitForOutputAsync("serving target", TimeSpan.FromSeconds(60));
        var dir = TestEnvironment.NewTemporaryDirectory();
        var httpPort = MosquittoBroker.FreePort();
        var config = FleetHarness.DaemonConfig(dir, "pi5-arm", broker.Uri, "Raspberry Pi 5 Model B Rev 1.0", ["stories260K-Q4_0.gguf"], httpPort,
            adopt: false, metricsInterval: 5,
            profile: "\"max_rounds\": 8, \"min_rounds\": 4, \"timing_rounds\": 1, \"tokens_per_prompt\": 12, \"idle_baseline\": \"0s\"",
            llamaDir: Arm64Board.BuildDirectory);

        await using var watcher = new MqttClient(new MqttClientOptions { Broker = broker.Uri, ClientId = "watcher" });
        await watcher.ConnectAsync();
        await watcher.SubscribeAsync(FleetTopics.EdgeRoot + "pi5-arm/#", 1);

        await using var notify = new NotifyListener(Path.Combine(dir, "notify.sock"));
        var notes = notify.Notes;
        using var daemon = new ProductProcess(Arm64Board.Start(Arm64Board.Pi5Cpu, Arm64Board.Edge, ["run", "--config", config],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path, ["WATCHDOG_USEC"] = "5000000" }));
        await daemon.WaitForOutputAsync("serving ", TimeSpan.FromSeconds(300));
        Assert.Contains(notes, n => n.StartsWith("READY=1", StringComparison.Ordinal));

        // It published its status, profile and configuration (the profile measured on the emulated core: shape only).
        var topics = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            while (!(topics.ContainsKey("status") && topics.ContainsKey("profile") && topics.ContainsKey("config")))
            {
                var m = await watcher.Messages.ReadAsync(cts.Token);
                var leaf = m.Topic[(m.Topic.LastIndexOf('/') + 1)..];
                if (leaf is not ("status" or "profile" or "config"))
                {
                    continue;
                }

                using var doc = JsonDocument.Parse(m.Payload);
                topics[leaf] = doc.RootElement.Clone();
            }
        }

        Assert.Equal("arm64", topics["profile"].GetProperty("profile").GetProperty("device").GetProperty("arch").GetString());
        Assert.InRange(topics["config"].GetProperty("k").GetInt32(), 1, 4);
        Assert.Contains("Q4_0", topics["config"].GetProperty("draft").GetString(), StringComparison.Ordinal);

        // One generation over HTTP, verified by the x64 verifier: exactly the x64 target's own greedy text.
        var prompt = DeterminismPrompts.All[1];
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(120) };
        using var response = await FleetHarness.PostJsonAsync(http, $"http://127.0.0.1:{httpPort}/v1/generate",
            $$"""{"prompt": "{{prompt}}", "max_tokens": 32}""");
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        using var served = JsonDocument.Parse(body);
        var (exit, local, error) = await EdgeCliTests.Run("generate", "--target", Target, "--k", "0", "--max-tokens", "32", "--prompt", prompt, "--json");
        Assert.True(exit == 0, error);
        using var expected = JsonDocument.Parse(local);
        Assert.Equal(expected.RootElement.GetProperty("text").GetString(), served.RootElement.GetProperty("text").GetString());
        Assert.Equal(32, served.RootElement.GetProperty("tokens").GetInt32());

        daemon.Terminate();
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(60)), daemon.Log);
        await Task.Delay(200);
        await notify.StopAsync();
        Assert.Contains(notes, n => n.StartsWith("STOPPING=1", StringComparison.Ordinal));
    }
}

/// <summary>What ships to a board: the tarball, its dry-run install, and publish.ps1 agreeing with scripts/build.sh.</summary>
[Trait("Category", Arm64Board.Category)]
public sealed class BoardPackageTests
{
    private static string Version
    {
        get
        {
            var props = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "Directory.Build.props"));
            var start = props.IndexOf("<Version>", StringComparison.Ordinal) + "<Version>".Length;
            return props[start..props.IndexOf("</Version>", start, StringComparison.Ordinal)];
        }
    }

    [Fact]
    public async Task The_board_tarball_holds_the_program_libraries_and_hw_and_its_installer_lists_what_it_would_do()
    {
        var name = $"configspec-edge-{Version}-linux-arm64";
        var tarball = Path.Combine(TestEnvironment.RepositoryRoot, "out", name + ".tar.gz");
        Assert.True(File.Exists(tarball), $"{tarball} is missing: run scripts/build.sh linux-arm64 --package (scripts/test.sh does)");
        var dir = TestEnvironment.NewTemporaryDirectory();
        Assert.Equal(0, await AbiMismatchTests.RunAsync("tar", dir, "xzf", tarball));
        var top = Path.Combine(dir, name);
        var files = Directory.EnumerateFiles(top, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(top, f)).ToHashSet(StringComparer.Ordinal);
        foreach (var expected in new[] { "configspec-edge", "INSTALL", "libllama.v0.5.0.so", "libggml-base.so", "libggml-cpu-armv8.0_1.so", "libggml-cpu-armv8.2_2.so",
                     "hw/install-edge.sh", "hw/systemd/configspec-edge.service", "hw/config/edge.json", "hw/mosquitto/setup-broker.sh", "hw/jetson-cuda.md" })
        {
            Assert.Contains(expected, files);
        }

        Assert.DoesNotContain(files, f => f.EndsWith(".dbg", StringComparison.Ordinal) || f.EndsWith(".pdb", StringComparison.Ordinal));
        var install = await File.ReadAllTextAsync(Path.Combine(top, "INSTALL"));
        Assert.Contains($"ConfigSpec edge {Version} for linux-arm64", install, StringComparison.Ordinal);
        Assert.DoesNotContain("@VERSION@", install, StringComparison.Ordinal);

        // The unpacked program runs (as a Pi 5) with the libraries beside it.
        var (exit, output, error) = await Arm64Board.RunAsync(Arm64Board.Start(Arm64Board.Pi5Cpu, Path.Combine(top, "configspec-edge"), ["system", "--json"]));
        Assert.True(exit == 0, error);
        using (var doc = JsonDocument.Parse(output))
        {
            Assert.Equal(top, doc.RootElement.GetProperty("llama_dir").GetString());
        }

        var optExisted = Directory.Exists("/opt/configspec");
        // A dry run lists every step and changes nothing (on this x86-64 machine it also says the build is for aarch64).
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(top, "hw", "install-edge.sh"), "--dry-run" })
        {
            start.ArgumentList.Add(a);
        }

        var (dryExit, dry, dryError) = await Arm64Board.RunAsync(start);
        Assert.True(dryExit == 0, dryError + dry);
        Assert.Contains("built for aarch64, this machine is x86_64", dry, StringComparison.Ordinal);
        Assert.Contains($"install -m 0755 {top}/configspec-edge /opt/configspec/configspec-edge", dry, StringComparison.Ordinal);
        Assert.Contains($"install -m 0644 {top}/libggml-cpu-armv8.2_2.so /opt/configspec/libggml-cpu-armv8.2_2.so", dry, StringComparison.Ordinal);
        Assert.Contains($"install -m 0644 {top}/hw/systemd/configspec-edge.service /etc/systemd/system/configspec-edge.service", dry, StringComparison.Ordinal);
        Assert.Contains("systemctl enable --now configspec-edge", dry, StringComparison.Ordinal);
        if (!optExisted)
        {
            Assert.False(Directory.Exists("/opt/configspec"), "a dry run must install nothing");
        }

        // Without --dry-run it refuses the foreign build before touching anything.
        var real = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        real.ArgumentList.Add(Path.Combine(top, "hw", "install-edge.sh"));
        var (realExit, _, realError) = await Arm64Board.RunAsync(real);
        Assert.Equal(1, realExit);
        Assert.Contains("use the x86_64 build", realError, StringComparison.Ordinal);
        Directory.Delete(dir, true);
    }

    [Fact]
    public async Task Publish_ps1_for_linux_arm64_makes_the_file_set_scripts_build_sh_makes()
    {
        var pwsh = Environment.GetEnvironmentVariable("CONFIGSPEC_PWSH") is { Length: > 0 } p ? p : Path.Combine(TestEnvironment.RepositoryRoot, ".cache", "tools", "pwsh");
        Assert.True(File.Exists(pwsh), $"'{pwsh}' is missing: scripts/test.sh installs PowerShell 7.6.9 there as a .NET tool");
        var output = TestEnvironment.NewTemporaryDirectory();
        var start = new ProcessStartInfo(pwsh) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = TestEnvironment.RepositoryRoot };
        foreach (var a in new[] { "-NoProfile", "-NonInteractive", "-File", Path.Combine(TestEnvironment.RepositoryRoot, "publish.ps1"), "-Runtime", "linux-arm64", "-Output", output })
        {
            start.ArgumentList.Add(a);
        }

        var (exit, stdout, stderr) = await Arm64Board.RunAsync(start, TimeSpan.FromMinutes(8));
        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains($"binaries and llama.cpp libraries: {output}", stdout, StringComparison.Ordinal);
        static string[] Names(string d) => [.. Directory.EnumerateFiles(d).Select(Path.GetFileName).Order(StringComparer.Ordinal)!];
        Assert.Equal(Names(Arm64Board.BuildDirectory), Names(output));
        Assert.Contains("configspec-edge", Names(output));
        Assert.DoesNotContain("configspec-verifier", Names(output)); // the board set: the board's executable only

        // The same definition: the executables are byte for byte the ones scripts/build.sh linux-arm64 published.
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(Arm64Board.BuildDirectory, "configspec-edge")), await File.ReadAllBytesAsync(Path.Combine(output, "configspec-edge")));
        Directory.Delete(output, true);
    }
}
