using ConfigSpec.Interop;
using ConfigSpec.Profiling.Objectives;

namespace ConfigSpec.Tests.Profiling;

public class ObjectiveModelTests
{
    [Fact]
    public void Expected_accepted_multiplies_the_rates_by_position()
    {
        double?[] alpha = [0.9, 0.5, 0.2];
        Assert.Equal(0.9, ObjectiveModel.ExpectedAccepted(alpha, 1), 12);
        Assert.Equal(0.9 + 0.45, ObjectiveModel.ExpectedAccepted(alpha, 2), 12);
        Assert.Equal(0.9 + 0.45 + 0.09, ObjectiveModel.ExpectedAccepted(alpha, 3), 12);
        Assert.Equal(0, ObjectiveModel.ExpectedAccepted(alpha, 0));
        Assert.Equal((0.9 + 0.45) / 2, ObjectiveModel.BlockAcceptance(alpha, 2), 12);
    }

    [Fact]
    public void Per_position_rates_differ_from_an_iid_assumption()
    {
        // Same mean rate 0.5, but a sure first draft and a hopeless second: E_2 = 1, not 0.5 + 0.25.
        Assert.Equal(1.0, ObjectiveModel.ExpectedAccepted([1.0, 0.0], 2), 12);
        Assert.Equal(0.75, ObjectiveModel.ExpectedAccepted([0.5, 0.5], 2), 12);
    }

    [Fact]
    public void Unreached_positions_count_as_rejected_and_k_beyond_the_profile_is_refused()
    {
        Assert.Equal(0.5, ObjectiveModel.ExpectedAccepted([0.5, null, 1.0], 3), 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => ObjectiveModel.ExpectedAccepted([0.5], 2));
    }

    [Fact]
    public void Limits_all_accepted_none_accepted_and_free_verification()
    {
        var ones = Enumerable.Repeat<double?>(1.0, 8).ToArray();
        var zeros = Enumerable.Repeat<double?>(0.0, 8).ToArray();
        for (var k = 1; k <= 8; k++)
        {
            Assert.Equal(k, ObjectiveModel.ExpectedAccepted(ones, k), 12);
            Assert.Equal(0, ObjectiveModel.ExpectedAccepted(zeros, k), 12);
            // Nothing accepted and free verification: one token per round of K drafts.
            Assert.Equal(100.0 / k, ObjectiveModel.Goodput(0, k, 100, 0), 9);
        }

        // K = 0 is target-only decoding: one token per verification.
        Assert.Equal(1 / 0.05, ObjectiveModel.Goodput(0, 0, 100, 0.05), 9);
    }

    [Fact]
    public void Expected_accepted_grows_with_k_and_block_acceptance_stays_within_0_and_1()
    {
        var random = new Random(7);
        for (var trial = 0; trial < 200; trial++)
        {
            var alpha = Enumerable.Range(0, 12).Select(_ => (double?)random.NextDouble()).ToArray();
            var previous = 0.0;
            for (var k = 1; k <= alpha.Length; k++)
            {
                var e = ObjectiveModel.ExpectedAccepted(alpha, k);
                Assert.True(e >= previous - 1e-12, $"E_{k} = {e} < E_{k - 1} = {previous}");
                Assert.InRange(ObjectiveModel.BlockAcceptance(alpha, k), 0, 1);
                previous = e;
            }
        }
    }

    [Fact]
    public void With_constant_acceptance_the_bonus_token_puts_the_cost_and_energy_optima_at_the_smallest_k()
    {
        var random = new Random(11);
        var pricing = new Pricing { UsdPerMillion = 0.5 };
        for (var trial = 0; trial < 500; trial++)
        {
            var a = random.NextDouble() * 0.999;
            var alpha = Enumerable.Repeat<double?>(a, 16).ToArray();
            var vd = 5 + (random.NextDouble() * 200);
            var watts = 1 + (random.NextDouble() * 20);
            var cost = Enumerable.Range(1, 16).Select(k => ObjectiveModel.TokensPerUsd(ObjectiveModel.ExpectedAccepted(alpha, k), k, pricing)).ToArray();
            var energy = Enumerable.Range(1, 16).Select(k => ObjectiveModel.JoulesPerToken(ObjectiveModel.ExpectedAccepted(alpha, k), k, vd, watts)).ToArray();
            Assert.Equal(0, Array.IndexOf(cost, cost.Max()));
            Assert.Equal(0, Array.IndexOf(energy, energy.Min()));
            for (var k = 1; k < 16; k++)
            {
                Assert.True(cost[k] <= cost[k - 1] + 1e-9, $"alpha {a}: tokens/USD rose from K={k} to K={k + 1}");
                Assert.True(energy[k] >= energy[k - 1] - 1e-12, $"alpha {a}: J/token fell from K={k} to K={k + 1}");
            }
        }
    }

    [Fact]
    public void Goodput_favours_long_blocks_when_verification_is_slow_and_acceptance_high()
    {
        var alpha = Enumerable.Repeat<double?>(0.98, 8).ToArray();
        var slow = Enumerable.Range(1, 8).Select(k => ObjectiveModel.Goodput(ObjectiveModel.ExpectedAccepted(alpha, k), k, 100, 0.2)).ToArray();
        Assert.Equal(7, Array.IndexOf(slow, slow.Max()));
        // With free verification and poor acceptance, drafting more only costs time.
        var poor = Enumerable.Repeat<double?>(0.2, 8).ToArray();
        var fast = Enumerable.Range(1, 8).Select(k => ObjectiveModel.Goodput(ObjectiveModel.ExpectedAccepted(poor, k), k, 100, 0)).ToArray();
        Assert.Equal(0, Array.IndexOf(fast, fast.Max()));
        // Goodput falls as verification slows, for every K.
        for (var k = 1; k <= 8; k++)
        {
            var e = ObjectiveModel.ExpectedAccepted(alpha, k);
            Assert.True(ObjectiveModel.Goodput(e, k, 100, 0.01) > ObjectiveModel.Goodput(e, k, 100, 0.02));
        }
    }

    [Fact]
    public void Idle_power_while_waiting_adds_to_energy_per_token()
    {
        var plain = ObjectiveModel.JoulesPerToken(3, 4, 20, 5);
        Assert.Equal(5 * (4 / 20.0) / 4, plain, 12);
        var withIdle = ObjectiveModel.JoulesPerToken(3, 4, 20, 5, idleWatts: 2, verifySeconds: 0.1);
        Assert.Equal(plain + (2 * 0.1 / 4), withIdle, 12);
    }

    [Fact]
    public void Billing_k_k_plus_one_and_separate_output_price()
    {
        Assert.Equal(4 * 2e-6, new Pricing { UsdPerMillion = 2 }.RoundCost(4), 15);
        Assert.Equal(5 * 2e-6, new Pricing { UsdPerMillion = 2, BillBonusToken = true }.RoundCost(4), 15);
        Assert.Equal((4 * 2e-6) + 8e-6, new Pricing { UsdPerMillion = 2, OutputUsdPerMillion = 8 }.RoundCost(4), 15);
        Assert.Equal(4 / (3 * 2e-6), ObjectiveModel.TokensPerUsd(3, 3, new Pricing { UsdPerMillion = 2 }), 6);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    public void A_price_that_is_not_positive_is_refused(double price)
    {
        var ex = Assert.Throws<SettingException>(() => new Pricing { UsdPerMillion = price }.Validate());
        Assert.StartsWith("--price-per-mtok", ex.CommandLineMessage, StringComparison.Ordinal);
        Assert.Equal("output_price_per_mtok", Assert.Throws<SettingException>(() => new Pricing { OutputUsdPerMillion = price }.Validate()).Setting);
    }
}
