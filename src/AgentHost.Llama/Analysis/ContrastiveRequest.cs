namespace AgentHost.Llama.Analysis;

/// <summary>What to score: a prompt and a response, teacher-forced through both models.</summary>
public sealed record ContrastiveRequest
{
    /// <summary>The prompt.</summary>
    public required string Prompt { get; init; }

    /// <summary>The response as text (tokenized together with the prompt).</summary>
    public string? Response { get; init; }

    /// <summary>The response as token ids (wins over <see cref="Response"/>).</summary>
    public IReadOnlyList<int>? ResponseTokens { get; init; }

    /// <summary>
    /// With <see cref="ResponseTokens"/>: the context tokens they follow, instead of tokenizing <see cref="Prompt"/>
    /// (the cDPO paper export scores every token after the first of prompt + response this way).
    /// </summary>
    public IReadOnlyList<int>? PromptTokens { get; init; }

    /// <summary>beta of <c>softmax((1 + beta) z_pos - beta z_neg)</c>; the paper uses 1, 0 gives the positive model's probabilities.</summary>
    public double Beta { get; init; } = 1.0;
}
