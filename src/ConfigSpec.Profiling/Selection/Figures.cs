using System.Globalization;

namespace ConfigSpec.Profiling.Selection;

/// <summary>Figures as a person reads them in text output: <c>20.0 M tokens/USD</c>, <c>1,482.3 tokens/s</c>, <c>0.354 mJ/token</c>.</summary>
public static class Figures
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    /// <summary>A large count scaled to k, M or G with one decimal (<c>20.0 M</c>); below 10,000 grouped (<c>8,500</c>).</summary>
    public static string Count(double value) => Math.Abs(value) switch
    {
        >= 1e9 => (value / 1e9).ToString("0.0", C) + " G",
        >= 1e6 => (value / 1e6).ToString("0.0", C) + " M",
        >= 1e4 => (value / 1e3).ToString("0.0", C) + " k",
        _ => value.ToString("#,##0", C),
    };

    /// <summary>A figure with its unit; joules per token below one joule in millijoules.</summary>
    public static string WithUnit(double value, string unit) => unit switch
    {
        "J/token" when Math.Abs(value) < 1 => (value * 1000).ToString("#,##0.###", C) + " mJ/token",
        "tokens/USD" => Count(value) + " tokens/USD",
        _ when Math.Abs(value) >= 1e6 => Count(value) + " " + unit,
        _ => value.ToString("#,##0.0", C) + " " + unit,
    };
}
