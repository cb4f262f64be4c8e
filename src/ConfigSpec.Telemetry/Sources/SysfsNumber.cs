using System.Globalization;

namespace ConfigSpec.Telemetry.Sources;

/// <summary>Reads one number from a sysfs-style file; errors name the source and the file.</summary>
internal static class SysfsNumber
{
    public static double Read(string source, string file, string? unreadableHint = null)
    {
        string text;
        try
        {
            text = File.ReadAllText(file).Trim();
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new PowerSourceException($"{source}: '{file}' is not readable{(unreadableHint is null ? string.Empty : $" ({unreadableHint})")}", ex);
        }
        catch (IOException ex)
        {
            throw new PowerSourceException($"{source}: cannot read '{file}' ({ex.Message})", ex);
        }

        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new PowerSourceException($"{source}: '{file}' holds '{text}', not a number");
    }
}
