using ConfigSpec.Contracts;
using System.Globalization;
using ConfigSpec.Fleet;
using ConfigSpec.Interop;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Profiling.Selection;
using ConfigSpec.Transport.Mqtt;
using Microsoft.Extensions.Configuration;

namespace ConfigSpec.Edge.Daemon;

/// <summary>
/// The daemon's settings, from <c>/etc/configspec/edge.json</c> (or <c>--config</c>), then <c>CONFIGSPEC_*</c>
/// environment variables (sections joined by <c>__</c>: <c>CONFIGSPEC_BROKER__URL</c>), then <c>--set key=value</c>
/// (sections joined by <c>:</c>). Validated at start; every error names the setting. Keys are listed in the README.
/// </summary>
public sealed record EdgeSettings
{
    public const string DefaultConfigPath = "/etc/configspec/edge.json";

    public const string DefaultBrokerUrl = "mqtt://127.0.0.1:1883";

    public const string DefaultStateDirectory = "/var/lib/configspec";

    /// <summary>The profiler's own defaults: a board profiles as the lab command does unless its settings say otherwise.</summary>
    private static readonly Profiling.Measurement.ProfilerOptions Profile = Profiling.Measurement.ProfilerOptions.Defaults;

    public const string DefaultHttp = "http://127.0.0.1:8089";

    /// <summary>
    /// The scalar settings, one row each: its key and how it is read into its property (bounds here; the default is the
    /// property's own initial value). The structured ones (device, broker, verifier, drafts, objective, weights, power,
    /// http) are read in <see cref="From"/>; the known keys are both.
    /// </summary>
    private static readonly Row[] Scalars =
    [
        new("k_max", (s, r) => s with { KMax = r.Int(s.KMax, DraftLength.Min, DraftLength.Max) }),
        new("pipeline", (s, r) => s with { Pipeline = r.Int(s.Pipeline, PipelineDepth.Min, PipelineDepth.Max) }),
        new("power_interval", (s, r) => s with { PowerInterval = TimeSpan.FromMilliseconds(r.Int((int)s.PowerInterval.TotalMilliseconds, 5, 60_000)) }),
        new("profile:max_rounds", (s, r) => s with { MaxRounds = r.Int(s.MaxRounds, 1, 100_000) }),
        new("profile:min_rounds", (s, r) => s with { MinRounds = r.Int(s.MinRounds, 1, 100_000) }),
        new("profile:tolerance", (s, r) => s with { Tolerance = r.Double(s.Tolerance, 0.001, 0.5) }),
        new("profile:timing_rounds", (s, r) => s with { TimingRounds = r.Int(s.TimingRounds, 0, 10_000) }),
        new("profile:chain_depth", (s, r) => s with { ChainDepth = r.Int(s.ChainDepth, PipelineDepth.Min, PipelineDepth.Max) }),
        new("profile:tokens_per_prompt", (s, r) => s with { TokensPerPrompt = r.Int(s.TokensPerPrompt, 8, 4096) }),
        new("profile:reprofile_hours", (s, r) => s with { ReprofileHours = r.Double(s.ReprofileHours, 0, 24 * 365) }),
        new("profile:idle_baseline", (s, r) => s with { IdleBaseline = r.Text(s.IdleBaseline)! }),
        new("fleet:adopt", (s, r) => s with { AdoptFleet = r.Bool(s.AdoptFleet) }),
        new("fleet:wait_s", (s, r) => s with { FleetWait = TimeSpan.FromSeconds(r.Double(s.FleetWait.TotalSeconds, 0, 600)) }),
        new("commands:max_age_s", (s, r) => s with { CommandMaxAge = TimeSpan.FromSeconds(r.Double(s.CommandMaxAge.TotalSeconds, 1, 365 * 86_400)) }),
        new("commands:session_hours", (s, r) => s with { SessionExpiry = TimeSpan.FromHours(r.Double(s.SessionExpiry.TotalHours, 0.01, 24 * 365)) }),
        new("metrics_interval_s", (s, r) => s with { MetricsInterval = TimeSpan.FromSeconds(r.Double(s.MetricsInterval.TotalSeconds, 0.1, 86_400)) }),
        new("home_assistant", (s, r) => s with { HomeAssistant = r.Bool(s.HomeAssistant) }),
        new("threads", (s, r) => s with { Threads = r.Int(s.Threads, 1, 256) }),
        new("ctx", (s, r) => s with { ContextLength = r.Int(s.ContextLength, 64, 1 << 20) }),
        new("max_tokens", (s, r) => s with { MaxTokens = r.Int(s.MaxTokens, 1, 1 << 20) }),
        new("llama_dir", (s, r) => s with { LlamaDirectory = r.Text(s.LlamaDirectory) }),
        new("gpu_layers", (s, r) => s with { GpuLayers = r.Int(s.GpuLayers, -1, 10_000) }),
    ];

    /// <summary>The structured settings read in <see cref="From"/>.</summary>
    private static readonly string[] Structured =
    [
        "device_id", "board", "state_dir", "broker:url", "broker:username", "broker:password", "broker:ca_file", "broker:cert_file", "broker:key_file",
        "verifier:target_id", "verifier:target", "verifier:broker", "drafts", "objective", "weights", "power", "http", "k_policy",
    ];

    /// <summary>Every key a settings file may hold, sections joined by ':'.</summary>
    public static IReadOnlyList<string> AllKeys { get; } = [.. Structured, .. Scalars.Select(r => r.Key)];

    /// <summary>The top-level names (a section or a key).</summary>
    public static readonly string[] Keys = [.. AllKeys.Select(k => k.Split(':')[0]).Distinct()];

    private static readonly string[] SectionKeys = [.. AllKeys.Where(k => k.Contains(':', StringComparison.Ordinal))];

    private static readonly string[] Sections = [.. SectionKeys.Select(k => k.Split(':')[0]).Distinct()];

    /// <summary>One scalar setting: its key and how its value is applied to the settings read so far.</summary>
    private sealed record Row(string Key, Func<EdgeSettings, Value, EdgeSettings> Apply);

    /// <summary>A setting's text as read, parsed by the kind its row asks for; absent keeps the default; errors name the key.</summary>
    private readonly record struct Value(string Key, string? Raw)
    {
        public int Int(int fallback, int min, int max) => Raw is not { Length: > 0 } text ? fallback
            : int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max ? v
            : throw new ConfigSpecException($"{Key} '{text}' must be an integer in {min}..{max}");

        public double Double(double fallback, double min, double max) => Raw is not { Length: > 0 } text ? fallback
            : double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max ? v
            : throw new ConfigSpecException(string.Create(CultureInfo.InvariantCulture, $"{Key} '{text}' must be a number in {min}..{max}"));

        public bool Bool(bool fallback) => Raw switch
        {
            null or "" => fallback,
            var t when bool.TryParse(t, out var b) => b,
            var t => throw new ConfigSpecException($"{Key} '{t}' must be true or false"),
        };

        public string? Text(string? fallback) => Raw is { Length: > 0 } text ? text : fallback;
    }

    public required string DeviceId { get; init; }

    /// <summary>Board model override (default: device tree or DMI).</summary>
    public string? Board { get; init; }

    public required string StateDirectory { get; init; }

    public required MqttClientOptions Broker { get; init; }

    public string? TargetId { get; init; }

    /// <summary>A target model verified in this process (lab use; production boards verify remotely).</summary>
    public string? TargetPath { get; init; }

    public MqttClientOptions? VerifierBroker { get; init; }

    public required IReadOnlyList<string> Drafts { get; init; }

    public Objective Objective { get; init; } = Objective.Goodput;

    public (double Goodput, double Cost, double Energy) Weights { get; init; } = (1, 1, 1);

    public int KMax { get; init; } = Profile.KMax;

    /// <summary>
    /// The deepest pipeline the selector may choose (D blocks in flight: the board drafts on while verdicts travel); the
    /// choice is published with the configuration. 1, the default, serves sequential rounds.
    /// </summary>
    public int Pipeline { get; init; } = 1;

    /// <summary>
    /// A draft-length policy choosing K per round up to <see cref="KMax"/> (static:K, confidence:P, ucb-specstop[...]); null
    /// serves every round with the selected configuration's K.
    /// </summary>
    public string? KPolicy { get; init; }

    /// <summary>Power source spec, "auto" or null (none).</summary>
    public string? Power { get; init; } = "auto";

    public TimeSpan PowerInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    public int MaxRounds { get; init; } = Profile.MaxRounds;

    public int MinRounds { get; init; } = Profile.MinRounds;

    public double Tolerance { get; init; } = Profile.Tolerance;

    public int TimingRounds { get; init; } = Profile.TimingRounds;

    /// <summary>Blocks in flight in the profile's chain pass (1 = none).</summary>
    public int ChainDepth { get; init; } = Profile.ChainDepth;

    public int TokensPerPrompt { get; init; } = Profile.TokensPerPrompt;

    /// <summary>Re-profile after this long (0 = only on command or when stale).</summary>
    public double ReprofileHours { get; init; }

    public string IdleBaseline { get; init; } = "2s";

    public bool AdoptFleet { get; init; } = true;

    public TimeSpan FleetWait { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>A command whose <c>time</c> is older than this (queued while the board was away) is refused, not applied late.</summary>
    public TimeSpan CommandMaxAge { get; init; } = TimeSpan.FromHours(1);

    /// <summary>How long the broker keeps this board's MQTT session, and the commands sent to it, while the board is away.</summary>
    public TimeSpan SessionExpiry { get; init; } = TimeSpan.FromHours(24);

    /// <summary>http://127.0.0.1:PORT, unix:/path.sock, or empty (MQTT only).</summary>
    public string Http { get; init; } = DefaultHttp;

    public TimeSpan MetricsInterval { get; init; } = TimeSpan.FromSeconds(30);

    public bool HomeAssistant { get; init; }

    public int Threads { get; init; } = Profile.Threads;

    public int ContextLength { get; init; } = Profile.ContextLength;

    public int MaxTokens { get; init; } = 256;

    public string? LlamaDirectory { get; init; }

    public int GpuLayers { get; init; }

    public string ProfilePath => Path.Combine(StateDirectory, "profile.json");

    public string ConfigPath => Path.Combine(StateDirectory, "config.json");

    public string OutboxDirectory => Path.Combine(StateDirectory, "outbox");

    /// <summary>Reads and validates; <paramref name="configFile"/> null means the default path if it exists.</summary>
    public static EdgeSettings Load(string? configFile, IReadOnlyList<string> overrides, IDictionary<string, string?>? environment = null)
    {
        var explicitFile = configFile is not null;
        configFile ??= DefaultConfigPath;
        if (explicitFile && !File.Exists(configFile))
        {
            throw new ConfigSpecException($"--config {configFile}: no such file");
        }

        var sets = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var o in overrides)
        {
            var eq = o.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new ConfigSpecException($"--set '{o}' must be key=value (sections joined by ':', e.g. broker:url=mqtt://host:1883)");
            }

            sets[o[..eq].Trim()] = o[(eq + 1)..].Trim();
        }

        var fileAndSets = new ConfigurationBuilder();
        if (File.Exists(configFile))
        {
            fileAndSets.AddJsonFile(Path.GetFullPath(configFile), optional: false);
        }

        fileAndSets.AddInMemoryCollection(sets);
        IConfigurationRoot declared;
        try
        {
            declared = fileAndSets.Build();
        }
        catch (Exception ex) when (ex is FormatException or InvalidDataException or IOException)
        {
            throw new ConfigSpecException($"{configFile}: not valid JSON settings: {(ex.InnerException ?? ex).Message}", ex);
        }

        CheckKnown(declared, configFile);
        var builder = new ConfigurationBuilder();
        builder.AddConfiguration(declared);
        if (environment is null)
        {
            builder.AddEnvironmentVariables("CONFIGSPEC_");
        }
        else
        {
            builder.AddInMemoryCollection(environment.Where(p => p.Key.StartsWith("CONFIGSPEC_", StringComparison.Ordinal))
                .Select(p => new KeyValuePair<string, string?>(p.Key["CONFIGSPEC_".Length..].Replace("__", ":", StringComparison.Ordinal), p.Value)));
        }

        builder.AddInMemoryCollection(sets); // command line wins over the environment
        return From(builder.Build());
    }

    private static void CheckKnown(IConfiguration declared, string file)
    {
        foreach (var section in declared.GetChildren())
        {
            if (!Keys.Contains(section.Key.ToLowerInvariant()))
            {
                throw new ConfigSpecException($"{file}: unknown setting '{section.Key}' (known: {string.Join(", ", Keys)})");
            }

            if (Sections.Contains(section.Key.ToLowerInvariant()))
            {
                foreach (var child in section.GetChildren())
                {
                    var key = $"{section.Key.ToLowerInvariant()}:{child.Key.ToLowerInvariant()}";
                    if (!SectionKeys.Contains(key))
                    {
                        throw new ConfigSpecException($"{file}: unknown setting '{key}' (known in {section.Key}: {string.Join(", ", SectionKeys.Where(k => k.StartsWith(section.Key.ToLowerInvariant() + ":", StringComparison.Ordinal)))})");
                    }
                }
            }
        }
    }

    private static EdgeSettings From(IConfiguration c)
    {
        var deviceId = c["device_id"] is { Length: > 0 } id ? id : DefaultDeviceId();
        try
        {
            FleetTopics.CheckDeviceId(deviceId, "device_id");
        }
        catch (ArgumentException ex)
        {
            throw new ConfigSpecException(ex.Message, ex);
        }

        var brokerUrl = c["broker:url"] ?? DefaultBrokerUrl;
        var (caFile, certFile, keyFile) = (ExistingFile(c, "broker:ca_file"), ExistingFile(c, "broker:cert_file"), ExistingFile(c, "broker:key_file"));
        var broker = MqttClientOptions.FromSettings(brokerUrl, "broker:url", c["broker:username"], c["broker:password"], caFile, certFile, keyFile)
            with { ClientId = "configspec-edge-" + deviceId };
        var verifierBroker = c["verifier:broker"] is { Length: > 0 } vb
            ? MqttClientOptions.FromSettings(vb, "verifier:broker", c["broker:username"], c["broker:password"], caFile, certFile, keyFile)
            : broker with { ClientId = "configspec-edge-" + deviceId + "-verify" };
        var target = c["verifier:target"];
        var targetId = c["verifier:target_id"];
        if (string.IsNullOrEmpty(target) && string.IsNullOrEmpty(targetId))
        {
            throw new ConfigSpecException("verifier:target_id is required (the target id the cloud verifier serves), or verifier:target for a target in this process");
        }

        if (target is { Length: > 0 } && !File.Exists(target))
        {
            throw new ConfigSpecException($"verifier:target {target}: no such file");
        }

        var drafts = ReadDrafts(c);
        foreach (var d in drafts)
        {
            if (!File.Exists(d))
            {
                throw new ConfigSpecException($"drafts: {d}: no such file");
            }
        }

        var objective = c["objective"] is { Length: > 0 } o ? Parse(() => SelectionSettings.ParseObjective(o), "objective") : Objective.Goodput;
        var weights = c["weights"] is { Length: > 0 } w ? Parse(() => SelectionSettings.ParseWeights(w), "weights") : (1, 1, 1);
        var power = c["power"] is { } p ? (p.Trim() is "" or "none" ? null : p.Trim()) : "auto";
        var http = c["http"] ?? DefaultHttp;
        if (http.Length > 0 && !http.StartsWith("unix:", StringComparison.Ordinal)
            && !(Uri.TryCreate(http, UriKind.Absolute, out var hu) && hu.Scheme == "http"))
        {
            throw new ConfigSpecException($"http '{http}' must be http://HOST:PORT, unix:/path/to.sock, or empty for none");
        }

        var settings = new EdgeSettings
        {
            DeviceId = deviceId,
            Board = c["board"] is { Length: > 0 } b ? b : null,
            StateDirectory = Path.GetFullPath(c["state_dir"] is { Length: > 0 } s ? s : DefaultStateDirectory),
            Broker = broker,
            VerifierBroker = target is { Length: > 0 } && c["verifier:target_id"] is null ? null : verifierBroker,
            TargetId = targetId,
            TargetPath = target is { Length: > 0 } ? target : null,
            Drafts = drafts,
            Objective = objective,
            Weights = weights,
            Power = power,
            Http = http,
            KPolicy = c["k_policy"] is { Length: > 0 } policy && policy != "profile" ? policy : null,
        };
        settings = Scalars.Aggregate(settings, (read, row) => row.Apply(read, new Value(row.Key, c[row.Key])));
        if (settings.KPolicy is { } spec)
        {
            _ = Parse(() => Speculative.Policies.DraftPolicies.Parse(spec, settings.KMax), "k_policy");
        }

        if (settings.MinRounds > settings.MaxRounds)
        {
            throw new ConfigSpecException($"profile:min_rounds {settings.MinRounds} exceeds profile:max_rounds {settings.MaxRounds}");
        }

        return settings;
    }

    /// <summary>An optional file setting: null when absent or empty, refused (naming the setting) when the file is missing.</summary>
    private static string? ExistingFile(IConfiguration c, string key) => c[key] switch
    {
        null or "" => null,
        var path when File.Exists(path) => path,
        var path => throw new ConfigSpecException($"{key} {path}: no such file"),
    };

    private static List<string> ReadDrafts(IConfiguration c)
    {
        // A comma-separated value (environment, --set) replaces the file's array.
        var list = c["drafts"] is { Length: > 0 } csv
            ? [.. csv.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)]
            : c.GetSection("drafts").GetChildren().Select(x => x.Value).Where(v => !string.IsNullOrWhiteSpace(v)).Select(v => v!.Trim()).ToList();

        return list.Count > 0 ? list : throw new ConfigSpecException("drafts: at least one draft GGUF file is required (a JSON array, or comma-separated)");
    }

    /// <summary>"edge-" and the first 12 hex digits of /etc/machine-id, else the host name.</summary>
    public static string DefaultDeviceId(string etcRoot = "/etc")
    {
        var file = Path.Combine(etcRoot, "machine-id");
        if (File.Exists(file) && File.ReadAllText(file).Trim() is { Length: >= 12 } mid && mid.All(char.IsAsciiHexDigit))
        {
            return "edge-" + mid[..12].ToLowerInvariant();
        }

        return new string(Environment.MachineName.Select(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' or '.' ? ch : '-').ToArray());
    }

    private static T Parse<T>(Func<T> parse, string name)
    {
        try
        {
            return parse();
        }
        catch (ConfigSpecException ex)
        {
            throw new ConfigSpecException(ex is SettingException setting ? setting.WithName(name) : $"{name}: {ex.Message}", ex);
        }
    }

    /// <summary>True when <paramref name="profile"/> no longer describes this board: drafts, software, K range or target changed.</summary>
    public string? StaleReason(BoardProfile profile, IReadOnlyCollection<string> draftHashes)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(draftHashes);
        var have = profile.Configurations.Select(x => x.Sha256).ToHashSet(StringComparer.Ordinal);
        var missing = draftHashes.Count(h => !have.Contains(h));
        if (missing > 0)
        {
            return $"{missing} draft(s) not in the profile";
        }

        var software = DeviceIdentity.Software();
        if (profile.Software.ConfigSpec != software.ConfigSpec || profile.Software.LlamaCpp != software.LlamaCpp)
        {
            return $"software changed ({profile.Software.ConfigSpec}/{profile.Software.LlamaCpp} → {software.ConfigSpec}/{software.LlamaCpp})";
        }

        if (profile.Settings.KMax != KMax)
        {
            return $"k_max changed ({profile.Settings.KMax} → {KMax})";
        }

        var target = TargetId ?? Path.GetFileNameWithoutExtension(TargetPath!);
        if (profile.Verifier.Target != target)
        {
            return $"target changed ('{profile.Verifier.Target}' → '{target}')";
        }

        return ReprofileHours > 0 && DateTimeOffset.UtcNow - profile.Updated > TimeSpan.FromHours(ReprofileHours)
            ? $"older than profile:reprofile_hours ({ReprofileHours.ToString(CultureInfo.InvariantCulture)} h)"
            : null;
    }
}
