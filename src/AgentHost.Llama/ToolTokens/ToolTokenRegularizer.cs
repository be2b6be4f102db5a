namespace AgentHost.Llama.ToolTokens;

/// <summary>The penalty that keeps W near its prior W0 (TokenLearning).</summary>
public enum ToolTokenRegularizer
{
    /// <summary><c>lambda * ||W - W0||</c> (Frobenius norm), as in TokenLearning's code.</summary>
    Frobenius,
    /// <summary><c>lambda * ||W - W0||^2</c>, as in the paper.</summary>
    SquaredL2,
}
