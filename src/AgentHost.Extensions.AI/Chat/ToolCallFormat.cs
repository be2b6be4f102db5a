namespace AgentHost.Extensions.AI.Chat;

/// <summary>
/// How a model family writes a tool call, for the prompt, the parser and a grammar that forces a well-formed call.
/// One call is written exactly as <see cref="CallPrefix"/> + <c>{"name": "NAME", "ARGS": {...}}</c> +
/// <see cref="CallSuffix"/>, where ARGS is <see cref="ArgumentsProperty"/> (see <see cref="FormatCall"/>).
/// </summary>
public sealed class ToolCallFormat
{
    private ToolCallFormat(string name, string callStart, string? callEnd, string callPrefix, string callSuffix,
        string argumentsProperty, string bareJsonOpeners, string[] markers, string? namedArgumentsMarker = null)
    {
        Name = name;
        CallStart = callStart;
        CallEnd = callEnd;
        CallPrefix = callPrefix;
        CallSuffix = callSuffix;
        ArgumentsProperty = argumentsProperty;
        BareJsonOpeners = bareJsonOpeners;
        Markers = markers;
        NamedArgumentsMarker = namedArgumentsMarker;
    }

    /// <summary>
    /// Hermes / Qwen: <c>&lt;tool_call&gt;\n{"name": ..., "arguments": {...}}\n&lt;/tool_call&gt;</c>, one block per call.
    /// </summary>
    public static ToolCallFormat Hermes { get; } = new("hermes", "<tool_call>", "</tool_call>", "<tool_call>\n", "\n</tool_call>", "arguments", "", ["<tool_call>"]);

    /// <summary>
    /// Llama 3.1+ JSON: the reply is the call, <c>{"name": ..., "parameters": {...}}</c> (optionally after
    /// <c>&lt;|python_tag|&gt;</c>). There is no marker text: a reply that starts with <c>{</c> is read as a call.
    /// </summary>
    public static ToolCallFormat Llama3Json { get; } = new("llama3-json", "{\"name\"", null, "", "", "parameters", "{", ["<|python_tag|>"]);

    /// <summary>
    /// Mistral: <c>[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]</c>; newer Mistral models write
    /// <c>[TOOL_CALLS]name[ARGS]{...}</c> per call, which is read too. <c>[TOOL_CALLS]</c> is a control token: the text
    /// fed to the parser should show it (a reply that starts with a JSON array or object is also read as calls).
    /// </summary>
    public static ToolCallFormat Mistral { get; } = new("mistral", "[TOOL_CALLS]", null, "[TOOL_CALLS][", "]", "arguments", "[{", ["[TOOL_CALLS]"], "[ARGS]");

    /// <summary>
    /// The generic format for models without native tools: <c>&lt;tool_call&gt;{"name": ..., "arguments": {...}}&lt;/tool_call&gt;</c>.
    /// </summary>
    public static ToolCallFormat Generic { get; } = new("generic", "<tool_call>", "</tool_call>", "<tool_call>", "</tool_call>", "arguments", "", ["<tool_call>"]);

    /// <summary>The format's name: <c>hermes</c>, <c>llama3-json</c>, <c>mistral</c> or <c>generic</c>.</summary>
    public string Name { get; }

    /// <summary>The text that starts a call in the output: the trigger for a lazy grammar.</summary>
    public string CallStart { get; }

    /// <summary>The text that ends a call block, or null where the JSON value itself ends the call.</summary>
    public string? CallEnd { get; }

    /// <summary>The exact text before a call's JSON object when one call is written.</summary>
    public string CallPrefix { get; }

    /// <summary>The exact text after a call's JSON object when one call is written.</summary>
    public string CallSuffix { get; }

    /// <summary>The property holding the arguments object (<c>arguments</c>, or <c>parameters</c> for Llama 3). The
    /// parser accepts either.</summary>
    public string ArgumentsProperty { get; }

    // Characters that open a call when a reply starts with them (no marker), e.g. "{" for Llama 3.
    internal string BareJsonOpeners { get; }

    // Separates a tool name from its JSON arguments in Mistral's newer NAME[ARGS]{...} calls.
    internal string? NamedArgumentsMarker { get; }

    // Texts that open a call wherever they appear (Llama 3 has no marker of its own, only <|python_tag|>).
    internal string[] Markers { get; }

    /// <inheritdoc />
    public override string ToString() => Name;

    /// <summary>Writes one call exactly as this format expects it.</summary>
    /// <param name="name">The tool name.</param>
    /// <param name="argumentsJson">The arguments as a JSON object.</param>
    public string FormatCall(string name, string argumentsJson)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(argumentsJson);
        return $"{CallPrefix}{{\"name\": {JsonText.Quote(name)}, \"{ArgumentsProperty}\": {argumentsJson}}}{CallSuffix}";
    }

    /// <summary>
    /// The token of <paramref name="model"/> whose text is <see cref="CallStart"/> (Mistral's <c>[TOOL_CALLS]</c>,
    /// Qwen's <c>&lt;tool_call&gt;</c>), or null when the marker is ordinary text for this model. Use it as a lazy
    /// grammar's trigger token, and write <see cref="CallStart"/> into the text fed to the parser when the model
    /// samples it (a detokenizer hides control tokens).
    /// </summary>
    public int? GetCallStartToken(AgentHost.Llama.Models.LlamaModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.GetState(SpecialTokens.ForModel).Find(CallStart);
    }

    /// <summary>A new parser for one assistant reply.</summary>
    /// <param name="toolNames">The names of the tools offered: a call to any other name stays text (and is listed in
    /// <see cref="ToolCallParser.Problems"/>). Null reads every well-formed call as a call, which matters for Llama 3,
    /// where any JSON reply with a "name" looks like a call.</param>
    public ToolCallParser CreateParser(IEnumerable<string>? toolNames = null) => new(this, toolNames);
}
