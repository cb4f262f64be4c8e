namespace ConfigSpec.Profiling.Measurement;

/// <summary>A mean with its two-sided confidence interval (Student t) over <see cref="Count"/> samples.</summary>
public sealed record Estimate(double Mean, double Low, double High, int Count)
{
    public double HalfWidth => (High - Low) / 2;

    /// <summary>Half-width relative to the mean (infinite for a zero mean).</summary>
    public double RelativeHalfWidth => Mean == 0 ? (HalfWidth == 0 ? 0 : double.PositiveInfinity) : HalfWidth / Math.Abs(Mean);

    /// <summary>The interval of 1/x (for a positive quantity): seconds per token into tokens per second.</summary>
    public Estimate Reciprocal() => new(Mean == 0 ? 0 : 1 / Mean, High > 0 ? 1 / High : 0, Low > 0 ? 1 / Low : double.PositiveInfinity, Count);

    /// <summary>Whether the interval lies within ±<paramref name="tolerance"/> of the mean, or within ±tolerance·<paramref name="floor"/> absolute.</summary>
    public bool IsWithin(double tolerance, double floor = 0) => Count >= 2 && (RelativeHalfWidth <= tolerance || HalfWidth <= tolerance * floor);
}

/// <summary>Samples kept for a mean, an interval and percentiles.</summary>
public sealed class SampleSet
{
    private readonly List<double> _values = [];

    public int Count => _values.Count;

    public void Add(double value)
    {
        if (double.IsFinite(value))
        {
            _values.Add(value);
        }
    }

    public double Mean => _values.Count == 0 ? 0 : _values.Average();

    /// <summary>Sample standard deviation (n − 1).</summary>
    public double StandardDeviation
    {
        get
        {
            if (_values.Count < 2)
            {
                return 0;
            }

            var mean = Mean;
            return Math.Sqrt(_values.Sum(v => (v - mean) * (v - mean)) / (_values.Count - 1));
        }
    }

    /// <summary>Mean and its <paramref name="confidence"/> interval (0.95 by default).</summary>
    public Estimate Estimate(double confidence = 0.95)
    {
        var n = _values.Count;
        if (n == 0)
        {
            return new Estimate(0, 0, 0, 0);
        }

        var mean = Mean;
        if (n == 1)
        {
            return new Estimate(mean, double.NegativeInfinity, double.PositiveInfinity, 1);
        }

        var half = Statistics.StudentT(1 - ((1 - confidence) / 2), n - 1) * StandardDeviation / Math.Sqrt(n);
        return new Estimate(mean, mean - half, mean + half, n);
    }
}

public static class Statistics
{
    /// <summary>Standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9).</summary>
    public static double NormalQuantile(double p)
    {
        if (p <= 0 || p >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(p), p, "a probability strictly between 0 and 1");
        }

        ReadOnlySpan<double> a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00];
        ReadOnlySpan<double> b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01];
        ReadOnlySpan<double> c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00];
        ReadOnlySpan<double> d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
        const double low = 0.02425;
        if (p < low)
        {
            var q = Math.Sqrt(-2 * Math.Log(p));
            return (((((((c[0] * q) + c[1]) * q) + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((((d[0] * q) + d[1]) * q) + d[2]) * q + d[3]) * q + 1);
        }

        if (p > 1 - low)
        {
            return -NormalQuantile(1 - p);
        }

        var r = p - 0.5;
        var s = r * r;
        return (((((((a[0] * s) + a[1]) * s) + a[2]) * s + a[3]) * s + a[4]) * s + a[5]) * r / (((((((b[0] * s) + b[1]) * s) + b[2]) * s + b[3]) * s + b[4]) * s + 1);
    }

    /// <summary>Student t quantile with <paramref name="degrees"/> degrees of freedom (Hill's expansion; exact for 1 and 2).</summary>
    public static double StudentT(double p, int degrees)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(degrees, 1);
        if (degrees == 1)
        {
            return Math.Tan(Math.PI * (p - 0.5));
        }

        if (degrees == 2)
        {
            var t = (2 * p) - 1;
            return t * Math.Sqrt(2 / (1 - (t * t)));
        }

        var z = NormalQuantile(p);
        double n = degrees;
        var z2 = z * z;
        var g1 = (z2 + 1) * z / 4;
        var g2 = ((((5 * z2) + 16) * z2) + 3) * z / 96;
        var g3 = ((((((3 * z2) + 19) * z2) + 17) * z2) - 15) * z / 384;
        var g4 = ((((((((79 * z2) + 776) * z2) + 1482) * z2) - 1920) * z2) - 945) * z / 92160;
        return z + (g1 / n) + (g2 / (n * n)) + (g3 / (n * n * n)) + (g4 / (n * n * n * n));
    }

    public static double Percentile(IReadOnlyCollection<double> values, double p)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0)
        {
            return 0;
        }

        var sorted = values.Order().ToArray();
        var rank = Math.Clamp(p, 0, 1) * (sorted.Length - 1);
        var lower = (int)Math.Floor(rank);
        var upper = Math.Min(lower + 1, sorted.Length - 1);
        return sorted[lower] + ((rank - lower) * (sorted[upper] - sorted[lower]));
    }
}
