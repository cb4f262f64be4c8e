using System.Globalization;

namespace ConfigSpec.Contracts;

/// <summary>Durations as every setting and option takes them: a number with its unit, <c>20ms</c>, <c>10s</c>, <c>2m</c>.</summary>
public static class Durations
{
    private static readonly (string Suffix, double Seconds)[] Units = [("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)];

    /// <summary>Parses <paramref name="text"/>; the error names <paramref name="setting"/> (its neutral name, <c>t_verify</c>).</summary>
    /// <param name="allowZero">Whether <c>0</c> (with or without a unit) is a value (none) rather than a mistake.</param>
    public static TimeSpan Parse(string text, string setting, bool allowZero = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var value = text.Trim();
        if (allowZero && value is "0" or "0s" or "0ms")
        {
            return TimeSpan.Zero;
        }

        foreach (var (suffix, seconds) in Units)
        {
            if (value.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(value[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && number > 0 && double.IsFinite(number)
                && number * seconds <= TimeSpan.MaxValue.TotalSeconds / 2)
            {
                return TimeSpan.FromSeconds(number * seconds);
            }
        }

        throw new SettingException(setting, $"'{text}' is not a duration such as 20ms, 10s or 2m{(allowZero ? " (or 0 for none)" : string.Empty)}");
    }

    /// <summary>Seconds from a duration with its unit (<c>20ms</c>) or a bare number of seconds (<c>0.02</c>); zero is allowed.</summary>
    public static double ParseSeconds(string text, string setting)
    {
        ArgumentNullException.ThrowIfNull(text);
        return double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds)
            ? seconds >= 0 && double.IsFinite(seconds) ? seconds : throw new SettingException(setting, $"'{text}' must be zero or a positive duration such as 20ms")
            : Parse(text, setting, allowZero: true).TotalSeconds;
    }
}
