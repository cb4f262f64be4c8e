using System.Globalization;
using ConfigSpec.Profiling.Measurement;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Profiling.Prompts;
using ConfigSpec.Profiling.Reports;

namespace ConfigSpec.Board;

/// <summary>A profiling run as the daemon and the profile command make it: a new profile for this board, then each draft measured and saved.</summary>
public static class ProfileRun
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static BoardProfile NewProfile(ProfilerOptions options, PromptSet promptSet, PowerSession? powerSession, VerifierConnection connection, string? board = null)
    {
        var now = DateTimeOffset.UtcNow;
        var device = DeviceIdentity.Describe(options.DeviceId);
        return new BoardProfile
        {
            Created = now,
            Updated = now,
            Device = board is null ? device : device with { Board = board },
            Software = DeviceIdentity.Software(),
            Power = new PowerInfo(powerSession?.Spec ?? "none", powerSession?.Source.Scope.ToString().ToLowerInvariant() ?? "none",
                powerSession?.Source.IsEstimate ?? false, powerSession?.IdleWatts),
            Verifier = new VerifierInfo(connection.Kind, connection.TargetName, connection.Broker),
            Settings = new ProfileSettings(options.KMax, options.Tolerance, options.Confidence, options.MinRounds, options.MaxRounds, options.TokensPerPrompt,
                promptSet.Source, promptSet.Prompts.Count),
        };
    }

    /// <summary>
    /// Profiles every draft not yet in <paramref name="profile"/> (matched by sha256), saving the profile and its CSV
    /// atomically after each, so an interrupted run resumes where it stopped.
    /// </summary>
    public static async Task<BoardProfile> MeasureAsync(BoardProfile profile, IReadOnlyList<DraftSpec> specs, Profiler profiler, string outPath,
        Action<string> log, Action? progressDone, CancellationToken cancellationToken)
    {
        var done = profile.Configurations.Select(c => c.Sha256).ToHashSet(StringComparer.Ordinal);
        for (var i = 0; i < specs.Count; i++)
        {
            var sha = specs[i].Sha256 ?? await Profiler.HashAsync(specs[i].Path, cancellationToken).ConfigureAwait(false);
            if (done.Contains(sha))
            {
                log($"[{i + 1}/{specs.Count}] {specs[i].Path}: already in the profile, kept");
                continue;
            }

            var measured = await profiler.ProfileAsync(specs[i] with { Sha256 = sha }, i + 1, specs.Count, cancellationToken).ConfigureAwait(false);
            progressDone?.Invoke();
            profile = profile with { Updated = DateTimeOffset.UtcNow, Configurations = [.. profile.Configurations, measured] };
            Save(profile, outPath);
            done.Add(sha);
            log(Summary(measured, i + 1, specs.Count));
        }

        return profile;
    }

    private static void Save(BoardProfile profile, string outPath)
    {
        ProfileJson.Save(profile, outPath);
        AtomicFile.Write(CsvPath(outPath), CsvExport.Measurements(profile));
    }

    public static string CsvPath(string outPath) => Path.ChangeExtension(outPath, ".csv");

    private static string Summary(ConfigurationProfile c, int index, int count)
    {
        var v = c.DraftTokensPerSecond;
        var a = c.MeanAccepted;
        var power = c.Power is { } p ? string.Create(C, $", {p.DraftWatts:0.00} W drafting") : string.Empty;
        var past = c.ChainAcceptancePastKMax() is { } pk ? string.Create(C, $"α past position {c.AcceptanceByPosition.Count} {pk.Rate:0.000} over {pk.Drafts} drafts") : "no draft past k-max reached";
        var chain = c.Chain is { } ch
            ? string.Create(C, $"; chain pass (K {ch.K}, D {ch.Depth}): {ch.Blocks} blocks, {past}{(ch.ChainedVerify is { } cv ? $", chained blocks' round trip {cv.RoundTripMedian * 1000:0.00} ms median" : string.Empty)}")
            : string.Empty;
        return string.Create(C,
            $"[{index}/{count}] {c.Draft} ({c.Quant}): {c.Rounds} rounds, {(c.Converged ? "stopped when the intervals met the tolerance" : "stopped at the round budget before the intervals met the tolerance (the figures hold, with the intervals shown)")}; v_d {v.Mean:0.0} tokens/s (95% CI {v.Low:0.0}–{v.High:0.0}); mean accepted {a.Mean:0.00} of {c.AcceptanceByPosition.Count} ({a.Low:0.00}–{a.High:0.00}); verify {c.Verify.RoundTripMedian * 1000:0.00} ms median, {c.Verify.RoundTripP95 * 1000:0.00} ms p95 (server {c.Verify.ServerMedian * 1000:0.00} ms){power}{chain}; load {c.LoadSeconds * 1000:0} ms, +{c.ResidentMegabytes:0.0} MB resident");
    }
}
