using AgentHost.Llama.Decoding.Speculative;

namespace AgentHost.Llama.Decoding.Strategies;

/// <summary>
/// Prompt lookup decoding (llama.cpp <c>lookup</c>, PLD): find the most recent earlier occurrence of
/// the last n tokens (n from <c>lookup_ngram</c> down to 1) in prompt + output and draft the tokens that
/// followed it as one chain; verified exactly like token recycling, so it is the peer measured in the
/// same engine.
/// </summary>
public sealed class LookupStrategy : SpeculativeStrategy
{
    /// <summary>Option key: longest n-gram matched.</summary>
    public const string NgramOption = "lookup_ngram";

    /// <summary>Option key: most tokens drafted.</summary>
    public const string DraftOption = "lookup_draft";

    private readonly int _ngram;
    private readonly int _draft;

    /// <summary>Creates the strategy from its options.</summary>
    public LookupStrategy(StrategyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _ngram = options.GetInt(NgramOption, 3, min: 1, max: 16);
        _draft = options.GetInt(DraftOption, 3, min: 1, max: 64);
    }

    /// <inheritdoc />
    public override string Name => "lookup";

    /// <inheritdoc />
    protected override void Draft(DraftTree tree, IReadOnlyList<int> history, int maxDepth)
    {
        var length = Math.Min(_draft, maxDepth);
        var end = history.Count;
        for (var n = Math.Min(_ngram, end - 1); n >= 1 && length > 0; n--)
        {
            // Most recent earlier match of history[end-n .. end-1] that has a continuation.
            for (var start = end - n - 1; start >= 0; start--)
            {
                if (!Matches(history, start, end - n, n))
                    continue;
                var node = 0;
                for (var i = start + n; i < end && tree.Count <= length; i++)
                    node = tree.Add(node, history[i]);
                return;
            }
        }
    }

    private static bool Matches(IReadOnlyList<int> history, int a, int b, int length)
    {
        for (var i = 0; i < length; i++)
        {
            if (history[a + i] != history[b + i])
                return false;
        }
        return true;
    }
}
