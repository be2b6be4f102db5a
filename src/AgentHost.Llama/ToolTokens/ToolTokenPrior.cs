namespace AgentHost.Llama.ToolTokens;

/// <summary>Which prior W0 a head starts from.</summary>
public enum ToolTokenPrior
{
    /// <summary>
    /// No name prior: W starts random, as ToolkenGPT's <c>nn.Linear</c> (uniform in +-1/sqrt(d), seeded by the
    /// training seed; with a context window the context half starts at zero). A penalty then pulls towards that start.
    /// </summary>
    None,
    /// <summary>TokenLearning's code: mean final hidden state of the name's tokens, L2-normalised and scaled.</summary>
    HiddenStates,
    /// <summary>TokenLearning's paper: mean of the output-embedding rows of the name's tokens, read from the GGUF.</summary>
    OutputEmbeddings,
}
