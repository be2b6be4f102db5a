using AgentHost.Llama.Analysis;

namespace AgentHost.Llama.Tests.Analysis;

/// <summary>The critical-token rule, pass@k and the built-in verifiers, on hand-computed values.</summary>
public sealed class AnalysisRuleTests
{
    [Theory]
    // Earliest zero with no recovery after it.
    [InlineData(new[] { 9, 7, 0, 0, 1, 0 }, 3, 2)]
    // A zero at the very start that never recovers.
    [InlineData(new[] { 0, 2, 3, 0 }, 3, 0)]
    // Recovery (> threshold) resets: the later zero is the critical one.
    [InlineData(new[] { 5, 0, 4, 2, 0, 1 }, 3, 4)]
    // Exactly the threshold is not a recovery.
    [InlineData(new[] { 5, 0, 3, 0 }, 3, 1)]
    // Fallback: every zero recovered; the candidate of the last reset.
    [InlineData(new[] { 0, 5, 0, 6, 8 }, 3, 2)]
    [InlineData(new[] { 2, 0, 9, 9 }, 3, 1)]
    // No zero at all.
    [InlineData(new[] { 1, 2, 3 }, 0, -1)]
    [InlineData(new int[0], 3, -1)]
    // Threshold 0: any correct rollout is a recovery.
    [InlineData(new[] { 0, 1, 0, 0 }, 0, 2)]
    public void Critical_token_rule_matches_the_reference_algorithm(int[] correct, int threshold, int expected)
    {
        Assert.Equal(expected, CriticalTokenRule.Find(correct, threshold));
    }

    [Theory]
    [InlineData(64, 3)]
    [InlineData(16, 0)]   // 0.75 floors to 0 (the paper's fraction, not rounded)
    [InlineData(8, 0)]
    [InlineData(11, 0)]   // 0.516 floors to 0
    [InlineData(22, 1)]   // 1.03
    [InlineData(42, 1)]   // 1.97 floors to 1
    [InlineData(128, 6)]
    public void Default_recover_threshold_scales_3_of_64(int rollouts, int expected)
    {
        Assert.Equal(expected, CriticalTokenRule.DefaultRecoverThreshold(rollouts));
    }

    [Theory]
    // 1 - C(n-c, k) / C(n, k), worked by hand.
    [InlineData(5, 2, 1, 0.4)]              // 1 - 3/5
    [InlineData(5, 2, 2, 0.7)]              // 1 - C(3,2)/C(5,2) = 1 - 3/10
    [InlineData(5, 2, 3, 0.9)]              // 1 - 1/10
    [InlineData(5, 2, 4, 1.0)]              // n - c < k
    [InlineData(10, 3, 2, 0.5333333333)]    // 1 - 21/45
    [InlineData(10, 3, 5, 0.9166666667)]    // 1 - 21/252
    [InlineData(4, 0, 4, 0.0)]
    [InlineData(4, 4, 1, 1.0)]
    [InlineData(64, 1, 1, 0.015625)]        // 1/64
    public void Pass_at_k_is_the_unbiased_estimator(int n, int c, int k, double expected)
    {
        Assert.Equal(expected, PassAtK.Estimate(n, c, k), 9);
    }

    [Fact]
    public void Pass_at_k_lists_every_k_and_refuses_nonsense()
    {
        Assert.Equal([0.4, 0.7, 0.9, 1.0, 1.0], PassAtK.All(5, 2).Select(v => Math.Round(v, 12)));
        Assert.Throws<ArgumentOutOfRangeException>(() => PassAtK.Estimate(5, 6, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => PassAtK.Estimate(5, 1, 6));
    }

    [Theory]
    [InlineData("contains:dog", "The Dog ran.", true)]
    [InlineData("contains:dog", "The cat ran.", false)]
    [InlineData("not-contains:dog", "The cat ran.", true)]
    [InlineData("not-contains:dog", "A DOG!", false)]
    [InlineData(@"regex:\bsad\b", "She was sad.", true)]
    [InlineData(@"regex:\bsad\b", "She was sadder.", false)]
    [InlineData("answer:42", "6 times 7 is 42.", true)]
    [InlineData("answer:42", "42 is not 41", false)]
    [InlineData("answer:1234.5", "so the total is 1,234.50", true)]
    [InlineData("answer:-3", "x = -3", true)]
    [InlineData("answer:7", "no number here", false)]
    public async Task Built_in_verifiers_judge_responses(string spec, string response, bool expected)
    {
        var verifier = TrajectoryVerifiers.Parse(spec);

        Assert.Equal(expected, await verifier.VerifyAsync("prompt", response, CancellationToken.None));
    }

    [Theory]
    [InlineData("smells:dog", "Unknown verifier 'smells:dog'")]
    [InlineData("contains:", "The text of a 'contains' verifier is empty.")]
    [InlineData("regex:(", "is not a valid regular expression")]
    [InlineData("answer:many", "The expected answer 'many' is not a number.")]
    public void Bad_verifier_specs_are_one_clear_error(string spec, string expected)
    {
        var error = Assert.Throws<AgentHostException>(() => TrajectoryVerifiers.Parse(spec));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task All_requires_every_verifier()
    {
        var both = TrajectoryVerifiers.All([TrajectoryVerifiers.Parse("contains:dog"), TrajectoryVerifiers.Parse("not-contains:cat")]);

        Assert.True(await both.VerifyAsync("", "a dog", CancellationToken.None));
        Assert.False(await both.VerifyAsync("", "a dog and a cat", CancellationToken.None));
        Assert.False(await both.VerifyAsync("", "a bird", CancellationToken.None));
        Assert.Equal("contains \"dog\" and does not contain \"cat\"", both.Description);
    }
}
