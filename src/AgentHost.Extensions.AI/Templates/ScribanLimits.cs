namespace AgentHost.Extensions.AI.Templates;

/// <summary>
/// Safety limits of every Scriban template the product parses and renders: prompt templates, chat-format
/// templates and agents' instructions (see <see cref="BoundedScriban"/>). A template that breaks one fails
/// with an error naming the template and the limit.
/// </summary>
public sealed class ScribanLimits
{
    /// <summary>The defaults.</summary>
    public static ScribanLimits Default { get; } = new();

    /// <summary>Maximum iterations of a loop and the loops nested in it, together (Scriban's <c>LoopLimit</c>). Default 1000.</summary>
    public int LoopLimit { get; init; } = 1000;

    /// <summary>Maximum function recursion depth (Scriban's <c>RecursiveLimit</c>). Default 100.</summary>
    public int RecursiveLimit { get; init; } = 100;

    /// <summary>Maximum rendered output, and the longest string an expression may build, in characters. Default 1,000,000.</summary>
    public int MaxOutputLength { get; init; } = 1_000_000;

    /// <summary>Maximum template source (and each included part) in characters. Default 200,000.</summary>
    public int MaxTemplateLength { get; init; } = 200_000;

    /// <summary>Longest one render may run; bounds work that no count catches (e.g. a recursion tree). Default 5 s.</summary>
    public TimeSpan RenderTimeout { get; init; } = TimeSpan.FromSeconds(5);
}
