namespace AgentHost.Llama.Analysis;

/// <summary>Settings as run (resolved defaults and seed included).</summary>
public sealed record RolloutSettings
{
    /// <summary>Rollouts per prefix (n).</summary>
    public required int Rollouts { get; init; }

    /// <summary>Prefix stride k: prefixes of k, 2k, ... tokens were analysed.</summary>
    public required int Stride { get; init; }

    /// <summary>Temperature.</summary>
    public required float Temperature { get; init; }

    /// <summary>Top-p.</summary>
    public required float TopP { get; init; }

    /// <summary>Most new tokens per rollout.</summary>
    public required int MaxTokens { get; init; }

    /// <summary>The seed used.</summary>
    public required ulong Seed { get; init; }

    /// <summary>Recovery threshold of the rule.</summary>
    public required int RecoverThreshold { get; init; }

    /// <summary>Stop strings of the rollouts.</summary>
    public required IReadOnlyList<string> StopStrings { get; init; }

    /// <summary>What the verifier judged.</summary>
    public required JudgeScope Judge { get; init; }

    /// <summary>Rollouts decoded in parallel per round (limited by the model's sequences and the context).</summary>
    public required int ParallelSequences { get; init; }
}
