using ConfigSpec.Interop;

namespace ConfigSpec.Speculative.Sampling;

/// <summary>
/// How tokens are chosen. Temperature 0 is greedy (argmax, lowest id on ties). Otherwise both models'
/// logits are divided by the temperature, truncated to the top-k (0 = no truncation), and normalised.
/// </summary>
public sealed record SamplingSettings(float Temperature = 0f, int TopK = 0, ulong Seed = 0)
{
    public static SamplingSettings Greedy { get; } = new();

    public bool IsGreedy => Temperature <= 0f;

    public void Validate()
    {
        if (float.IsNaN(Temperature) || Temperature < 0f || Temperature > 100f)
        {
            throw new SettingException("temperature", $"{Temperature} is out of range (0 = greedy, up to 100)");
        }

        if (TopK < 0)
        {
            throw new SettingException("top_k", $"{TopK} is out of range (0 = whole vocabulary, or a positive count)");
        }
    }
}

/// <summary>A probability distribution over a few token ids (the support of a truncated draft distribution).</summary>
public sealed record SparseDistribution(int[] Tokens, float[] Probabilities)
{
    public float ProbabilityOf(int token)
    {
        for (var i = 0; i < Tokens.Length; i++)
        {
            if (Tokens[i] == token)
            {
                return Probabilities[i];
            }
        }

        return 0f;
    }
}

/// <summary>Turning logits into the distributions the samplers and verifiers use.</summary>
public static class TokenDistribution
{
    /// <summary>Index of the largest logit; the lowest index wins a tie.</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        var best = 0;
        var bestValue = float.NegativeInfinity;
        for (var i = 0; i < logits.Length; i++)
        {
            if (logits[i] > bestValue)
            {
                bestValue = logits[i];
                best = i;
            }
        }

        return best;
    }

    /// <summary>The two largest logits' difference (how close a greedy choice was to a tie).</summary>
    public static float TopTwoMargin(ReadOnlySpan<float> logits)
    {
        float first = float.NegativeInfinity, second = float.NegativeInfinity;
        foreach (var value in logits)
        {
            if (value > first)
            {
                second = first;
                first = value;
            }
            else if (value > second)
            {
                second = value;
            }
        }

        return first - second;
    }

    /// <summary>
    /// Writes softmax(logits / temperature) restricted to the top-k logits into <paramref name="probabilities"/>
    /// (zero outside the support). Ties at the k-th place are broken by lower token id.
    /// </summary>
    public static void Dense(ReadOnlySpan<float> logits, SamplingSettings settings, Span<float> probabilities)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var n = logits.Length;
        var threshold = float.NegativeInfinity;
        var admitAtThreshold = int.MaxValue;
        if (settings.TopK > 0 && settings.TopK < n)
        {
            var sorted = logits.ToArray();
            Array.Sort(sorted, (a, b) => b.CompareTo(a));
            threshold = sorted[settings.TopK - 1];
            var above = 0;
            foreach (var v in sorted)
            {
                if (v > threshold)
                {
                    above++;
                }
            }

            admitAtThreshold = settings.TopK - above;
        }

        var max = float.NegativeInfinity;
        foreach (var v in logits)
        {
            max = Math.Max(max, v);
        }

        var inverseTemperature = 1.0 / settings.Temperature;
        double sum = 0;
        for (var i = 0; i < n; i++)
        {
            var v = logits[i];
            var admitted = v > threshold || (v == threshold && admitAtThreshold-- > 0);
            var p = admitted ? Math.Exp((v - max) * inverseTemperature) : 0.0;
            probabilities[i] = (float)p;
            sum += p;
        }

        var scale = (float)(1.0 / sum);
        for (var i = 0; i < n; i++)
        {
            probabilities[i] *= scale;
        }
    }

    /// <summary>The non-zero entries of a dense distribution.</summary>
    public static SparseDistribution ToSparse(ReadOnlySpan<float> probabilities)
    {
        var count = 0;
        foreach (var p in probabilities)
        {
            if (p > 0f)
            {
                count++;
            }
        }

        var tokens = new int[count];
        var values = new float[count];
        var j = 0;
        for (var i = 0; i < probabilities.Length; i++)
        {
            if (probabilities[i] > 0f)
            {
                tokens[j] = i;
                values[j++] = probabilities[i];
            }
        }

        return new SparseDistribution(tokens, values);
    }

    /// <summary>Draws an index with probability proportional to its (non-negative) weight.</summary>
    public static int Sample(ReadOnlySpan<float> weights, Xoshiro256 random)
    {
        ArgumentNullException.ThrowIfNull(random);
        double total = 0;
        foreach (var w in weights)
        {
            total += w;
        }

        var u = random.NextDouble() * total;
        double cumulative = 0;
        var last = -1;
        for (var i = 0; i < weights.Length; i++)
        {
            if (weights[i] <= 0f)
            {
                continue;
            }

            last = i;
            cumulative += weights[i];
            if (u < cumulative)
            {
                return i;
            }
        }

        return last >= 0 ? last : throw new InvalidOperationException("cannot sample from an all-zero distribution");
    }
}
