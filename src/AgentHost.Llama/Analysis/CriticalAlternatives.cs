namespace AgentHost.Llama.Analysis;

/// <summary>The "without" check: alternatives drawn at the critical position with the original token excluded.</summary>
public sealed record CriticalAlternatives
{
    /// <summary>i: the alternatives replace y_i (drawn from the raw softmax at temperature 1, no top-p, of p(. | prompt, y_1..y_{i-1}) with p[y_i] = 0).</summary>
    public required int Length { get; init; }

    /// <summary>The excluded original token y_i.</summary>
    public required int Excluded { get; init; }

    /// <summary>The trajectory's first i - 1 tokens as text (the verifier sees it only with <see cref="JudgeScope.Full"/>).</summary>
    public required string PrefixText { get; init; }

    /// <summary>Completions; each starts with its alternative token.</summary>
    public required IReadOnlyList<RolloutCompletion> Completions { get; init; }

    /// <summary>Completions the verifier accepted.</summary>
    public required int Correct { get; init; }

    /// <summary>pass@k for k = 1..n (unbiased estimator); entry k-1 is pass@k.</summary>
    public required IReadOnlyList<double> PassAtK { get; init; }
}
