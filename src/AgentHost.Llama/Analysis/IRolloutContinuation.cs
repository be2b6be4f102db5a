namespace AgentHost.Llama.Analysis;

/// <summary>
/// Samples one completion of <paramref name="context"/> (prompt tokens, BOS included as the model wants) with the
/// rollout's sampling, ending at <paramref name="stopTokens"/>, an end-of-generation token or the rollout's most tokens;
/// returns its text. Given to a <see cref="IRolloutContinuation"/> by the analyzer.
/// </summary>
public delegate ValueTask<string> RolloutGenerator(IReadOnlyList<int> context, IReadOnlyList<int> stopTokens, CancellationToken cancellationToken);

/// <summary>
/// Carries a rollout on past its first sampled completion, as an agent does: runs what the completion asked for
/// (tool calls, with the tools live), lets the model continue with <see cref="RolloutGenerator"/>, and returns the
/// whole run after the trajectory prefix. The verifier then judges the prefix followed by that run, the task's
/// outcome. The engine knows no chat formats: an implementation in the chat layer renders and parses them
/// (<c>AgentRollouts</c> in AgentHost.Extensions.AI).
/// </summary>
public interface IRolloutContinuation
{
    /// <summary>What the continuation does, in a few words (shown in reports).</summary>
    string Description { get; }

    /// <summary>Token ids that end a sampled completion besides end-of-generation (e.g. the chat format's turn end).</summary>
    IReadOnlyList<int> StopTokens { get; }

    /// <summary>
    /// The run after a sampled <paramref name="completion"/> of the trajectory's first <paramref name="prefixLength"/>
    /// tokens: the completion itself, then whatever the agent did next.
    /// </summary>
    ValueTask<RolloutContinuationResult> ContinueAsync(int prefixLength, string completion, RolloutGenerator generate, CancellationToken cancellationToken);
}

/// <summary>What an agent did after a rollout's first completion.</summary>
public sealed record RolloutContinuationResult
{
    /// <summary>The run after the trajectory prefix as text (the completion, tool results, later replies), what the verifier judges after the prefix.</summary>
    public required string Text { get; init; }

    /// <summary>Tool calls executed during the run (live).</summary>
    public required IReadOnlyList<RolloutToolCall> ToolCalls { get; init; }
}

/// <summary>One tool call executed during a rollout.</summary>
/// <param name="Name">The tool.</param>
/// <param name="Arguments">Its arguments as JSON.</param>
/// <param name="Result">What it returned, as text.</param>
public sealed record RolloutToolCall(string Name, string Arguments, string Result);
