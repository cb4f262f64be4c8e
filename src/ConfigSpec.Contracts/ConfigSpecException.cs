namespace ConfigSpec;

/// <summary>
/// An error caused by input or environment (a file, a setting, a message, a library) rather than a bug.
/// The message is one line and names the thing at fault; front ends print it (a command line maps it to its own
/// flags) and services refuse the input with it.
/// </summary>
public class ConfigSpecException : Exception
{
    public ConfigSpecException() { }

    public ConfigSpecException(string message) : base(message) { }

    public ConfigSpecException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>The message as a command line prints it (a <see cref="SettingException"/> names its option).</summary>
    public virtual string CommandLineMessage => Message;
}
