namespace AgentHost.Llama.ToolTokens;

/// <summary>
/// How well a head fires: at each labelled position of a held-out <see cref="ToolTokenDataset"/> the head
/// fires when a tool's score beats every vocabulary logit; a true positive is the right tool at a call start.
/// </summary>
/// <param name="Positions">Labelled positions looked at.</param>
/// <param name="Calls">Positions where a call belongs.</param>
/// <param name="Fired">Positions where the head fired.</param>
/// <param name="TruePositives">Positions where it fired the right tool at a call start.</param>
public sealed record ToolTokenEvaluation(int Positions, int Calls, double Fired, double TruePositives)
{
    /// <summary>TruePositives / Fired (0 when it never fired).</summary>
    public double Precision => Fired > 0 ? TruePositives / Fired : 0;

    /// <summary>TruePositives / Calls.</summary>
    public double Recall => Calls > 0 ? TruePositives / Calls : 0;

    /// <summary>Harmonic mean of precision and recall.</summary>
    public double F1 => Precision + Recall > 0 ? 2 * Precision * Recall / (Precision + Recall) : 0;

    /// <summary>Evaluates <paramref name="head"/> (with its bias) on <paramref name="data"/>.</summary>
    public static ToolTokenEvaluation Evaluate(ToolTokenHead head, ToolTokenDataset data)
    {
        ArgumentNullException.ThrowIfNull(head);
        ArgumentNullException.ThrowIfNull(data);
        if (head.Dimension != data.Dimension || head.ContextWindow != data.ContextWindow || head.Tools.Count != data.Tools.Count)
            throw new AgentHostException(ErrorKind.InvalidArgument, "The head and the evaluation data differ in hidden size, context window or tools.");
        return Evaluate(head.Weights, head.Bias, data);
    }

    /// <summary>Evaluates the weights W [tools x features] of a head with bias <paramref name="bias"/> on <paramref name="data"/> (read the head's way).</summary>
    internal static ToolTokenEvaluation Evaluate(ReadOnlySpan<float> weights, float bias, ToolTokenDataset data)
    {
        var d = data.Dimension;
        var tools = data.Tools.Count;
        int fired = 0, correct = 0;
        for (var p = 0; p < data.Count; p++)
        {
            var features = data.FeaturesAt(p);
            var best = 0;
            var bestScore = float.NegativeInfinity;
            for (var i = 0; i < tools; i++)
            {
                var score = ToolTokenHead.Dot(weights.Slice(i * d, d), features) + bias;
                if (i == 0 || score > bestScore)
                    (best, bestScore) = (i, score);
            }
            if (bestScore <= data.MaxVocabLogit[p])
                continue;
            fired++;
            if (data.Labels[p] == data.VocabularySize + best)
                correct++;
        }
        return new ToolTokenEvaluation(data.Count, data.CallPositions, fired, correct);
    }

    /// <summary>
    /// The expected result of chance: firing at a random position with the corpus's call rate, a random tool
    /// (precision = rate / tools, recall = rate / tools).
    /// </summary>
    public static ToolTokenEvaluation Chance(ToolTokenDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var tools = Math.Max(1, data.Tools.Count);
        var rate = data.Count > 0 ? data.CallPositions / (double)data.Count : 0;
        // Fires CallPositions times in expectation; each is a call start with probability rate, the right tool with 1/tools.
        return new ToolTokenEvaluation(data.Count, data.CallPositions, data.CallPositions, data.CallPositions * rate / tools);
    }
}
