namespace AgentHost.Llama.Analysis;

/// <summary>What to analyse: a prompt, a (wrong) trajectory or none (then the model writes one), and a verifier.</summary>
public sealed record RolloutRequest
{
    /// <summary>The prompt.</summary>
    public required string Prompt { get; init; }

    /// <summary>The trajectory as text (tokenized together with the prompt); null with no tokens: the model generates one.</summary>
    public string? Trajectory { get; init; }

    /// <summary>The trajectory as token ids (wins over <see cref="Trajectory"/>).</summary>
    public IReadOnlyList<int>? TrajectoryTokens { get; init; }

    /// <summary>With <see cref="TrajectoryTokens"/>: the prompt's tokens, instead of tokenizing <see cref="Prompt"/> (a rendered chat prompt's markup).</summary>
    public IReadOnlyList<int>? PromptTokens { get; init; }

    /// <summary>
    /// The prefix lengths i (1..T-1, ascending) to analyse instead of all of them, e.g. only the tokens an agent wrote;
    /// <see cref="RolloutOptions.Stride"/> then takes every k-th of these.
    /// </summary>
    public IReadOnlyList<int>? PrefixLengths { get; init; }

    /// <summary>A label per trajectory token (e.g. plan, tool_call, tool_result), carried into the report.</summary>
    public IReadOnlyList<string>? TokenSpans { get; init; }

    /// <summary>Continues every rollout as an agent (tools live); the verifier then judges the prefix followed by the whole run.</summary>
    public IRolloutContinuation? Continuation { get; init; }

    /// <summary>Judges responses.</summary>
    public required ITrajectoryVerifier Verifier { get; init; }

    /// <summary>Settings.</summary>
    public RolloutOptions Options { get; init; } = new();
}
