namespace AgentHost.Llama.Analysis;

/// <summary>One scored response token.</summary>
public sealed record ContrastiveToken
{
    /// <summary>Token id y_t.</summary>
    public required int Token { get; init; }

    /// <summary>Its text.</summary>
    public required string Text { get; init; }

    /// <summary>s_t = softmax((1 + beta) z_pos - beta z_neg)[y_t]; low means the negative model prefers it.</summary>
    public required double Score { get; init; }

    /// <summary>log p_pos(y_t | prefix) under the positive model.</summary>
    public required double LogProbPositive { get; init; }

    /// <summary>log p_neg(y_t | prefix) under the negative model.</summary>
    public required double LogProbNegative { get; init; }
}
