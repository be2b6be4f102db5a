namespace AgentHost.Llama.Decoding.Speculative;

/// <summary>
/// How many draft tokens pay for their verification. Given the probability that each draft token is
/// accepted (reached and matched, best first: a token's parent comes before it), a draft of the first
/// k tokens emits E(k) = 1 + (their sum) tokens per step and costs C(k+1) plain steps; the planner
/// takes the k with the most tokens per unit of cost, and k = 0 (a plain step, E/C = 1) when no draft
/// beats it.
/// </summary>
public static class DraftPlanner
{
    /// <summary>
    /// The best draft length for <paramref name="acceptance"/> under <paramref name="costs"/>; the
    /// shortest on ties. <paramref name="expected"/> is E(k), <paramref name="cost"/> C(k+1).
    /// </summary>
    public static int BestLength(ReadOnlySpan<double> acceptance, VerificationCosts costs, out double expected, out double cost)
    {
        ArgumentNullException.ThrowIfNull(costs);
        var best = 0;
        expected = 1;
        cost = 1;
        var sum = 1.0;
        for (var k = 1; k <= acceptance.Length; k++)
        {
            sum += acceptance[k - 1];
            var c = costs.Cost(k + 1);
            if (sum / c > expected / cost + 1e-9)
            {
                best = k;
                expected = sum;
                cost = c;
            }
        }
        return best;
    }
}
