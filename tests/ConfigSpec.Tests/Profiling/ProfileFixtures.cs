using ConfigSpec.Profiling.Measurement;
using ConfigSpec.Profiling.Profiles;

namespace ConfigSpec.Tests.Profiling;

/// <summary>Profiles built in code for selection, format and report tests.</summary>
internal static class ProfileFixtures
{
    public static ConfigurationProfile Configuration(string draft, string quant, double[] alpha, double draftTokensPerSecond, double waitSeconds,
        double? watts = 5, double residentMb = 100) => new()
    {
        Draft = draft,
        Quant = quant,
        File = $"/models/{draft}.gguf",
        FileBytes = 1_000_000,
        Sha256 = new string((char)('a' + (Math.Abs(draft.GetHashCode(StringComparison.Ordinal)) % 6)), 64),
        LoadSeconds = 0.5,
        ResidentMegabytes = residentMb,
        Rounds = 200,
        Tokens = 1000,
        Prompts = 10,
        DraftTokensPerSecond = new Estimate(draftTokensPerSecond, draftTokensPerSecond * 0.98, draftTokensPerSecond * 1.02, 200),
        MeanAccepted = new Estimate(alpha.Sum(), alpha.Sum() * 0.98, alpha.Sum() * 1.02, 200),
        Converged = true,
        AcceptanceByPosition = [.. alpha.Select(a => (double?)a)],
        ReachedByPosition = [.. alpha.Select(_ => 100L)],
        Verify = new VerifyTiming(alpha.Length, 200, waitSeconds, waitSeconds * 1.2, waitSeconds / 4, waitSeconds, alpha.Length / draftTokensPerSecond),
        Power = watts is { } w ? new DraftPower(w, w * 10, 10, 200) : null,
    };

    public static BoardProfile Profile(params ConfigurationProfile[] configurations) => new()
    {
        Created = new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero),
        Updated = new DateTimeOffset(2026, 11, 22, 11, 0, 0, TimeSpan.Zero),
        Device = new DeviceInfo("pi5-lab-1", "pi5-lab-1", "Raspberry Pi 5 Model B Rev 1.0", "Debian GNU/Linux 12 (bookworm)", "arm64", 4),
        Software = new SoftwareInfo("1.0.0", "CPU : NEON = 1", ".NET 9.0"),
        Power = new PowerInfo("ina219:bus=1,addr=0x40", "board", false, 2.5),
        Verifier = new VerifierInfo("mqtt", "llama-8b", "mqtt://broker:1883"),
        Settings = new ProfileSettings(configurations.Length == 0 ? 8 : configurations[0].AcceptanceByPosition.Count, 0.03, 0.95, 30, 400, 64, "built-in", 24),
        Configurations = configurations,
    };

    /// <summary>A chain pass of blocks of 8 with 4 in flight: positions 1..16 reached by 40 chains less one per position, each accepted at <paramref name="rate"/>.</summary>
    public static ChainProfile Chain(double rate, int reached = 40) => new(8, 4, 120, [.. Enumerable.Range(0, 16).Select(_ => (double?)rate)],
        [.. Enumerable.Range(0, 16).Select(p => (long)Math.Max(0, reached - p))], new VerifyTiming(8, 80, 0.06, 0.08, 0.01, 0.06, 0.4));

    /// <summary>Three drafts with distinct trade-offs: accurate but slow, fast but sloppy, and in between.</summary>
    public static BoardProfile ThreeDrafts(double wait = 0.05) => Profile(
        Configuration("qwen-0.5b", "Q8_0", [0.9, 0.88, 0.86, 0.85, 0.84, 0.83, 0.82, 0.8], 20, wait, watts: 6, residentMb: 600),
        Configuration("qwen-0.5b", "Q4_K_M", [0.85, 0.82, 0.8, 0.78, 0.76, 0.75, 0.74, 0.72], 32, wait, watts: 5, residentMb: 400),
        Configuration("tiny-draft", "Q4_0", [0.5, 0.45, 0.4, 0.4, 0.35, 0.3, 0.3, 0.3], 120, wait, watts: 4, residentMb: 80));
}
