namespace AgentHost.Llama.Analysis;

/// <summary>
/// The critical-token rule of "Critical Tokens Matter" (cDPO, arXiv 2411.19943), as its official code applies
/// it to the counts c_i of correct rollouts per prefix: the earliest prefix with no correct rollout after which
/// no later prefix recovers (more than <c>recoverThreshold</c> correct); when every zero was followed by a
/// recovery, the candidate of the last recovery.
/// </summary>
public static class CriticalTokenRule
{
    /// <summary>The paper's recovery threshold (3) for its 64 rollouts per prefix.</summary>
    public const int PaperThreshold = 3;

    /// <summary>The paper's rollouts per prefix.</summary>
    public const int PaperRollouts = 64;

    /// <summary>The paper's threshold scaled to <paramref name="rollouts"/> per prefix: floor(3 n / 64), the paper's fraction.</summary>
    public static int DefaultRecoverThreshold(int rollouts) => PaperThreshold * rollouts / PaperRollouts;

    /// <summary>
    /// Index into <paramref name="correct"/> of the critical prefix, or -1 when no prefix has zero correct rollouts.
    /// </summary>
    /// <param name="correct">c_i for each analysed prefix, in prefix order.</param>
    /// <param name="recoverThreshold">A later prefix with more correct rollouts than this resets the candidate.</param>
    public static int Find(ReadOnlySpan<int> correct, int recoverThreshold)
    {
        var candidate = -1;
        var last = -1;
        var found = false;
        for (var i = 0; i < correct.Length; i++)
        {
            if (correct[i] == 0 && !found)
            {
                candidate = i;
                found = true;
            }
            if (found && correct[i] > recoverThreshold)
            {
                last = candidate;
                found = false;
            }
        }
        return found ? candidate : last;
    }
}

/// <summary>The unbiased pass@k estimator (Chen et al. 2021): 1 - C(n - c, k) / C(n, k).</summary>
public static class PassAtK
{
    /// <summary>
    /// pass@k for <paramref name="correct"/> correct samples among <paramref name="samples"/>, as the numerically
    /// stable product 1 - prod_{j = n-c+1..n} (1 - k / j).
    /// </summary>
    public static double Estimate(int samples, int correct, int k)
    {
        if (samples < 1 || correct < 0 || correct > samples || k < 1 || k > samples)
            throw new ArgumentOutOfRangeException(nameof(k), $"pass@k needs 1 <= k <= n and 0 <= c <= n (n = {samples}, c = {correct}, k = {k}).");
        if (samples - correct < k)
            return 1.0;
        var allWrong = 1.0;
        for (var j = samples - correct + 1; j <= samples; j++)
            allWrong *= 1.0 - (double)k / j;
        return 1.0 - allWrong;
    }

    /// <summary>pass@k for every k from 1 to <paramref name="samples"/>.</summary>
    public static double[] All(int samples, int correct)
    {
        var values = new double[samples];
        for (var k = 1; k <= samples; k++)
            values[k - 1] = Estimate(samples, correct, k);
        return values;
    }
}
