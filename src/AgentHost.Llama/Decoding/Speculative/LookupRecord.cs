namespace AgentHost.Llama.Decoding.Speculative;

/// <summary>
/// How often prompt-lookup drafts were accepted, per n-gram match length and draft depth: the
/// probability that the token at depth d is accepted given that the walk reached depth d - 1. One per
/// loaded model (kept across requests), touched only on its scheduler thread.
/// </summary>
public sealed class LookupRecord
{
    /// <summary>Longest match length tracked.</summary>
    public const int MaxNgram = 16;

    /// <summary>Deepest draft tracked.</summary>
    public const int MaxDepth = 64;

    private const double Prior = 0.5;   // an untried depth is a coin flip, so it gets tried
    private const double PriorWeight = 2;

    private readonly double[] _attempts = new double[(MaxNgram + 1) * (MaxDepth + 1)];
    private readonly double[] _accepts = new double[(MaxNgram + 1) * (MaxDepth + 1)];

    /// <summary>Estimated probability that the draft token at <paramref name="depth"/> of a match of <paramref name="ngram"/> tokens is accepted once its parent is.</summary>
    public double Acceptance(int ngram, int depth)
    {
        var at = Index(ngram, depth);
        return (_accepts[at] + PriorWeight * Prior) / (_attempts[at] + PriorWeight);
    }

    /// <summary>
    /// Fills <paramref name="acceptance"/> with the probability of reaching and accepting each draft depth
    /// (the running product of <see cref="Acceptance"/>) for a match of <paramref name="ngram"/> tokens.
    /// </summary>
    public void Chain(int ngram, Span<double> acceptance)
    {
        var reach = 1.0;
        for (var d = 1; d <= acceptance.Length; d++)
        {
            reach *= Acceptance(ngram, d);
            acceptance[d - 1] = reach;
        }
    }

    /// <summary>Records a step that drafted <paramref name="drafted"/> tokens for a match of <paramref name="ngram"/> tokens and accepted <paramref name="accepted"/>.</summary>
    public void Record(int ngram, int drafted, int accepted)
    {
        for (var d = 1; d <= Math.Min(drafted, accepted + 1); d++)
        {
            var at = Index(ngram, d);
            _attempts[at]++;
            if (d <= accepted)
                _accepts[at]++;
        }
    }

    /// <summary>
    /// Prompt lookup: the longest n (at most <paramref name="maxNgram"/>) whose last n tokens of <paramref name="history"/> occurred
    /// earlier with a continuation, and where the latest such occurrence starts; 0 when none does.
    /// </summary>
    public static int FindMatch(ReadOnlySpan<int> history, int maxNgram, out int start)
    {
        var end = history.Length;
        for (var n = Math.Min(maxNgram, end - 1); n >= 1; n--)
        {
            var suffix = history[(end - n)..];
            for (start = end - n - 1; start >= 0; start--)
            {
                if (history.Slice(start, n).SequenceEqual(suffix))
                    return n;
            }
        }
        start = -1;
        return 0;
    }

    private static int Index(int ngram, int depth) => Math.Clamp(ngram, 1, MaxNgram) * (MaxDepth + 1) + Math.Clamp(depth, 1, MaxDepth);
}
