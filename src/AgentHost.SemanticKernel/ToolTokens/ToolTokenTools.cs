using AgentHost.Llama;
using AgentHost.Llama.ToolTokens;
using Microsoft.SemanticKernel;

namespace AgentHost.SemanticKernel.ToolTokens;

/// <summary>
/// The tools tool-token heads fire: the built-in arithmetic functions (add, subtract, multiply, what the demo
/// corpus annotates) and every function of the configured plugins (a head names a tool by its function name,
/// e.g. <c>Add</c> for <c>Math.Add</c>; the corpus must use the same name). Thread-safe once created.
/// </summary>
/// <param name="configuredKernel">Makes the kernel with the app's configured plugins; called once, on first need.</param>
public sealed class ToolTokenTools(Func<Kernel> configuredKernel)
{
    private static readonly Kernel _builtInKernel = new();

    private static readonly KernelFunction[] _arithmetic =
    [
        KernelFunctionFactory.CreateFromMethod((long a, long b) => a + b, "add", "Adds two whole numbers."),
        KernelFunctionFactory.CreateFromMethod((long a, long b) => a - b, "subtract", "Subtracts b from a."),
        KernelFunctionFactory.CreateFromMethod((long a, long b) => a * b, "multiply", "Multiplies two whole numbers."),
    ];

    private readonly Lazy<Kernel> _configured = new(configuredKernel);

    /// <summary>
    /// The tools named by <paramref name="values"/> (each comma-separated): <c>arithmetic</c> (the default when none
    /// is named), a built-in tool, a configured plugin (<c>Math</c>: all its functions) or function (<c>Math.Add</c>).
    /// </summary>
    /// <param name="values">Tool, plugin and function names.</param>
    /// <returns>The tools, each once.</returns>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidArgument"/>: an unknown or ambiguous name.</exception>
    public IReadOnlyList<ToolDefinition> FromNames(IEnumerable<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var names = values.SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();
        if (names.Count == 0)
            names.Add("arithmetic");
        var functions = names.SelectMany(name => name == "arithmetic" ? _arithmetic.Select(f => (f, _builtInKernel))
            : !name.Contains('.', StringComparison.Ordinal) && Configured().Plugins.TryGetPlugin(name, out var plugin) ? plugin.Select(f => (f, Configured()))
            : [Find(name)]);
        return [.. functions.DistinctBy(f => f.Item1.Name).Select(f => f.Item1.AsToolDefinition(f.Item2))];
    }

    /// <summary>The tools with these names (a head's tools), in this order.</summary>
    /// <param name="names">Built-in tool names, <c>Plugin.Function</c>, or configured function names that are unique.</param>
    /// <returns>The tools.</returns>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidArgument"/>: an unknown or ambiguous name.</exception>
    public IReadOnlyList<ToolDefinition> Resolve(IEnumerable<string> names) => [.. names.Select(Find).Select(f => f.Function.AsToolDefinition(f.Kernel))];

    /// <summary>The same tools as functions a chat client can be given (same schemas as <see cref="Resolve"/>).</summary>
    /// <param name="names">As for <see cref="Resolve"/>.</param>
    /// <returns>The functions.</returns>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidArgument"/>: an unknown or ambiguous name.</exception>
    public IReadOnlyList<Microsoft.Extensions.AI.AIFunction> Functions(IEnumerable<string> names) =>
    [
#pragma warning disable CS0618   // binds the function to its kernel; SK 1.82 has no other way
        .. names.Select(Find).Select(f => f.Function.AsAIFunction(f.Kernel)),
#pragma warning restore CS0618
    ];

    /// <summary>A built-in tool, <c>Plugin.Function</c>, or a configured function by its (unique) name.</summary>
    private (KernelFunction Function, Kernel Kernel) Find(string name)
    {
        if (_arithmetic.FirstOrDefault(f => f.Name == name) is { } builtIn)
            return (builtIn, _builtInKernel);
        var kernel = Configured();
        var parts = name.Split('.', 2);
        if (parts.Length == 2)
        {
            return kernel.Plugins.TryGetFunction(parts[0], parts[1], out var function) ? (function, kernel)
                : throw Unknown($"unknown tool or plugin '{name}': no configured plugin function of that name.");
        }
        var matches = kernel.Plugins.SelectMany(p => p.Where(f => f.Name == name)).ToList();
        return matches.Count switch
        {
            1 => (matches[0], kernel),
            0 => throw Unknown($"unknown tool or plugin '{name}'; built-in: arithmetic ({string.Join(", ", _arithmetic.Select(f => f.Name))}); configured plugins: {string.Join(", ", kernel.Plugins.Select(p => p.Name))}."),
            _ => throw Unknown($"tool '{name}' is ambiguous: {string.Join(", ", matches.Select(f => $"{f.PluginName}.{f.Name}"))}; name it as Plugin.Function."),
        };
    }

    private Kernel Configured() => _configured.Value;

    private static AgentHostException Unknown(string message) => new(ErrorKind.InvalidArgument, message);
}
