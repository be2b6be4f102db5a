namespace AgentHost.Llama.ToolTokens;

/// <summary>Which prior W0 a head starts from.</summary>
public enum ToolTokenPrior
{
    /// <summary>Zero (plain ToolkenGPT).</summary>
    None,
    /// <summary>TokenLearning's code: mean final hidden state of the name's tokens, L2-normalised and scaled.</summary>
    HiddenStates,
    /// <summary>TokenLearning's paper: mean of the output-embedding rows of the name's tokens, read from the GGUF.</summary>
    OutputEmbeddings,
}
