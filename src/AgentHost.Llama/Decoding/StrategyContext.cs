using AgentHost.Llama.ToolTokens;

namespace AgentHost.Llama.Decoding;

/// <summary>What the host offers the strategies it creates, beyond the request's own options.</summary>
public sealed record StrategyContext
{
    /// <summary>A trusted in-process host: file options allowed, no tools.</summary>
    public static StrategyContext Default { get; } = new();

    /// <summary>
    /// Whether options may name files (<see cref="StrategyOption.NamesFile"/>). A host that serves untrusted requests
    /// sets it off and such an option is refused, whatever its value: server-side files are the operator's to name.
    /// </summary>
    public bool AllowFileOptions { get; init; } = true;

    /// <summary>Whether the host's sessions return final hidden states (strategies that need them are refused otherwise).</summary>
    public bool HiddenStates { get; init; } = true;

    /// <summary>Values the host sets for options a request leaves unset (e.g. its <c>recycling_matrix</c> file).</summary>
    public IReadOnlyDictionary<string, string> Defaults { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// The tools a strategy that calls tools from inside decoding may use, by name in the order asked; throws
    /// <see cref="AgentHostException"/> naming a tool the host does not have. Null: the host offers none.
    /// </summary>
    public Func<IReadOnlyList<string>, IReadOnlyList<ToolDefinition>>? ResolveTools { get; init; }
}
