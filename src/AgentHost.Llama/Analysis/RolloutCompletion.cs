using AgentHost.Llama.Decoding;

namespace AgentHost.Llama.Analysis;

/// <summary>One sampled completion and the verifier's verdict on it.</summary>
public sealed record RolloutCompletion
{
    /// <summary>The completion's tokens (an end-of-generation token is not included; the token that completed a stop string is).</summary>
    public required int[] Tokens { get; init; }

    /// <summary>The completion's text, cut before a stop string.</summary>
    public required string Text { get; init; }

    /// <summary>The verdict on <see cref="Text"/> (with <see cref="JudgeScope.Full"/>: on the prefix text followed by it).</summary>
    public required bool Passed { get; init; }

    /// <summary>Why it ended: end of generation, a stop string or max tokens.</summary>
    public required StopReason Stop { get; init; }

    /// <summary>With a continuation (agent runs): the tool calls the run executed; <see cref="Text"/> is then the whole run after the prefix.</summary>
    public IReadOnlyList<RolloutToolCall>? ToolCalls { get; init; }
}
