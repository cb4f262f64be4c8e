using System.Globalization;
using System.Text.RegularExpressions;

namespace ConfigSpec.Telemetry.Sources;

/// <summary>
/// Power rails from tegrastats lines of any Jetson generation: <c>NAME cur/avg</c> or <c>NAME cur/avg/max</c>, with
/// or without the <c>mW</c> unit, optionally led by a timestamp. Rails reported as <c>NC</c>, memory figures
/// (<c>2000/7000MB</c>) and temperatures (<c>cpu@47.9C</c>) are not power and are skipped.
/// </summary>
public static partial class TegrastatsParser
{
    /// <summary>The board's total input rail names, newest first; when none is present the module rails are summed.</summary>
    public static readonly string[] InputRails = ["VDD_IN", "POM_5V_IN"];

    [GeneratedRegex(@"(?<![A-Za-z0-9_@])([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?:/(\d+)(?:mW)?)?(?![A-Za-z0-9%])")]
    private static partial Regex RailPattern();

    /// <summary>Rails in watts (current value), in line order; empty when the line has no power rails.</summary>
    public static IReadOnlyList<RailPower> Parse(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var rails = new List<RailPower>();
        foreach (Match match in RailPattern().Matches(line))
        {
            var name = match.Groups[1].Value;
            if (name is "NC" or "RAM" or "SWAP" or "IRAM" or "LFB")
            {
                continue;
            }

            // Digits beyond any real rail (a corrupt log) are not a reading.
            if (long.TryParse(match.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var milliwatts))
            {
                rails.Add(new RailPower(name, milliwatts / 1000.0));
            }
        }

        return rails;
    }

    /// <summary>The total for the chosen rails (summed), or the input rail, or the sum of all rails.</summary>
    public static double Total(IReadOnlyList<RailPower> rails, IReadOnlyList<string>? chosen = null)
    {
        ArgumentNullException.ThrowIfNull(rails);
        if (chosen is { Count: > 0 })
        {
            return chosen.Sum(name => rails.FirstOrDefault(r => r.Rail == name) is { Rail: not null } rail
                ? rail.Watts
                : throw new PowerSourceException($"tegrastats: rail '{name}' is not in the output (rails present: {string.Join(", ", rails.Select(r => r.Rail))})"));
        }

        foreach (var input in InputRails)
        {
            if (rails.FirstOrDefault(r => r.Rail == input) is { Rail: not null } rail)
            {
                return rail.Watts;
            }
        }

        return rails.Sum(r => r.Watts);
    }
}
