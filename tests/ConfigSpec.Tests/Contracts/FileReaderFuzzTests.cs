using System.Globalization;
using System.Text;
using ConfigSpec.Edge.Daemon;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Profiling.Prompts;
using ConfigSpec.Telemetry;
using ConfigSpec.Telemetry.Energy;
using ConfigSpec.Telemetry.Sources;
using ConfigSpec.Tests.Fleet;
using ConfigSpec.Tests.Infrastructure;
using ConfigSpec.Tests.Profiling;

namespace ConfigSpec.Tests.Contracts;

/// <summary>
/// Every file a service reads (a profile, the daemon's settings, a prompts file, recorded power logs) takes 1,000+
/// generated variants of a valid file: each is read, or refused with <see cref="ConfigSpecException"/> naming what is
/// wrong; no other exception escapes a reader.
/// </summary>
public sealed class FileReaderFuzzTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const int Count = 1000;
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;
    private readonly string _dir = TestEnvironment.NewTemporaryDirectory();

    /// <summary>Runs <paramref name="read"/> over every variant; returns how many were refused (each with a message).</summary>
    private int Refusals(IEnumerable<byte[]> variants, Action<byte[]> read, string what)
    {
        var refused = 0;
        var n = 0;
        foreach (var variant in variants)
        {
            n++;
            try
            {
                read(variant);
            }
            catch (ConfigSpecException ex)
            {
                Assert.False(string.IsNullOrWhiteSpace(ex.Message));
                refused++;
            }
        }

        output.WriteLine($"{what}: {refused} of {n} refused, the rest read");
        Assert.True(n >= Count);
        return refused;
    }

    [Fact]
    public void Profile_files()
    {
        var valid = ProfileJson.Serialize(ProfileFixtures.ThreeDrafts());
        var path = Path.Combine(_dir, "profile.json");
        var refused = Refusals(PayloadFuzzer.Generate(valid, Count, seed: 41), bytes =>
        {
            File.WriteAllBytes(path, bytes);
            _ = ProfileJson.Load(path);
        }, "profile");
        Assert.InRange(refused, Count / 2, Count);
    }

    [Fact]
    public void Daemon_settings_files()
    {
        var valid = File.ReadAllText(FleetHarness.DaemonConfig(Path.Combine(_dir, "valid"), "pi-settings", new Uri("mqtt://127.0.0.1:1883"), "Raspberry Pi 5",
            ["stories260K-Q8_0.gguf"], 8089));
        var path = Path.Combine(_dir, "edge.json");
        var refused = Refusals(PayloadFuzzer.Generate(valid, Count, seed: 42), bytes =>
        {
            File.WriteAllBytes(path, bytes);
            _ = EdgeSettings.Load(path, [], new Dictionary<string, string?>());
        }, "settings");
        Assert.InRange(refused, Count / 3, Count);
    }

    [Fact]
    public void Prompt_files()
    {
        const string line = """{"instruction": "Tell a story", "context": "about a dog", "category": "creative_writing", "response": "Once"}""";
        var path = Path.Combine(_dir, "prompts.jsonl");
        var refused = Refusals(PayloadFuzzer.Generate(line, Count, seed: 43).Select(v => (byte[])[.. Encoding.UTF8.GetBytes(line + "\n"), .. v]), bytes =>
        {
            File.WriteAllBytes(path, bytes);
            _ = PromptSet.Load(path);
        }, "prompts");
        Assert.InRange(refused, Count / 2, Count);
    }

    /// <summary>Replay CSVs and tegrastats logs: random bytes, and lines with a number made garbage, huge, negative, NaN or dropped, or out of time order.</summary>
    [Theory]
    [InlineData("replay")]
    [InlineData("tegrastats")]
    public void Recorded_power_logs(string kind)
    {
        var random = new Random(kind.Length);
        var t0 = new DateTime(2026, 12, 1, 10, 0, 0, DateTimeKind.Unspecified);
        var lines = Enumerable.Range(0, 12).Select(i => kind == "replay"
            ? string.Create(C, $"{i * 0.1:0.0},{5 + (i % 2)}")
            : string.Create(C, $"{t0.AddSeconds(i):MM-dd-yyyy HH:mm:ss} RAM 3311/62841MB CPU [1%@729] VDD_GPU_SOC {3000 + i}mW/3000mW VDD_CPU_CV 1300mW/1300mW")).ToList();
        string[] garbage = ["x", "1e400", "-5", "NaN", "Infinity", "", "99999999999999999999", "1,2,3", "\u0000", "-0"];
        var variants = new List<byte[]>();
        while (variants.Count < Count)
        {
            var copy = lines.ToList();
            switch (random.Next(5))
            {
                case 0:
                    variants.Add(PayloadFuzzer.RandomBytes(random, random.Next(0, 400)));
                    continue;
                case 1:
                    copy.RemoveAt(random.Next(copy.Count));
                    break;
                case 2:
                    (copy[0], copy[^1]) = (copy[^1], copy[0]); // time runs backwards
                    break;
                default:
                    var at = random.Next(copy.Count);
                    var numbers = System.Text.RegularExpressions.Regex.Matches(copy[at], @"\d+(\.\d+)?");
                    var m = numbers[random.Next(numbers.Count)];
                    copy[at] = copy[at][..m.Index] + garbage[random.Next(garbage.Length)] + copy[at][(m.Index + m.Length)..];
                    break;
            }

            variants.Add(Encoding.UTF8.GetBytes(string.Join('\n', copy)));
        }

        var path = Path.Combine(_dir, kind + ".log");
        var spec = kind == "replay" ? $"replay:file={path}" : $"tegrastats:file={path},rails=VDD_GPU_SOC";
        Refusals(variants, bytes =>
        {
            File.WriteAllBytes(path, bytes);
            using var source = PowerSources.Create(spec);
            var energy = RecordedEnergy.Of(((IRecordedPowerSource)source).Recording);
            // What is read is reported sanely: finite, and every mean within its extremes.
            Assert.True(double.IsFinite(energy.Joules) && energy.Joules >= 0, $"{energy}");
            Assert.InRange(energy.MeanWatts, energy.MinWatts - 1e-9, energy.MaxWatts + 1e-9);
        }, kind);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
