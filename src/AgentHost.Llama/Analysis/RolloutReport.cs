namespace AgentHost.Llama.Analysis;

/// <summary>The result of a rollout analysis: everything needed to recount it.</summary>
public sealed record RolloutReport
{
    /// <summary>Kind tag of the JSON document.</summary>
    public string Kind => "rollouts";

    /// <summary>Model name.</summary>
    public required string Model { get; init; }

    /// <summary>The prompt.</summary>
    public required string Prompt { get; init; }

    /// <summary>The prompt's tokens (BOS included when the model adds one).</summary>
    public required int[] PromptTokens { get; init; }

    /// <summary>The trajectory's tokens y_1..y_T.</summary>
    public required int[] TrajectoryTokens { get; init; }

    /// <summary>Each trajectory token's text.</summary>
    public required string[] TokenTexts { get; init; }

    /// <summary>A label per trajectory token (agent runs: prompt, plan, tool_call, tool_result), or null.</summary>
    public IReadOnlyList<string>? TokenSpans { get; init; }

    /// <summary>The continuation every rollout ran through (agent runs), or null.</summary>
    public string? Continuation { get; init; }

    /// <summary>The trajectory's text.</summary>
    public required string TrajectoryText { get; init; }

    /// <summary>Whether the model generated the trajectory.</summary>
    public required bool TrajectoryGenerated { get; init; }

    /// <summary>The verifier's verdict on the whole trajectory (the rule expects a wrong one).</summary>
    public required bool TrajectoryPasses { get; init; }

    /// <summary>The verifier's description.</summary>
    public required string Verifier { get; init; }

    /// <summary>Settings as run.</summary>
    public required RolloutSettings Settings { get; init; }

    /// <summary>Rollouts per analysed prefix, in prefix order.</summary>
    public required IReadOnlyList<PrefixRollouts> Prefixes { get; init; }

    /// <summary>The critical token, or null when no prefix had zero correct rollouts.</summary>
    public CriticalToken? Critical { get; init; }

    /// <summary>The alternatives at the critical token, or null without one.</summary>
    public CriticalAlternatives? Alternatives { get; init; }

    /// <summary>Cost.</summary>
    public required AnalysisStats Stats { get; init; }
}
