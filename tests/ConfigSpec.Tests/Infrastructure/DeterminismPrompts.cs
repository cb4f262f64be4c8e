namespace ConfigSpec.Tests.Infrastructure;

/// <summary>
/// Prompts for tests that demand token-for-token equality between the target's own greedy decoding and speculative
/// decoding through a batching verifier. llama.cpp's CPU kernels sum in a different order for a batch than for one
/// token (measured on an AVX2 machine: logits differ by up to 3.2e-3 at magnitudes near 19), so a greedy choice
/// between two tokens closer than that can go either way with the batch's shape. These prompts have no such near-tie:
/// in the first 300 greedy tokens of the shipped target, the best token leads the second by at least
/// <see cref="MinimumMargin"/> everywhere (checked by <c>DeterminismPromptTests</c>), so equality does not depend on
/// which CPU kernel the machine loads. ("The sun was hot", once used here, has a 1.3e-4 tie at token 58.)
/// </summary>
public static class DeterminismPrompts
{
    public const double MinimumMargin = 0.01;

    public const int Tokens = 300;

    public static readonly string[] All =
    [
        "Ben wanted a new bike", "A girl named Sue", "Jack had a blue hat", "The bunny hopped",
        "A small bird sat", "Sara loved flowers", "It was a rainy day", "Lucy went to the store",
    ];
}
