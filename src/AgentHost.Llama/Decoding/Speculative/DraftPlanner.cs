namespace AgentHost.Llama.Decoding.Speculative;

/// <summary>
/// How many draft tokens pay for their verification. Given the probability that each draft token is
/// accepted (reached and matched, best first: a token's parent comes before it), a draft of the first
/// k tokens emits E(k) = 1 + (their sum) tokens per step. In a batch that already holds L tokens of other
/// requests, the step's decode then verifies L + k + 1 tokens at cost C(L + k + 1) and yields L + E(k) tokens;
/// the planner takes the k with the most tokens per unit of cost, and k = 0 (a plain step) when no draft beats
/// it. Alone (L = 0) this is E(k) / C(k+1) against 1; in a large batch on a compute-bound machine C grows with
/// every token and drafting stops paying, as serving engines turn speculation down under load.
/// </summary>
public static class DraftPlanner
{
    /// <summary>
    /// The best draft length for <paramref name="acceptance"/> under <paramref name="costs"/> beside
    /// <paramref name="load"/> tokens of other requests; the shortest on ties. <paramref name="expected"/> is E(k),
    /// <paramref name="cost"/> the step's cost over a plain step's at that load, C(L+k+1) / C(L+1).
    /// </summary>
    public static int BestLength(ReadOnlySpan<double> acceptance, VerificationCosts costs, out double expected, out double cost, int load = 0)
    {
        ArgumentNullException.ThrowIfNull(costs);
        ArgumentOutOfRangeException.ThrowIfNegative(load);
        var best = 0;
        var plain = costs.Cost(load + 1);
        var bestRate = (load + 1) / plain;
        expected = 1;
        cost = 1;
        var sum = 1.0;
        for (var k = 1; k <= acceptance.Length; k++)
        {
            sum += acceptance[k - 1];
            var c = costs.Cost(load + k + 1);
            if ((load + sum) / c > bestRate + 1e-9)
            {
                best = k;
                bestRate = (load + sum) / c;
                expected = sum;
                cost = c / plain;
            }
        }
        return best;
    }
}
