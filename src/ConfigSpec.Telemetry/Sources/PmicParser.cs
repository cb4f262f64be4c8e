using System.Globalization;
using System.Text.RegularExpressions;

namespace ConfigSpec.Telemetry.Sources;

/// <summary>
/// Raspberry Pi 5 PMIC rails from <c>vcgencmd pmic_read_adc</c>: <c>NAME_A current(n)=…A</c> and <c>NAME_V volt(n)=…V</c>
/// lines are paired by the name before the suffix, and power is Σ V × I. Voltage-only rails (EXT5V_V, BATT_V) have
/// no current and are left out. This covers the SoC-side rails, not the whole board.
/// </summary>
public static partial class PmicParser
{
    [GeneratedRegex(@"^\s*([A-Za-z0-9_]+)_(A|V)\s+(?:current|volt)\(\d+\)=([0-9.]+)(A|V)\s*$")]
    private static partial Regex LinePattern();

    public static IReadOnlyList<RailPower> Parse(string output, string source = "pmic")
    {
        ArgumentNullException.ThrowIfNull(output);
        var amps = new Dictionary<string, double>(StringComparer.Ordinal);
        var volts = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var raw in output.Split('\n'))
        {
            if (string.IsNullOrWhiteSpace(raw))
            {
                continue;
            }

            var match = LinePattern().Match(raw);
            if (!match.Success)
            {
                throw new PowerSourceException($"{source}: unexpected line '{raw.Trim()}' in vcgencmd pmic_read_adc output");
            }

            var value = double.Parse(match.Groups[3].Value, CultureInfo.InvariantCulture);
            (match.Groups[2].Value == "A" ? amps : volts)[match.Groups[1].Value] = value;
        }

        var rails = amps.Where(a => volts.ContainsKey(a.Key))
            .Select(a => new RailPower(a.Key, a.Value * volts[a.Key]))
            .OrderBy(r => r.Rail, StringComparer.Ordinal)
            .ToList();
        if (rails.Count == 0)
        {
            throw new PowerSourceException($"{source}: no rail has both a current and a voltage in the PMIC output");
        }

        return rails;
    }
}
