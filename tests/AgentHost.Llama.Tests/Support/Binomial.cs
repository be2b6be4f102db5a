namespace AgentHost.Llama.Tests.Support;

/// <summary>The tests' own binomial coefficient, for recounting pass@k independently of the product under test.</summary>
internal static class Binomial
{
    public static double Choose(int n, int k)
    {
        if (k > n)
            return 0;
        var value = 1.0;
        for (var i = 0; i < k; i++)
            value = value * (n - i) / (i + 1);
        return value;
    }
}
