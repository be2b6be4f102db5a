namespace AgentHost.Llama.Analysis;

/// <summary>The rollouts from one prefix <c>prompt + y_1..y_i</c>.</summary>
public sealed record PrefixRollouts
{
    /// <summary>i: how many trajectory tokens the prefix holds (it includes y_i).</summary>
    public required int Length { get; init; }

    /// <summary>The trajectory's first i tokens as text (the verifier sees it only with <see cref="JudgeScope.Full"/>).</summary>
    public required string PrefixText { get; init; }

    /// <summary>c_i: completions the verifier accepted.</summary>
    public required int Correct { get; init; }

    /// <summary>The completions.</summary>
    public required IReadOnlyList<RolloutCompletion> Rollouts { get; init; }
}
