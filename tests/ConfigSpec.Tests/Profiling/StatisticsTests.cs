using ConfigSpec.Profiling.Measurement;

namespace ConfigSpec.Tests.Profiling;

public class StatisticsTests
{
    [Theory]
    [InlineData(1, 12.706)]
    [InlineData(2, 4.303)]
    [InlineData(5, 2.571)]
    [InlineData(10, 2.228)]
    [InlineData(30, 2.042)]
    [InlineData(120, 1.980)]
    public void Student_t_matches_the_table_at_97_5_percent(int degrees, double expected) =>
        Assert.Equal(expected, Statistics.StudentT(0.975, degrees), 2);

    [Fact]
    public void Normal_quantiles()
    {
        Assert.Equal(1.959964, Statistics.NormalQuantile(0.975), 5);
        Assert.Equal(-2.326348, Statistics.NormalQuantile(0.01), 5);
        Assert.Equal(0, Statistics.NormalQuantile(0.5), 9);
    }

    [Fact]
    public void The_interval_covers_the_true_mean_about_95_percent_of_the_time()
    {
        var random = new Random(3);
        var covered = 0;
        const int trials = 2000;
        for (var t = 0; t < trials; t++)
        {
            var set = new SampleSet();
            for (var i = 0; i < 12; i++)
            {
                set.Add(10 + (2 * Statistics.NormalQuantile((random.NextDouble() * 0.998) + 0.001)));
            }

            var e = set.Estimate();
            if (e.Low <= 10 && 10 <= e.High)
            {
                covered++;
            }
        }

        Assert.InRange(covered / (double)trials, 0.93, 0.97);
    }

    [Fact]
    public void Tolerance_check_uses_the_relative_half_width_or_an_absolute_floor()
    {
        var tight = new Estimate(100, 98, 102, 50);
        Assert.True(tight.IsWithin(0.03));
        Assert.False(tight.IsWithin(0.01));
        var nearZero = new Estimate(0.01, 0.0, 0.02, 400);
        Assert.False(nearZero.IsWithin(0.03));
        Assert.True(nearZero.IsWithin(0.03, floor: 1));
        Assert.False(new Estimate(5, double.NegativeInfinity, double.PositiveInfinity, 1).IsWithin(0.5));
    }

    [Fact]
    public void Reciprocal_turns_seconds_per_token_into_tokens_per_second()
    {
        var r = new Estimate(0.01, 0.008, 0.0125, 40).Reciprocal();
        Assert.Equal(100, r.Mean, 9);
        Assert.Equal(80, r.Low, 9);
        Assert.Equal(125, r.High, 9);
    }

    [Fact]
    public void Percentiles()
    {
        double[] values = [5, 1, 4, 2, 3];
        Assert.Equal(3, Statistics.Percentile(values, 0.5));
        Assert.Equal(1, Statistics.Percentile(values, 0));
        Assert.Equal(4.8, Statistics.Percentile(values, 0.95), 9);
    }
}
