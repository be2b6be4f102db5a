namespace AgentHost.Llama.Analysis;

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
