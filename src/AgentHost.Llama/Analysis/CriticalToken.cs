namespace AgentHost.Llama.Analysis;

/// <summary>The critical token the rule found.</summary>
public sealed record CriticalToken
{
    /// <summary>i (1-based position in the trajectory).</summary>
    public required int Length { get; init; }

    /// <summary>Index of its prefix in <see cref="RolloutReport.Prefixes"/>.</summary>
    public required int PrefixIndex { get; init; }

    /// <summary>The token id y_i.</summary>
    public required int Token { get; init; }

    /// <summary>The token's text.</summary>
    public required string Text { get; init; }

    /// <summary>The token's label from <see cref="RolloutRequest.TokenSpans"/> (agent runs: plan or tool_call), or null.</summary>
    public string? Span { get; init; }
}
