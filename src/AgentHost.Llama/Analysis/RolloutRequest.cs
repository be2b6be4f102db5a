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

    /// <summary>Judges responses.</summary>
    public required ITrajectoryVerifier Verifier { get; init; }

    /// <summary>Settings.</summary>
    public RolloutOptions Options { get; init; } = new();
}
