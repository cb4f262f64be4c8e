using System.Text.Json;
using ConfigSpec.Contracts;
using ConfigSpec.Profiling.Measurement;

namespace ConfigSpec.Profiling.Profiles;

/// <summary>A profile file that cannot be used, with the file and the field at fault.</summary>
public sealed class ProfileFormatException : ConfigSpecException
{
    public ProfileFormatException() { }

    public ProfileFormatException(string message) : base(message) { }

    public ProfileFormatException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>Reads and writes the versioned JSON profile through its contract record (<see cref="ProfileDocument"/>).</summary>
public static class ProfileJson
{
    public static string Serialize(BoardProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        return Contract.Write(ToDocument(profile), indented: true) + "\n";
    }

    public static ProfileDocument ToDocument(BoardProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        var d = profile.Device;
        var s = profile.Settings;
        return new ProfileDocument(BoardProfile.Schema, profile.Version, profile.Created.ToUniversalTime(), profile.Updated.ToUniversalTime(),
            new ProfileDevice(d.Id, d.Hostname, d.Board, d.Os, d.Architecture, d.Cores),
            new ProfileSoftware(profile.Software.ConfigSpec, profile.Software.LlamaCpp, profile.Software.Runtime),
            new ProfilePower(profile.Power.Source, profile.Power.Scope, profile.Power.Estimated, profile.Power.IdleWatts),
            new ProfileVerifier(profile.Verifier.Kind, profile.Verifier.Target, profile.Verifier.Broker),
            new ProfileRunSettings(s.KMax, s.Tolerance, s.Confidence, s.MinRounds, s.MaxRounds, s.TokensPerPrompt, s.PromptSource, s.PromptCount),
            [.. profile.Configurations.Select(c => new ProfileConfiguration(c.Draft, c.Quant, c.File, c.FileBytes, c.Sha256, c.LoadSeconds, c.ResidentMegabytes,
                c.Rounds, c.Tokens, c.Prompts, Estimate(c.DraftTokensPerSecond), Estimate(c.MeanAccepted), c.DraftOverheadSeconds, c.DraftSecondsByK, c.Converged,
                c.AcceptanceByPosition, c.ReachedByPosition, Timing(c.Verify), [.. c.TimingByK.Select(Timing)],
                c.Power is { } p ? new ProfileDraftPower(p.DraftWatts, p.Joules, p.Seconds, p.Windows) : null,
                c.Chain is { } chain ? new ProfileChain(chain.K, chain.Depth, chain.Blocks, chain.AcceptanceByPosition, chain.ReachedByPosition,
                    chain.ChainedVerify is { } v ? Timing(v) : null) : null))]);
    }

    private static BoardProfile FromDocument(ProfileDocument document)
    {
        ArgumentNullException.ThrowIfNull(document);
        var d = document.Device;
        var s = document.Settings;
        return new BoardProfile
        {
            Version = document.Version,
            Created = document.CreatedUtc,
            Updated = document.UpdatedUtc,
            Device = new DeviceInfo(d.Id, d.Hostname, d.Board, d.Os, d.Arch, d.Cores),
            Software = new SoftwareInfo(document.Software.Configspec, document.Software.LlamaCpp, document.Software.Runtime),
            Power = new PowerInfo(document.Power.Source, document.Power.Scope, document.Power.Estimated, document.Power.IdleWatts),
            Verifier = new VerifierInfo(document.Verifier.Kind, document.Verifier.Target, document.Verifier.Broker),
            Settings = new ProfileSettings(s.KMax, s.Tolerance, s.Confidence, s.MinRounds, s.MaxRounds, s.TokensPerPrompt, s.PromptSource, s.PromptCount),
            Configurations = [.. document.Configurations.Select(c => new ConfigurationProfile
            {
                Draft = c.Draft,
                Quant = c.Quant,
                File = c.File,
                FileBytes = c.FileBytes,
                Sha256 = c.Sha256,
                LoadSeconds = c.LoadSeconds,
                ResidentMegabytes = c.ResidentMegabytes,
                Rounds = c.Rounds,
                Tokens = c.Tokens,
                Prompts = c.Prompts,
                DraftTokensPerSecond = Estimate(c.DraftTokensPerSecond),
                MeanAccepted = Estimate(c.MeanAccepted),
                DraftSecondsByK = c.DraftSecondsByK,
                Converged = c.Converged,
                AcceptanceByPosition = c.AcceptanceByPosition,
                ReachedByPosition = c.ReachedByPosition,
                Verify = Timing(c.Verify),
                TimingByK = [.. c.TimingByK.Select(Timing)],
                Power = c.Power is { } p ? new DraftPower(p.DraftWatts, p.Joules, p.Seconds, p.Windows) : null,
                Chain = c.Chain is { } chain ? new ChainProfile(chain.K, chain.Depth, chain.Blocks, chain.AcceptanceByPosition, chain.ReachedByPosition,
                    chain.ChainedVerify is { } v ? Timing(v) : null) : null,
            })],
        };
    }

    private static ProfileEstimate Estimate(Estimate e) => new(e.Mean, double.IsFinite(e.Low) ? e.Low : null, double.IsFinite(e.High) ? e.High : null, e.Count);

    private static Estimate Estimate(ProfileEstimate e) => new(e.Mean, e.CiLow ?? double.NegativeInfinity, e.CiHigh ?? double.PositiveInfinity, e.N);

    private static ProfileTiming Timing(VerifyTiming v) => new(v.K, v.Rounds, v.RoundTripMedian, v.RoundTripP95, v.ServerMedian, v.NetworkMedian, v.WaitMean, v.DraftMean);

    private static VerifyTiming Timing(ProfileTiming v) => new(v.K, v.Rounds, v.RoundTripMedian, v.RoundTripP95, v.ServerMedian, v.WaitMean, v.DraftMean);

    /// <summary>Writes the profile atomically: a finished file or the previous one, never half of one.</summary>
    public static void Save(BoardProfile profile, string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        AtomicFile.Write(full, Serialize(profile));
    }

    public static BoardProfile Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ProfileFormatException($"profile {path}: cannot read it: {ex.Message}", ex);
        }

        return Parse(text, path);
    }

    /// <summary>
    /// Reads a profile; total: whatever the text holds it returns a valid profile or throws
    /// <see cref="ProfileFormatException"/> naming the file (text that is not valid Unicode, a number out of range included).
    /// </summary>
    public static BoardProfile Parse(string text, string name = "profile")
    {
        try
        {
            return ParseCore(text, name);
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or OverflowException or ArgumentException or KeyNotFoundException)
        {
            throw new ProfileFormatException($"profile {name}: a field holds what the schema does not allow ({ex.Message})", ex);
        }
    }

    private static BoardProfile ParseCore(string text, string name)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = Contract.Options.MaxDepth });
        }
        catch (JsonException ex)
        {
            throw new ProfileFormatException($"profile {name}: not JSON ({ex.Message})", ex);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new ProfileFormatException($"profile {name}: the top level must be an object");
            }

            // The schema and version first, with what to do about them.
            if (!(root.TryGetProperty("schema", out var schema) && schema.ValueKind == JsonValueKind.String && schema.ValueEquals(BoardProfile.Schema)))
            {
                throw new ProfileFormatException($"profile {name}: schema is {(schema.ValueKind == JsonValueKind.Undefined ? "missing" : schema.GetRawText().Replace('"', '\''))}, expected '{BoardProfile.Schema}' (not a ConfigSpec profile)");
            }

            if (!(root.TryGetProperty("version", out var version) && version.ValueKind == JsonValueKind.Number && version.TryGetInt32(out var v) && v == BoardProfile.CurrentVersion))
            {
                throw new ProfileFormatException(
                    $"profile {name}: version {(version.ValueKind == JsonValueKind.Undefined ? "(missing)" : version.GetRawText())} is not supported by this program (it reads version {BoardProfile.CurrentVersion}); profile the board again");
            }

            ProfileDocument read;
            try
            {
                read = Contract.Read<ProfileDocument>(root);
            }
            catch (ContractException ex)
            {
                throw new ProfileFormatException($"profile {name}: {ex.Message}", ex);
            }

            return Read(read, name);
        }
    }

    /// <summary>A profile document already read (a fleet message's), checked as a profile file is: schema, version and the measurements.</summary>
    public static BoardProfile Read(ProfileDocument document, string name)
    {
        ArgumentNullException.ThrowIfNull(document);
        if (document.Schema != BoardProfile.Schema)
        {
            throw new ProfileFormatException($"profile {name}: schema is '{document.Schema}', expected '{BoardProfile.Schema}' (not a ConfigSpec profile)");
        }

        if (document.Version != BoardProfile.CurrentVersion)
        {
            throw new ProfileFormatException(
                $"profile {name}: version {document.Version} is not supported by this program (it reads version {BoardProfile.CurrentVersion}); profile the board again");
        }

        var profile = FromDocument(document);
        Validate(profile, name);
        return profile;
    }

    private static void Validate(BoardProfile profile, string name)
    {
        if (!DraftLength.IsValid(profile.Settings.KMax))
        {
            throw new ProfileFormatException($"profile {name}: settings.k_max {profile.Settings.KMax} is outside {DraftLength.Range}");
        }

        for (var i = 0; i < profile.Configurations.Count; i++)
        {
            var c = profile.Configurations[i];
            var at = $"profile {name}: configurations[{i}] ({c.Draft} {c.Quant})";
            if (c.Rounds == 0 || c.DraftTokensPerSecond.Count == 0)
            {
                throw new ProfileFormatException($"{at} has zero samples: profile it again (or delete the entry and resume profiling)");
            }

            if (c.AcceptanceByPosition.Count != profile.Settings.KMax)
            {
                throw new ProfileFormatException($"{at}: acceptance_by_position has {c.AcceptanceByPosition.Count} entries, expected k_max = {profile.Settings.KMax}");
            }

            if (!(c.DraftTokensPerSecond.Mean > 0))
            {
                throw new ProfileFormatException($"{at}: draft_tokens_per_s.mean must be positive");
            }

            if (c.AcceptanceByPosition.Any(a => a is < 0 or > 1))
            {
                throw new ProfileFormatException($"{at}: acceptance_by_position holds a rate outside 0..1");
            }
        }
    }
}
