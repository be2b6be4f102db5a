namespace AgentHost.SemanticKernel.Templates;

/// <summary>Safety limits applied when a <see cref="ScribanPromptTemplate"/> renders.</summary>
public sealed class ScribanPromptTemplateOptions
{
    /// <summary>Maximum iterations of any single loop (Scriban's <c>LoopLimit</c>). Default 1000.</summary>
    public int LoopLimit { get; init; } = 1000;

    /// <summary>Maximum function recursion depth (Scriban's <c>RecursiveLimit</c>). Default 100.</summary>
    public int RecursiveLimit { get; init; } = 100;

    /// <summary>Maximum rendered output in characters. Default 1,000,000.</summary>
    public int MaxOutputLength { get; init; } = 1_000_000;
}
