using ConfigSpec.Contracts;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ConfigSpec.Interop;
using ConfigSpec.Profiling.Measurement;

namespace ConfigSpec.Profiling.Profiles;

/// <summary>A profile file that cannot be used, with the file and the field at fault.</summary>
public sealed class ProfileFormatException : ConfigSpecException
{
    public ProfileFormatException() { }

    public ProfileFormatException(string message) : base(message) { }

    public ProfileFormatException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>Reads and writes the versioned JSON profile (no reflection: AOT-clean).</summary>
public static class ProfileJson
{
    public static string Serialize(BoardProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("schema", BoardProfile.Schema);
            w.WriteNumber("version", profile.Version);
            w.WriteString("created_utc", profile.Created.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture));
            w.WriteString("updated_utc", profile.Updated.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture));
            w.WriteStartObject("device");
            w.WriteString("id", profile.Device.Id);
            w.WriteString("hostname", profile.Device.Hostname);
            w.WriteString("board", profile.Device.Board);
            w.WriteString("os", profile.Device.Os);
            w.WriteString("arch", profile.Device.Architecture);
            w.WriteNumber("cores", profile.Device.Cores);
            w.WriteEndObject();
            w.WriteStartObject("software");
            w.WriteString("configspec", profile.Software.ConfigSpec);
            w.WriteString("llama_cpp", profile.Software.LlamaCpp);
            w.WriteString("runtime", profile.Software.Runtime);
            w.WriteEndObject();
            w.WriteStartObject("power");
            w.WriteString("source", profile.Power.Source);
            w.WriteString("scope", profile.Power.Scope);
            w.WriteBoolean("estimated", profile.Power.Estimated);
            w.WriteNumberOrNull("idle_w", profile.Power.IdleWatts);
            w.WriteEndObject();
            w.WriteStartObject("verifier");
            w.WriteString("kind", profile.Verifier.Kind);
            w.WriteString("target", profile.Verifier.Target);
            if (profile.Verifier.Broker is not null)
            {
                w.WriteString("broker", profile.Verifier.Broker);
            }

            w.WriteEndObject();
            var s = profile.Settings;
            w.WriteStartObject("settings");
            w.WriteNumber("k_max", s.KMax);
            w.WriteNumber("tolerance", s.Tolerance);
            w.WriteNumber("confidence", s.Confidence);
            w.WriteNumber("min_rounds", s.MinRounds);
            w.WriteNumber("max_rounds", s.MaxRounds);
            w.WriteNumber("tokens_per_prompt", s.TokensPerPrompt);
            w.WriteString("prompt_source", s.PromptSource);
            w.WriteNumber("prompt_count", s.PromptCount);
            w.WriteEndObject();
            w.WriteArray("configurations", profile.Configurations, (w, c) =>
            {
                w.WriteStartObject();
                w.WriteString("draft", c.Draft);
                w.WriteString("quant", c.Quant);
                w.WriteString("file", c.File);
                w.WriteNumber("file_bytes", c.FileBytes);
                w.WriteString("sha256", c.Sha256);
                w.WriteNumber("load_s", c.LoadSeconds);
                w.WriteNumber("resident_mb", c.ResidentMegabytes);
                w.WriteNumber("rounds", c.Rounds);
                w.WriteNumber("tokens", c.Tokens);
                w.WriteNumber("prompts", c.Prompts);
                WriteEstimate(w, "draft_tokens_per_s", c.DraftTokensPerSecond);
                WriteEstimate(w, "mean_accepted", c.MeanAccepted);
                w.WriteNumber("draft_overhead_s", c.DraftOverheadSeconds);
                w.WriteArray("draft_s_by_k", c.DraftSecondsByK, (w, t) => w.WriteNumberValue(t));
                w.WriteBoolean("converged", c.Converged);
                w.WriteArray("acceptance_by_position", c.AcceptanceByPosition, (w, a) => w.WriteNumberOrNullValue(a));
                w.WriteArray("reached_by_position", c.ReachedByPosition, (w, n) => w.WriteNumberValue(n));
                w.WritePropertyName("verify");
                WriteTiming(w, c.Verify);
                w.WriteArray("timing_by_k", c.TimingByK, WriteTiming);
                if (c.Power is { } power)
                {
                    w.WriteStartObject("power");
                    w.WriteNumber("draft_w", power.DraftWatts);
                    w.WriteNumber("joules", power.Joules);
                    w.WriteNumber("seconds", power.Seconds);
                    w.WriteNumber("windows", power.Windows);
                    w.WriteEndObject();
                }
                else
                {
                    w.WriteNull("power");
                }

                w.WriteEndObject();
            });
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

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
            document = JsonDocument.Parse(text);
        }
        catch (JsonException ex)
        {
            throw new ProfileFormatException($"profile {name}: not JSON ({ex.Message})", ex);
        }

        using (document)
        {
            var r = new Reader(name);
            var root = document.RootElement;
            r.Expect(root, JsonValueKind.Object, "the top level");
            var schema = r.String(root, "schema");
            if (schema != BoardProfile.Schema)
            {
                throw new ProfileFormatException($"profile {name}: schema is '{schema}', expected '{BoardProfile.Schema}' (not a ConfigSpec profile)");
            }

            var version = r.Int(root, "version");
            if (version != BoardProfile.CurrentVersion)
            {
                throw new ProfileFormatException(
                    $"profile {name}: version {version} is not supported by this program (it reads version {BoardProfile.CurrentVersion}); profile the board again");
            }

            var device = r.Object(root, "device");
            var software = r.Object(root, "software");
            var power = r.Object(root, "power");
            var verifier = r.Object(root, "verifier");
            var settings = r.Object(root, "settings");
            var profile = new BoardProfile
            {
                Version = version,
                Created = r.Time(root, "created_utc"),
                Updated = r.Time(root, "updated_utc"),
                Device = new DeviceInfo(r.String(device, "id"), r.String(device, "hostname"), r.String(device, "board"), r.String(device, "os"),
                    r.String(device, "arch"), r.Int(device, "cores")),
                Software = new SoftwareInfo(r.String(software, "configspec"), r.String(software, "llama_cpp"), r.String(software, "runtime")),
                Power = new PowerInfo(r.String(power, "source"), r.String(power, "scope"), r.Bool(power, "estimated"), r.NullableNumber(power, "idle_w")),
                Verifier = new VerifierInfo(r.String(verifier, "kind"), r.String(verifier, "target"), Reader.OptionalString(verifier, "broker")),
                Settings = new ProfileSettings(r.Int(settings, "k_max"), r.Number(settings, "tolerance"), r.Number(settings, "confidence"),
                    r.Int(settings, "min_rounds"), r.Int(settings, "max_rounds"), r.Int(settings, "tokens_per_prompt"), r.String(settings, "prompt_source"),
                    r.Int(settings, "prompt_count")),
                Configurations = [.. r.Array(root, "configurations").Select((e, i) => r.Configuration(e, $"configurations[{i}]"))],
            };
            Validate(profile, name);
            return profile;
        }
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

    private static void WriteTiming(Utf8JsonWriter w, VerifyTiming v)
    {
        w.WriteStartObject();
        w.WriteNumber("k", v.K);
        w.WriteNumber("rounds", v.Rounds);
        w.WriteNumber("round_trip_median_s", v.RoundTripMedian);
        w.WriteNumber("round_trip_p95_s", v.RoundTripP95);
        w.WriteNumber("server_median_s", v.ServerMedian);
        w.WriteNumber("network_median_s", v.NetworkMedian);
        w.WriteNumber("wait_mean_s", v.WaitMean);
        w.WriteNumber("draft_mean_s", v.DraftMean);
        w.WriteEndObject();
    }

    private static void WriteEstimate(Utf8JsonWriter w, string name, Estimate e)
    {
        w.WriteStartObject(name);
        w.WriteNumber("mean", e.Mean);
        w.WriteNumberOrNull("ci_low", double.IsFinite(e.Low) ? e.Low : null);
        w.WriteNumberOrNull("ci_high", double.IsFinite(e.High) ? e.High : null);
        w.WriteNumber("n", e.Count);
        w.WriteEndObject();
    }

    /// <summary>Field access that names the field at fault.</summary>
    private sealed class Reader(string name)
    {
        public void Expect(JsonElement e, JsonValueKind kind, string path)
        {
            if (e.ValueKind != kind)
            {
                throw new ProfileFormatException($"profile {name}: {path} must be {Describe(kind)}, found {Describe(e.ValueKind)}");
            }
        }

        public JsonElement Property(JsonElement e, string key, string path = "")
        {
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(key, out var value))
            {
                throw new ProfileFormatException($"profile {name}: missing field {Join(path, key)}");
            }

            return value;
        }

        public JsonElement Object(JsonElement e, string key, string path = "")
        {
            var value = Property(e, key, path);
            Expect(value, JsonValueKind.Object, Join(path, key));
            return value;
        }

        public List<JsonElement> Array(JsonElement e, string key, string path = "")
        {
            var value = Property(e, key, path);
            Expect(value, JsonValueKind.Array, Join(path, key));
            return value.EnumerateArray().ToList();
        }

        public string String(JsonElement e, string key, string path = "")
        {
            var value = Property(e, key, path);
            Expect(value, JsonValueKind.String, Join(path, key));
            return value.GetString()!;
        }

        public static string? OptionalString(JsonElement e, string key) =>
            e.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

        public bool Bool(JsonElement e, string key, string path = "")
        {
            var value = Property(e, key, path);
            return value.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw new ProfileFormatException($"profile {name}: {Join(path, key)} must be true or false, found {Describe(value.ValueKind)}"),
            };
        }

        public double Number(JsonElement e, string key, string path = "")
        {
            var value = Property(e, key, path);
            Expect(value, JsonValueKind.Number, Join(path, key));
            return value.GetDouble();
        }

        public double? NullableNumber(JsonElement e, string key, string path = "")
        {
            var value = Property(e, key, path);
            return value.ValueKind == JsonValueKind.Null ? null : Number(e, key, path);
        }

        public int Int(JsonElement e, string key, string path = "")
        {
            var value = Property(e, key, path);
            Expect(value, JsonValueKind.Number, Join(path, key));
            return value.TryGetInt32(out var n) ? n : throw new ProfileFormatException($"profile {name}: {Join(path, key)} must be a whole number");
        }

        public DateTimeOffset Time(JsonElement e, string key)
        {
            var text = String(e, key);
            return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var time)
                ? time
                : throw new ProfileFormatException($"profile {name}: {key} '{text}' is not an ISO 8601 time");
        }

        public VerifyTiming Timing(JsonElement e, string path)
        {
            Expect(e, JsonValueKind.Object, path);
            return new VerifyTiming(Int(e, "k", path), Int(e, "rounds", path), Number(e, "round_trip_median_s", path), Number(e, "round_trip_p95_s", path),
                Number(e, "server_median_s", path), Number(e, "wait_mean_s", path), Number(e, "draft_mean_s", path));
        }

        public Estimate Estimate(JsonElement e, string key, string path)
        {
            var o = Object(e, key, path);
            var at = Join(path, key);
            return new Estimate(Number(o, "mean", at), NullableNumber(o, "ci_low", at) ?? double.NegativeInfinity,
                NullableNumber(o, "ci_high", at) ?? double.PositiveInfinity, Int(o, "n", at));
        }

        public ConfigurationProfile Configuration(JsonElement e, string path)
        {
            Expect(e, JsonValueKind.Object, path);
            var powerElement = Property(e, "power", path);
            DraftPower? power = null;
            if (powerElement.ValueKind != JsonValueKind.Null)
            {
                var at = Join(path, "power");
                Expect(powerElement, JsonValueKind.Object, at);
                power = new DraftPower(Number(powerElement, "draft_w", at), Number(powerElement, "joules", at), Number(powerElement, "seconds", at),
                    Int(powerElement, "windows", at));
            }

            var alpha = Array(e, "acceptance_by_position", path).Select((a, i) => a.ValueKind switch
            {
                JsonValueKind.Null => (double?)null,
                JsonValueKind.Number => a.GetDouble(),
                _ => throw new ProfileFormatException($"profile {name}: {path}.acceptance_by_position[{i}] must be a number or null"),
            }).ToList();
            var reached = Array(e, "reached_by_position", path).Select((a, i) => a.ValueKind == JsonValueKind.Number && a.TryGetInt64(out var n)
                ? n
                : throw new ProfileFormatException($"profile {name}: {path}.reached_by_position[{i}] must be a whole number")).ToList();
            return new ConfigurationProfile
            {
                Draft = String(e, "draft", path),
                Quant = String(e, "quant", path),
                File = String(e, "file", path),
                FileBytes = (long)Number(e, "file_bytes", path),
                Sha256 = String(e, "sha256", path),
                LoadSeconds = Number(e, "load_s", path),
                ResidentMegabytes = Number(e, "resident_mb", path),
                Rounds = Int(e, "rounds", path),
                Tokens = Int(e, "tokens", path),
                Prompts = Int(e, "prompts", path),
                DraftTokensPerSecond = Estimate(e, "draft_tokens_per_s", path),
                MeanAccepted = Estimate(e, "mean_accepted", path),
                DraftSecondsByK = [.. Array(e, "draft_s_by_k", path).Select((a, i) => a.ValueKind == JsonValueKind.Number
                    ? a.GetDouble()
                    : throw new ProfileFormatException($"profile {name}: {path}.draft_s_by_k[{i}] must be a number"))],
                Converged = Bool(e, "converged", path),
                AcceptanceByPosition = alpha,
                ReachedByPosition = reached,
                Verify = Timing(Property(e, "verify", path), Join(path, "verify")),
                TimingByK = [.. Array(e, "timing_by_k", path).Select((t, i) => Timing(t, $"{path}.timing_by_k[{i}]"))],
                Power = power,
            };
        }

        private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

        private static string Describe(JsonValueKind kind) => kind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => "an array",
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "true or false",
            JsonValueKind.Null => "null",
            _ => "nothing",
        };
    }
}
