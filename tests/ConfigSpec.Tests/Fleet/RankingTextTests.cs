using ConfigSpec.Profiling.Selection;

namespace ConfigSpec.Tests.Fleet;

/// <summary>The text ranking (and select's output, through the same formatter) prints figures a person reads: no 20000000.0 tokens/USD, no 0.000354 J/token.</summary>
public sealed class RankingTextTests
{
    [Theory]
    [InlineData(20_000_000.0, "tokens/USD", "20.0 M tokens/USD")]
    [InlineData(2_500_000_000.0, "tokens/USD", "2.5 G tokens/USD")]
    [InlineData(850_000.0, "tokens/USD", "850.0 k tokens/USD")]
    [InlineData(8_500.0, "tokens/USD", "8,500 tokens/USD")]
    [InlineData(1482.34, "tokens/s", "1,482.3 tokens/s")]
    [InlineData(0.000354, "J/token", "0.354 mJ/token")]
    [InlineData(2.5, "J/token", "2.5 J/token")]
    public void Figures_are_scaled_and_grouped(double value, string unit, string expected) =>
        Assert.Equal(expected, Figures.WithUnit(value, unit));
}
