namespace ConfigSpec.Speculative.Sampling;

/// <summary>
/// xoshiro256** pseudo-random generator seeded through SplitMix64. Chosen over <see cref="Random"/> so a seed
/// gives the same stream on every runtime and on both sides of a verification link.
/// </summary>
public sealed class Xoshiro256
{
    private ulong _s0, _s1, _s2, _s3;

    public Xoshiro256(ulong seed)
    {
        _s0 = SplitMix(ref seed);
        _s1 = SplitMix(ref seed);
        _s2 = SplitMix(ref seed);
        _s3 = SplitMix(ref seed);
    }

    /// <summary>A generator for an independent stream derived from one user seed.</summary>
    public static Xoshiro256 ForStream(ulong seed, ulong stream) => new(seed ^ (stream * 0x9E3779B97F4A7C15UL));

    public ulong NextUInt64()
    {
        var result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        var t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>The generator's state, to rewind it later with <see cref="Restore"/>.</summary>
    public (ulong, ulong, ulong, ulong) State => (_s0, _s1, _s2, _s3);

    public void Restore((ulong, ulong, ulong, ulong) state) => (_s0, _s1, _s2, _s3) = state;

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    private static ulong SplitMix(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
