namespace AgentHost.Llama.Analysis;

/// <summary>What the verifier of a rollout analysis judges.</summary>
public enum JudgeScope
{
    /// <summary>The completion only, cut at the stop strings (the paper's code; the default).</summary>
    Completion,

    /// <summary>The trajectory's prefix followed by the completion (suits a "contains" verifier on a partial answer).</summary>
    Full,
}
