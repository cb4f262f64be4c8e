using ConfigSpec.Board;
using ConfigSpec.Contracts;
using ConfigSpec.Fleet.Messages;
using ConfigSpec.Interop;
using ConfigSpec.Interop.Llama;
using ConfigSpec.Speculative.Engine;
using ConfigSpec.Telemetry.Energy;

namespace ConfigSpec.Edge.Daemon;

/// <summary>The configuration a board serves with (the one served-configuration record) and the draft file behind it.</summary>
public sealed record ServingChoice(string DraftPath, ServedConfig Config)
{
    public string Draft => Config.Draft;

    public string Quant => Config.Quant;

    public string Sha256 => Config.Sha256;

    public int K => Config.K;

    /// <summary>Blocks in flight at once (D); 1 is sequential rounds.</summary>
    public int Pipeline => Config.Pipeline;

    public string Objective => Config.Objective;

    public string Source => Config.Source;
}

/// <summary>Serving is paused (profiling, starting) or impossible; the message says why and whether to retry.</summary>
public sealed class ServiceUnavailableException : ConfigSpecException
{
    public ServiceUnavailableException() { }

    public ServiceUnavailableException(string message) : base(message) { }

    public ServiceUnavailableException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>One generation: the result, its configuration, and the drafting energy charged to it (null without power).</summary>
/// <param name="Policy">The draft-length policy that chose K per round (null: the configuration's K every round).</param>
public sealed record GenerationReply(GenerationResult Result, ServingChoice Choice, double? DraftJoules, bool PowerEstimated, string? Policy = null);

/// <summary>
/// Generation with the chosen configuration: one request at a time on the board's single draft context (others
/// queue), paused while the board profiles; keeps the serving figures of the current metrics interval.
/// </summary>
public sealed class EdgeServer : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly EdgeSettings _settings;
    private readonly Lock _window = new();
    private LlamaModel? _draft;
    private VerifierConnection? _connection;
    private ServingChoice? _choice;
    private Speculative.Policies.IDraftLengthPolicy? _policy;
    private volatile string? _unavailable = "starting";
    private int _requests;
    private int _tokens;
    private long _drafted;
    private long _accepted;
    private long _rounds;
    private double _wallSeconds;
    private double _draftJoules;
    private double _draftSeconds;
    private int _energyRequests;

    public EdgeServer(EdgeSettings settings, PowerSession? power)
    {
        _settings = settings ?? throw new ArgumentNullException(nameof(settings));
        Power = power;
    }

    public PowerSession? Power { get; }

    /// <summary>What the daemon refused on each input (MQTT topics, HTTP), by reason.</summary>
    public Fleet.Messages.IntakeCounter Intake { get; } = new();

    public ServingChoice? Choice => _choice;

    /// <summary>Why generation is refused now (null while serving).</summary>
    public string? Unavailable => _unavailable;

    /// <summary>Loads the chosen draft (if it changed) and starts serving with it.</summary>
    public async Task ActivateAsync(ServingChoice choice, VerifierConnection connection, Func<string, LlamaModel> load, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(choice);
        ArgumentNullException.ThrowIfNull(load);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_draft is null || _draft.Path != Path.GetFullPath(choice.DraftPath))
            {
                _draft?.Dispose();
                _draft = null;
                _draft = load(choice.DraftPath);
            }

            _connection = connection;
            _choice = choice;
            // A fresh policy for each configuration: what it learned belongs to the draft it learned it with.
            _policy = _settings.KPolicy is { } spec
                ? Profiling.Objectives.PipelinedPolicies.Adapt(Speculative.Policies.DraftPolicies.Parse(spec, _settings.KMax), choice.Pipeline)
                : null;
            _unavailable = null;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Runs <paramref name="work"/> with serving paused (requests get <paramref name="reason"/>), waiting for the current request to finish.</summary>
    public async Task<T> PauseAsync<T>(string reason, Func<Task<T>> work, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(work);
        var before = _unavailable;
        _unavailable = reason;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await work().ConfigureAwait(false);
        }
        finally
        {
            _unavailable = _choice is null ? before ?? reason : null;
            _gate.Release();
        }
    }

    /// <summary>Generates for <paramref name="prompt"/>; <paramref name="onText"/> receives the text of each round as it is accepted.</summary>
    public async Task<GenerationReply> GenerateAsync(string prompt, int maxTokens, Action<string>? onText, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (maxTokens < 1 || maxTokens > _settings.MaxTokens)
        {
            throw new ConfigSpecException($"max_tokens {maxTokens} must be 1..{_settings.MaxTokens} (the daemon's max_tokens setting)");
        }

        if (_unavailable is { } early)
        {
            throw new ServiceUnavailableException(early);
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_unavailable is { } reason || _draft is null || _connection is null || _choice is null)
            {
                throw new ServiceUnavailableException(_unavailable ?? "no configuration chosen yet");
            }

            var draft = _draft;
            var choice = _choice;
            var tokens = draft.Tokenize(prompt);
            var options = new GenerationOptions
            {
                DraftLength = _policy is null ? choice.K : _settings.KMax,
                Pipeline = choice.Pipeline,
                Policy = _policy,
                MaxTokens = maxTokens,
                ContextLength = _settings.ContextLength,
                Threads = _settings.Threads,
                DeviceId = _settings.DeviceId,
                OnTokens = onText is null ? null : t => onText(draft.Detokenize([.. t])),
            };
            var result = await new SpeculativeGenerator(_connection.Verifier, draft).GenerateAsync(tokens, options, draft, cancellationToken).ConfigureAwait(false);
            double? joules = null;
            if (Power is { } power)
            {
                // Every token drafted costs energy, discarded ones (drafted past a cut in a pipeline) included.
                var windows = result.Rounds.Where(r => r.Drafted > 0).Select(r => (r.DraftStart, r.DraftStart + r.DraftSeconds))
                    .Concat(result.DiscardedWindows.Select(w => (w.Start, w.Start + w.Seconds))).OrderBy(w => w.Item1).ToList();
                var energy = await DraftingEnergy.MeasureAsync(power.Sampler, windows, power.IdleWatts, cancellationToken).ConfigureAwait(false);
                joules = energy.Joules;
                lock (_window)
                {
                    _draftJoules += energy.Joules;
                    _draftSeconds += energy.Seconds;
                    _energyRequests++;
                }
            }

            lock (_window)
            {
                _requests++;
                _tokens += result.Tokens.Count;
                _drafted += result.DraftedTokens - result.DiscardedTokens; // acceptance is of the drafts verified
                _accepted += result.AcceptedTokens;
                _rounds += result.Rounds.Count;
                _wallSeconds += result.WallSeconds;
            }

            var reply = new GenerationReply(result, choice, joules, Power?.Source.IsEstimate ?? false, _policy?.Name);
            EdgeMetrics.Generation(reply);
            return reply;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The figures since the last call, and a fresh interval.</summary>
    public MetricsMessage TakeWindow(double windowSeconds)
    {
        lock (_window)
        {
            var m = new MetricsMessage(
                windowSeconds, _requests, _tokens,
                _wallSeconds > 0 ? _tokens / _wallSeconds : null,
                _drafted > 0 ? (double)_accepted / _drafted : null,
                _rounds > 0 ? (double)_accepted / _rounds : null,
                _policy is null || _rounds == 0 ? _choice?.K ?? 0 : (int)Math.Round((double)_drafted / _rounds),
                _draftSeconds > 0 ? _draftJoules / _draftSeconds : null,
                _energyRequests > 0 && _tokens > 0 ? _draftJoules / _tokens : null,
                Power?.Source.IsEstimate ?? false);
            _requests = _tokens = _energyRequests = 0;
            _drafted = _accepted = _rounds = 0;
            _wallSeconds = _draftJoules = _draftSeconds = 0;
            return m;
        }
    }

    /// <summary>Refuses new requests, waits for the one in progress, and unloads the draft. Requests still queued are refused.</summary>
    public async ValueTask DisposeAsync()
    {
        _unavailable = "stopping";
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            _draft?.Dispose();
            _draft = null;
            _choice = null;
        }
        finally
        {
            // The semaphore is not disposed: requests queued behind this one still release it after being refused.
            _gate.Release();
        }
    }
}
