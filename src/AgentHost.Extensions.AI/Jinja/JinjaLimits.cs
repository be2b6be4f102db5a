namespace AgentHost.Extensions.AI.Jinja;

/// <summary>
/// Safety limits of the Jinja engine. A GGUF's chat template is untrusted input: a template that breaks one of
/// these fails with an <see cref="AgentHost.Llama.AgentHostException"/> (<see cref="AgentHost.Llama.ErrorKind.InvalidArgument"/>)
/// naming the template and the limit, never with a hang, a stack overflow or an out-of-memory.
/// </summary>
public sealed class JinjaLimits
{
    /// <summary>The defaults.</summary>
    public static JinjaLimits Default { get; } = new();

    /// <summary>Maximum template source in characters. Default 200,000.</summary>
    public int MaxTemplateLength { get; init; } = 200_000;

    /// <summary>Maximum nesting of blocks and expressions while parsing. Default 100.</summary>
    public int MaxParseDepth { get; init; } = 100;

    /// <summary>Maximum loop iterations of one render, all loops together (also counts items that filters such as
    /// <c>map</c> or <c>select</c> walk). Default 100,000.</summary>
    public int MaxIterations { get; init; } = 100_000;

    /// <summary>Maximum nesting of macro calls (recursion). Default 50.</summary>
    public int MaxCallDepth { get; init; } = 50;

    /// <summary>Maximum rendered output, and the longest string an expression may build, in characters. Default 1,000,000.</summary>
    public int MaxOutputLength { get; init; } = 1_000_000;

    /// <summary>Longest one render may run, checked in loops and calls. Default 5 s.</summary>
    public TimeSpan RenderTimeout { get; init; } = TimeSpan.FromSeconds(5);
}
