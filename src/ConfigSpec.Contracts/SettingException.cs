namespace ConfigSpec;

/// <summary>
/// A setting a library was given is out of range or unknown. <see cref="Setting"/> is the setting's neutral name
/// (<c>k_max</c>, <c>objective</c>); the message reads "k_max 40 is out of range: use 1..32". A front end names it
/// its own way: the command line as <c>--k-max</c> (<see cref="CommandLineMessage"/>), the daemon as its settings key.
/// </summary>
public sealed partial class SettingException : ConfigSpecException
{
    public SettingException() { }

    public SettingException(string message) : base(message) => (Setting, Problem) = (string.Empty, message);

    public SettingException(string message, Exception innerException) : base(message, innerException) => (Setting, Problem) = (string.Empty, message);

    /// <param name="setting">The setting's neutral name, in snake_case.</param>
    /// <param name="problem">What is wrong, read after the name: "40 is out of range: use 1..32".</param>
    public SettingException(string setting, string problem, Exception? innerException = null) : base($"{setting} {problem}", innerException!)
    {
        Setting = setting;
        Problem = problem;
    }

    private readonly string? _template;

    private SettingException(string template, bool _) : base(Names().Replace(template, "$1")) => _template = template;

    /// <summary>
    /// A message that names several settings, each written <c>{name}</c> in <paramref name="template"/>: the message reads
    /// "raise tokens_per_prompt", the command line's "raise --tokens-per-prompt".
    /// </summary>
    public static SettingException Naming(string template) => new(template, true);

    public string Setting { get; } = string.Empty;

    public string Problem { get; } = string.Empty;

    /// <summary>The message as a command line says it: the setting named as its option (<c>k_max</c> → <c>--k-max</c>).</summary>
    public override string CommandLineMessage => Setting.Length > 0 ? $"{Flag(Setting)} {Problem}"
        : _template is null ? Message : Names().Replace(_template, m => Flag(m.Groups[1].Value));

    private static string Flag(string setting) => "--" + setting.Replace('_', '-');

    /// <summary>The message with the setting named as a front end's key (<c>selection:objective</c>).</summary>
    public string WithName(string name) => Setting.Length == 0 ? Message : $"{name} {Problem}";

    [System.Text.RegularExpressions.GeneratedRegex(@"\{([a-z][a-z0-9_]*)\}")]
    private static partial System.Text.RegularExpressions.Regex Names();
}
