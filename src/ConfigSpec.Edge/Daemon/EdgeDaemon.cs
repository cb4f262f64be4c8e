using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using ConfigSpec.Board;
using ConfigSpec.Fleet;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Fleet.Systemd;
using ConfigSpec.Interop;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Profiling.Measurement;
using ConfigSpec.Profiling.Profiles;
using ConfigSpec.Profiling.Prompts;
using ConfigSpec.Profiling.Selection;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Transport.Mqtt;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ConfigSpec.Edge.Daemon;

/// <summary>
/// The board's life cycle: connect and announce; load the last profile, and when it is missing or stale adopt the
/// fleet's retained recommendation for this board model or profile (resuming a profile that was interrupted); select
/// for the objective; publish; serve; and act on commands (re-profile, set objective, apply) and the re-profile schedule.
/// </summary>
public sealed partial class EdgeDaemon(
    EdgeSettings settings, EdgePublisher publisher, EdgeServer server, ServiceNotifier notifier, IHostApplicationLifetime lifetime, ILogger<EdgeDaemon> logger)
    : BackgroundService
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;
    private readonly Channel<(CommandMessage Command, MqttMessage Source)> _commands = Channel.CreateBounded<(CommandMessage, MqttMessage)>(16);
    private readonly TaskCompletionSource _recommendationSeen = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<string, string> _drafts = new(StringComparer.Ordinal); // sha256 → path
    private RecommendationMessage? _recommendation;
    private BoardProfile? _profile;
    private VerifierConnection? _connection;
    private Objective _objective = settings.Objective;
    private LlamaRuntimeOptions? _runtime;
    private string? _failure;
    private Task? _dispatch;

    /// <summary>
    /// False once the MQTT dispatcher (commands, generation requests, recommendations) has stopped while the daemon is
    /// still meant to run; the systemd watchdog is fed only while this is true, so a wedged daemon gets restarted.
    /// </summary>
    public bool Alive => _failure is null && (_dispatch is null || !_dispatch.IsCompleted);

    private string ObjectiveName => Name(_objective);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await RunAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: work in progress was checkpointed (the profile is saved after every configuration).
        }
        catch (Exception ex) when (ex is ConfigSpecException or IOException)
        {
            // Exit non-zero so the service manager restarts the daemon (Restart=on-failure); a profile in progress
            // resumes from its last saved configuration.
            Log.Failed(logger, ex.Message);
            _failure = ex.Message;
            SetState(BoardState.Error, ex.Message);
            Environment.ExitCode = 1;
            lifetime.StopApplication();
        }
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        await publisher.StartAsync(cancellationToken).ConfigureAwait(false);
        var id = settings.DeviceId;
        // Commands wait on the broker while the board is away (QoS 1 in a persistent session); generation requests are
        // live (QoS 0: a request nobody served in time is not run hours later); the recommendation is retained.
        await publisher.SubscribeAsync(FleetTopics.Command(id), 1, cancellationToken).ConfigureAwait(false);
        await publisher.SubscribeAsync(FleetTopics.Generate(id), 0, cancellationToken).ConfigureAwait(false);
        await publisher.SubscribeAsync(FleetTopics.Recommendation(publisher.Board), 1, cancellationToken).ConfigureAwait(false);
        _dispatch = Task.Run(() => DispatchAsync(cancellationToken), CancellationToken.None);
        SetState(BoardState.Starting, "hashing drafts");
        if (settings.HomeAssistant)
        {
            publisher.HomeAssistantDiscovery();
        }

        _ = Task.Run(() => MetricsLoopAsync(cancellationToken), CancellationToken.None);
        foreach (var path in settings.Drafts)
        {
            _drafts[await Profiler.HashAsync(path, cancellationToken).ConfigureAwait(false)] = Path.GetFullPath(path);
        }

        _runtime = new LlamaRuntimeOptions { LibraryDirectory = settings.LlamaDirectory };
        LlamaRuntime.Initialize(_runtime);
        _connection = await OpenVerifierAsync(cancellationToken).ConfigureAwait(false);
        var choice = await server.PauseAsync("choosing a configuration", () => DecideAsync(false, cancellationToken), cancellationToken).ConfigureAwait(false);
        await ActivateAsync(choice, cancellationToken).ConfigureAwait(false);

        var nextProfile = settings.ReprofileHours > 0 ? DateTimeOffset.UtcNow.AddHours(settings.ReprofileHours) : DateTimeOffset.MaxValue;
        while (!cancellationToken.IsCancellationRequested)
        {
            using var tick = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            tick.CancelAfter(settings.ReprofileHours > 0 ? TimeSpan.FromHours(Math.Min(settings.ReprofileHours, 1.0 / 60)) : TimeSpan.FromMinutes(1));
            (CommandMessage Command, MqttMessage Source) next;
            try
            {
                next = await _commands.Reader.ReadAsync(tick.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                if (DateTimeOffset.UtcNow >= nextProfile)
                {
                    nextProfile = DateTimeOffset.UtcNow.AddHours(settings.ReprofileHours);
                    await ReprofileAsync("scheduled", cancellationToken).ConfigureAwait(false);
                }

                continue;
            }

            await HandleCommandAsync(next.Command, next.Source, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<VerifierConnection> OpenVerifierAsync(CancellationToken cancellationToken)
    {
        var generation = new GenerationOptions { ContextLength = settings.ContextLength, Threads = settings.Threads, DeviceId = settings.DeviceId };
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await VerifierConnection.OpenAsync(settings.TargetPath, settings.VerifierBroker, settings.TargetId, settings.DeviceId, generation,
                    path => LlamaModel.Load(path, new LlamaModelOptions { GpuLayers = settings.GpuLayers }, _runtime), cancellationToken).ConfigureAwait(false);
            }
            catch (MqttException ex)
            {
                SetState(BoardState.Starting, $"waiting for the verifier's broker (attempt {attempt}): {ex.Message}");
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(30, 2 * attempt)), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The configuration to serve: from a fresh profile, else the fleet's recommendation, else a new profile.</summary>
    private async Task<ServingChoice> DecideAsync(bool forceProfile, CancellationToken cancellationToken)
    {
        var profile = forceProfile ? null : LoadProfile();
        var stale = profile is null ? "no profile yet" : settings.StaleReason(profile, _drafts.Keys);
        if (!forceProfile && stale is null)
        {
            _profile = Restrict(profile!);
            if (LoadSavedChoice() is { Source: "command" } saved && saved.Objective == ObjectiveName)
            {
                Log.Kept(logger, saved.Draft, saved.K);
                return saved;
            }

            return Select(_profile, "profile");
        }

        Log.Stale(logger, stale ?? "re-profile requested");
        if (!forceProfile && settings.AdoptFleet && await FleetChoiceAsync(cancellationToken).ConfigureAwait(false) is { } adopted)
        {
            _profile = null;
            return adopted;
        }

        // Keep the configurations of an interrupted profile when nothing but missing drafts makes it stale.
        var resumable = !forceProfile && profile is not null && settings.StaleReason(profile with { Configurations = [] }, []) is null ? profile : null;
        _profile = Restrict(await MeasureAsync(resumable, cancellationToken).ConfigureAwait(false));
        return Select(_profile, "profile");
    }

    private BoardProfile? LoadProfile()
    {
        // Writes torn by a kill leave temporaries beside the files (which are whole): remove those of dead writers.
        AtomicFile.RemoveAbandonedIn(Path.GetDirectoryName(Path.GetFullPath(settings.ProfilePath))!);
        if (!File.Exists(settings.ProfilePath))
        {
            return null;
        }

        try
        {
            return ProfileJson.Load(settings.ProfilePath);
        }
        catch (ProfileFormatException ex)
        {
            var aside = settings.ProfilePath + ".bad";
            File.Move(settings.ProfilePath, aside, true);
            Log.BadProfile(logger, ex.Message, aside);
            return null;
        }
    }

    /// <summary>Only the drafts this board has now take part in selection.</summary>
    private BoardProfile Restrict(BoardProfile profile) =>
        profile with { Configurations = [.. profile.Configurations.Where(c => _drafts.ContainsKey(c.Sha256))] };

    private async Task<ServingChoice?> FleetChoiceAsync(CancellationToken cancellationToken)
    {
        SetState(BoardState.Starting, $"waiting {settings.FleetWait.TotalSeconds.ToString("0.#", C)} s for the fleet's recommendation for {FleetTopics.BoardKey(publisher.Board)}");
        try
        {
            await _recommendationSeen.Task.WaitAsync(settings.FleetWait, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return null;
        }

        if (_recommendation?.Objectives.TryGetValue(ObjectiveName, out var r) != true || !_drafts.TryGetValue(r!.Sha256, out var path) || r.K > settings.KMax)
        {
            Log.FleetUnusable(logger, ObjectiveName);
            return null;
        }

        var reason = string.Create(C, $"fleet recommendation for {_recommendation.Board}: best {ObjectiveName} ({r.Value:0.###} {r.Unit}, median of {r.Devices} device(s)); this board has the draft");
        var predicted = new PredictedFigures(ObjectiveName == "goodput" ? r.Value : null, ObjectiveName == "cost" ? r.Value : null, ObjectiveName == "energy" ? r.Value : null);
        return new ServingChoice(path, new ServedConfig(ObjectiveName, r.Draft, r.Quant, r.Sha256, r.K, predicted, reason, "fleet"));
    }

    private async Task<BoardProfile> MeasureAsync(BoardProfile? resume, CancellationToken cancellationToken)
    {
        var options = new ProfilerOptions
        {
            KMax = settings.KMax,
            Tolerance = settings.Tolerance,
            MinRounds = settings.MinRounds,
            MaxRounds = settings.MaxRounds,
            TokensPerPrompt = settings.TokensPerPrompt,
            TimingRounds = settings.TimingRounds,
            ChainDepth = settings.ChainDepth,
            ContextLength = settings.ContextLength,
            Threads = settings.Threads,
            DeviceId = settings.DeviceId,
            Model = new LlamaModelOptions { GpuLayers = settings.GpuLayers },
        };
        options.Validate();
        var prompts = PromptSet.BuiltIn();
        var specs = _drafts.Select(p => new DraftSpec(p.Value, Sha256: p.Key)).OrderBy(s => s.Path, StringComparer.Ordinal).ToList();
        var kept = resume?.Configurations.Count(c => _drafts.ContainsKey(c.Sha256)) ?? 0;
        SetState(BoardState.Profiling, $"{specs.Count - kept} of {specs.Count} drafts to measure");
        var profile = resume ?? ProfileRun.NewProfile(options, prompts, server.Power, _connection!, publisher.Board);
        var last = 0L;
        var profiler = new Profiler(_connection!.Verifier, prompts, options, server.Power?.Sampler, _runtime)
        {
            Progress = p =>
            {
                var now = Environment.TickCount64;
                if (now - last > 2000)
                {
                    last = now;
                    notifier.Status(string.Create(C, $"profiling {p.Index}/{p.Count} {p.Configuration}: {p.Phase} {p.Rounds}/{p.MaxRounds}"));
                }
            },
        };
        profile = await ProfileRun.MeasureAsync(profile, specs, profiler, settings.ProfilePath, line =>
        {
            Log.Profiled(logger, line);
            SetState(BoardState.Profiling, line.Length > 200 ? line[..200] : line);
        }, null, cancellationToken).ConfigureAwait(false);
        publisher.Profile(profile);
        return profile;
    }

    private ServingChoice Select(BoardProfile profile, string source)
    {
        var selection = new SelectionSettings { Objective = _objective, Weights = settings.Weights, MaxPipeline = settings.Pipeline };
        SelectionResult result;
        try
        {
            result = Selector.Select(profile, selection);
        }
        catch (ConfigSpecException ex) when (_objective is Objective.Energy or Objective.Weighted)
        {
            Log.ObjectiveFallback(logger, ObjectiveName, ex.Message);
            result = Selector.Select(profile, selection with { Objective = Objective.Goodput });
        }

        var c = result.Chosen;
        return new ServingChoice(_drafts[c.Configuration.Sha256], new ServedConfig(ObjectiveName, c.Draft, c.Quant, c.Configuration.Sha256, c.K,
            new PredictedFigures(c.Goodput, c.TokensPerUsd, c.JoulesPerToken), result.Reason, source, c.Pipeline));
    }

    private async Task ActivateAsync(ServingChoice choice, CancellationToken cancellationToken)
    {
        await server.ActivateAsync(choice, _connection!,
            path => LlamaModel.Load(path, new LlamaModelOptions { GpuLayers = settings.GpuLayers }, _runtime), cancellationToken).ConfigureAwait(false);
        AtomicFile.Write(settings.ConfigPath, SavedChoice(choice));
        if (_profile is not null)
        {
            publisher.Profile(_profile);
        }

        publisher.Config(choice.Config);
        SetState(BoardState.Serving, string.Create(C, $"{choice.Draft} ({choice.Quant}) K={choice.K}{(choice.Pipeline > 1 ? $" D={choice.Pipeline}" : string.Empty)} for {choice.Objective} [{choice.Source}]"));
        Log.Serving(logger, choice.Draft, choice.Quant, choice.K, choice.Objective, choice.Source);
    }

    private static string SavedChoice(ServingChoice choice) => Contract.Write(new SavedChoice(choice.DraftPath, choice.Config), indented: true);

    /// <summary>The choice saved at the last activation, when its draft is still one of this board's (null when none is usable).</summary>
    private ServingChoice? LoadSavedChoice()
    {
        try
        {
            var saved = Contract.Read<SavedChoice>(File.ReadAllBytes(settings.ConfigPath));
            return _drafts.TryGetValue(saved.Config.Sha256, out var path) ? new ServingChoice(path, saved.Config) : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ContractException)
        {
            return null;
        }
    }

    private async Task ReprofileAsync(string why, CancellationToken cancellationToken)
    {
        Log.Reprofile(logger, why);
        var choice = await server.PauseAsync("profiling (" + why + ")", () => DecideAsync(true, cancellationToken), cancellationToken).ConfigureAwait(false);
        await ActivateAsync(choice, cancellationToken).ConfigureAwait(false);
    }

    private async Task HandleCommandAsync(CommandMessage command, MqttMessage source, CancellationToken cancellationToken)
    {
        string? error = null;
        try
        {
            switch (command.Command)
            {
                case FleetCommand.Reprofile:
                    await ReprofileAsync("command", cancellationToken).ConfigureAwait(false);
                    break;
                case FleetCommand.SetObjective:
                    var objective = SelectionSettings.ParseObjective(command.Objective!);
                    if (_profile is null)
                    {
                        throw new ConfigSpecException("this board serves the fleet's recommendation and has no profile of its own: send reprofile first");
                    }

                    _objective = objective;
                    await ActivateAsync(Select(_profile, "profile"), cancellationToken).ConfigureAwait(false);
                    break;
                case FleetCommand.Apply:
                    await ActivateAsync(Apply(command), cancellationToken).ConfigureAwait(false);
                    break;
            }
        }
        catch (ConfigSpecException ex)
        {
            error = ex.Message;
            Log.CommandRefused(logger, CommandMessage.Name(command.Command), ex.Message);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException or FormatException or OverflowException)
        {
            // A command may name a file that went away or hold a value no reader expected: it fails, the daemon does not.
            error = $"{CommandMessage.Name(command.Command)} failed: {ex.Message}";
            Log.CommandRefused(logger, CommandMessage.Name(command.Command), error);
        }

        await ReplyAsync(source, command.Id, CommandMessage.Name(command.Command), error).ConfigureAwait(false);
    }

    private ServingChoice Apply(CommandMessage command)
    {
        var match = _drafts.Where(p => p.Key == command.Draft || Path.GetFileName(p.Value) == command.Draft || Path.GetFileNameWithoutExtension(p.Value) == command.Draft).ToList();
        if (match.Count != 1)
        {
            throw new ConfigSpecException($"apply: draft '{command.Draft}' is not one of this board's drafts ({string.Join(", ", _drafts.Values.Select(Path.GetFileName))})");
        }

        if (command.K > settings.KMax)
        {
            throw new ConfigSpecException($"apply: k {command.K} exceeds this board's k_max {settings.KMax}");
        }

        var (sha, path) = match[0];
        var pipeline = command.Pipeline ?? 1;
        var candidate = _profile is null ? null : Selector.Predict(_profile, new SelectionSettings { MaxPipeline = pipeline })
            .FirstOrDefault(c => c.Configuration.Sha256 == sha && c.K == command.K && c.Pipeline == pipeline);
        var quant = candidate?.Quant ?? Profiler.QuantName(Interop.Gguf.GgufFile.Read(path));
        return new ServingChoice(path, new ServedConfig(ObjectiveName, candidate?.Draft ?? Path.GetFileNameWithoutExtension(path), quant, sha, command.K!.Value,
            new PredictedFigures(candidate?.Goodput, candidate?.TokensPerUsd, candidate?.JoulesPerToken), "applied by command" + (command.Id is null ? string.Empty : $" {command.Id}"), "command", pipeline));
    }

    private async Task ReplyAsync(MqttMessage source, string? id, string command, string? error)
    {
        EdgeMetrics.Command(command == "(malformed)" ? "malformed" : command, error is null);
        var payload = Contract.Write(new CommandResult(id, command, error is null, error, error is null ? server.Choice?.Config : null));
        try
        {
            await publisher.Client.PublishAsync(source.ResponseTopic ?? FleetTopics.CommandResult(settings.DeviceId), Encoding.UTF8.GetBytes(payload), 1, false,
                new MqttPublishProperties(CorrelationData: source.CorrelationData)).ConfigureAwait(false);
        }
        catch (MqttException ex)
        {
            Log.ReplyFailed(logger, ex.Message);
        }
    }

    private async Task DispatchAsync(CancellationToken cancellationToken)
    {
        var recommendationTopic = FleetTopics.Recommendation(publisher.Board);
        try
        {
            await foreach (var m in publisher.Client.Messages.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                // Whatever one message holds or causes, it is refused, counted and logged once per kind, and the loop
                // (which the watchdog feed depends on) goes on with the next.
                var input = FleetTopics.Parse(m.Topic) is var (device, kind) && device == settings.DeviceId
                    ? kind switch { EdgeTopicKind.Command => DaemonInput.Command, EdgeTopicKind.Generate => DaemonInput.Generate, _ => DaemonInput.Other }
                    : m.Topic == recommendationTopic ? DaemonInput.Recommendation : DaemonInput.Other;
                try
                {
                    await DispatchOneAsync(m, input).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    throw;
                }
#pragma warning disable CA1031 // outside input: nothing it does may end the dispatcher
                catch (Exception ex) when (ex is not OutOfMemoryException)
#pragma warning restore CA1031
                {
                    Refused(input, ex);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    private async Task DispatchOneAsync(MqttMessage m, DaemonInput input)
    {
        switch (input)
        {
            case DaemonInput.Command:
                CommandMessage command;
                try
                {
                    command = FleetMessages.ReadCommand(m.Payload);
                }
                catch (ContractException ex)
                {
                    Refused(input, ex);
                    await ReplyAsync(m, null, "(malformed)", ex.Message).ConfigureAwait(false);
                    return;
                }

                if (StaleCommand(command, DateTimeOffset.UtcNow) is { } stale)
                {
                    Log.CommandRefused(logger, CommandMessage.Name(command.Command), stale);
                    await ReplyAsync(m, command.Id, CommandMessage.Name(command.Command), stale).ConfigureAwait(false);
                }
                else if (!_commands.Writer.TryWrite((command, m)))
                {
                    await ReplyAsync(m, command.Id, CommandMessage.Name(command.Command), "too many commands waiting; try again later").ConfigureAwait(false);
                }

                break;
            case DaemonInput.Generate:
                // Not cancelled by stopping: a generation in progress finishes (StopAsync waits for it) and is answered.
                _ = Task.Run(() => MqttGeneration.HandleAsync(m, server, publisher.Client, logger, CancellationToken.None), CancellationToken.None);
                break;
            case DaemonInput.Recommendation when m.Payload.Length > 0:
                _recommendation = FleetMessages.ReadRecommendation(m.Payload);
                _recommendationSeen.TrySetResult();
                break;
        }
    }

    /// <summary>Counts a refused input; the first of its kind is logged (with the reason), the rest only counted.</summary>
    private void Refused(DaemonInput input, Exception ex)
    {
        var reason = IntakeCounter.ReasonOf(ex);
        if (server.Intake.Refuse(IntakeCounter.Name(input), reason))
        {
            Log.InputRefused(logger, IntakeCounter.Name(input), reason, ex.Message);
        }
    }

    /// <summary>
    /// Why a command is too old to apply (it waited on the broker while the board was away for longer than
    /// commands:max_age_s, or its clock is that far ahead), or null. A command without a time is applied.
    /// </summary>
    private string? StaleCommand(CommandMessage command, DateTimeOffset now)
    {
        if (command.Time is not { } issued)
        {
            return null;
        }

        var age = now - issued;
        var limit = settings.CommandMaxAge;
        if (age > limit)
        {
            return string.Create(C, $"command issued at {issued.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ} is {Duration(age)} old, over the {Duration(limit)} limit (commands:max_age_s); not applied");
        }

        return -age > limit
            ? string.Create(C, $"command time {issued.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ} is {Duration(-age)} ahead of this board's clock, over the {Duration(limit)} limit (commands:max_age_s); not applied")
            : null;
    }

    private static string Duration(TimeSpan t) => t.TotalHours >= 1 ? string.Create(C, $"{t.TotalHours:0.#} h")
        : t.TotalMinutes >= 1 ? string.Create(C, $"{t.TotalMinutes:0.#} min")
        : string.Create(C, $"{t.TotalSeconds:0.#} s");

    private async Task MetricsLoopAsync(CancellationToken cancellationToken)
    {
        var started = DateTime.UtcNow;
        using var timer = new PeriodicTimer(settings.MetricsInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                var now = DateTime.UtcNow;
                var window = server.TakeWindow((now - started).TotalSeconds);
                started = now;
                if (server.Choice is not null)
                {
                    publisher.Metrics(window);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    private void SetState(BoardState state, string? detail)
    {
        publisher.Status(state, detail, ObjectiveName);
        var name = StatusMessage.Name(state);
        notifier.Status(detail is null ? name : $"{name}: {detail}");
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        notifier.Stopping("stopping");
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        await server.DisposeAsync().ConfigureAwait(false); // waits for the generation in progress
        await publisher.StopAsync(TimeSpan.FromSeconds(3), ObjectiveName, _failure).ConfigureAwait(false);
        if (_connection is not null)
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }

        await publisher.DisposeAsync().ConfigureAwait(false);
    }

    internal static string Name(Objective objective) => objective.ToString().ToLowerInvariant();

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "serving {Draft} ({Quant}) K={K} for {Objective} [{Source}]")]
        public static partial void Serving(ILogger logger, string draft, string quant, int k, string objective, string source);

        [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "refused a message on {Input} ({Reason}): {Detail}; further ones of this kind are only counted (/v1/status intake_refused)")]
        public static partial void InputRefused(ILogger logger, string input, string reason, string detail);

        [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "profile needed: {Reason}")]
        public static partial void Stale(ILogger logger, string reason);

        [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "{Line}")]
        public static partial void Profiled(ILogger logger, string line);

        [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "the fleet has no usable recommendation for {Objective} on this board; profiling")]
        public static partial void FleetUnusable(ILogger logger, string objective);

        [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "saved profile unreadable ({Reason}); moved to {Aside} and profiling again")]
        public static partial void BadProfile(ILogger logger, string reason, string aside);

        [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "command {Command} refused: {Reason}")]
        public static partial void CommandRefused(ILogger logger, string command, string reason);

        [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "could not reply to a command: {Reason}")]
        public static partial void ReplyFailed(ILogger logger, string reason);

        [LoggerMessage(EventId = 9, Level = LogLevel.Warning, Message = "objective {Objective} impossible ({Reason}); serving for goodput")]
        public static partial void ObjectiveFallback(ILogger logger, string objective, string reason);

        [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "re-profiling ({Why})")]
        public static partial void Reprofile(ILogger logger, string why);

        [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "kept the configuration applied by command: {Draft} K={K}")]
        public static partial void Kept(ILogger logger, string draft, int k);

        [LoggerMessage(EventId = 12, Level = LogLevel.Error, Message = "the daemon cannot go on: {Reason}; exiting for a restart")]
        public static partial void Failed(ILogger logger, string reason);
    }
}
