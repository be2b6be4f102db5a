namespace AgentHost.Llama.Decoding;

/// <summary>One of the most likely tokens at a step: its id and log-probability.</summary>
/// <param name="Token">The token id.</param>
/// <param name="Logprob">log softmax of the model's raw logits at the step, for this token.</param>
public readonly record struct TopLogprob(int Token, double Logprob);

/// <summary>
/// A generated token's log-probability, as OpenAI's <c>logprobs</c> and llama-server's <c>n_probs</c> report it: the log
/// softmax of the model's raw logits (before logit biases, penalties, temperature, truncation or a grammar) at the step
/// that emitted it, with the most likely tokens of that step.
/// </summary>
/// <param name="Token">The emitted token's id.</param>
/// <param name="Logprob">Its log-probability under the model's raw logits.</param>
/// <param name="Top">The step's most likely tokens, most likely first (as many as <see cref="GenerationRequest.TopLogprobs"/>).</param>
public sealed record TokenLogprob(int Token, double Logprob, IReadOnlyList<TopLogprob> Top)
{
    /// <summary>Entropy (nats) of the step's distribution under the raw logits: how uncertain the model was, whichever token it emitted.</summary>
    public double Entropy { get; init; }
}

/// <summary>
/// The per-request hook the plain strategies and the batcher call at each emitted token when a request asks for
/// log-probabilities; a request that does not has none, and the hot path does nothing. Written and read on the model's
/// thread while generating; read by others only after the generation completed.
/// </summary>
internal sealed class TokenLogprobRecorder(int top)
{
    private readonly List<TokenLogprob> _all = [];
    private int _taken;

    public IReadOnlyList<TokenLogprob> All => _all;

    /// <summary>Records the emitted <paramref name="token"/> from the step's raw <paramref name="logits"/> (before any bias).</summary>
    public void Record(ReadOnlySpan<float> logits, int token)
    {
        var (_, logSumExp) = LogitMath.LogSumExp(logits);
        var best = new TopLogprob[Math.Min(top, logits.Length)];
        var count = 0;
        if (best.Length > 0)
        {
            // Insertion into a sorted array of at most 20: O(vocabulary x top) at worst, one pass.
            for (var id = 0; id < logits.Length; id++)
            {
                var z = logits[id];
                if (count == best.Length && z <= best[count - 1].Logprob)
                    continue;
                var at = count < best.Length ? count++ : count - 1;
                while (at > 0 && best[at - 1].Logprob < z)
                {
                    best[at] = best[at - 1];
                    at--;
                }
                best[at] = new TopLogprob(id, z);
            }
            for (var i = 0; i < count; i++)
                best[i] = best[i] with { Logprob = best[i].Logprob - logSumExp };
        }
        _all.Add(new TokenLogprob(token, logits[token] - logSumExp, best) { Entropy = LogitMath.Entropy(logits, logSumExp) });
    }

    /// <summary>The entries recorded since the last call (for a streamed piece of text), or null when there are none.</summary>
    public TokenLogprob[]? TakeNew()
    {
        if (_taken == _all.Count)
            return null;
        var taken = _all.GetRange(_taken, _all.Count - _taken).ToArray();
        _taken = _all.Count;
        return taken;
    }
}

/// <summary>
/// Logit biases (OpenAI's <c>logit_bias</c>): a bias per token id, added to the raw logits before the token is chosen
/// (greedy or sampled, under a grammar too). A bias of -100 in effect bans a token, +100 forces it.
/// </summary>
internal static class LogitBias
{
    /// <summary>Adds the biases to <paramref name="logits"/> in place.</summary>
    public static void Apply(IReadOnlyDictionary<int, float> bias, Span<float> logits)
    {
        foreach (var (token, value) in bias)
            logits[token] += value;
    }
}
