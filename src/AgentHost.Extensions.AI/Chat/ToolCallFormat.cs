namespace AgentHost.Extensions.AI.Chat;

/// <summary>
/// How a model family writes a tool call, for the prompt, the parser and a grammar that forces a well-formed call.
/// One call is written exactly as <see cref="CallPrefix"/> + <c>{"name": "NAME", "ARGS": {...}}</c> +
/// <see cref="CallSuffix"/>, where ARGS is <see cref="ArgumentsProperty"/>; or, where the family writes the name outside
/// the JSON (<see cref="CallNameSeparator"/> is set, e.g. DeepSeek-R1), as <see cref="CallPrefix"/> + NAME +
/// <see cref="CallNameSeparator"/> + <c>{...arguments...}</c> + <see cref="CallSuffix"/> (see <see cref="FormatCall"/>).
/// </summary>
/// <remarks>
/// A chat layer picks one instance per model family (e.g. from the chat template's markers: <c>&lt;tool_call&gt;</c>
/// → <see cref="Hermes"/>, <c>&lt;|python_tag|&gt;</c> or <c>&lt;|start_header_id|&gt;</c> → <see cref="Llama3Json"/>,
/// <c>[TOOL_CALLS]</c> → <see cref="Mistral"/>, <c>&lt;|tool_call|&gt;</c> → <see cref="Phi4Mini"/>,
/// <c>&lt;start_of_turn&gt;</c> → <see cref="Gemma"/>, <c>&lt;｜tool▁calls▁begin｜&gt;</c> → <see cref="DeepSeekR1"/>,
/// anything else → <see cref="Generic"/>) and, for models that think, one with <see cref="ReasoningTags"/> set
/// (<see cref="WithReasoning"/>).
/// </remarks>
public sealed class ToolCallFormat
{
    private const string DeepSeekCallsBegin = "<｜tool▁calls▁begin｜>";
    private const string DeepSeekCallsEnd = "<｜tool▁calls▁end｜>";
    private const string DeepSeekCallBegin = "<｜tool▁call▁begin｜>";
    private const string DeepSeekCallEnd = "<｜tool▁call▁end｜>";
    private const string DeepSeekSep = "<｜tool▁sep｜>";

    private ToolCallFormat(string name, string callStart, string? callEnd, string callPrefix, string callSuffix,
        string argumentsProperty, string bareJsonOpeners, CallOpener[] openers, string? namedArgumentsMarker = null,
        string? callNameSeparator = null, string callSeparators = "", ReasoningTags? reasoningTags = null)
    {
        Name = name;
        CallStart = callStart;
        CallEnd = callEnd;
        CallPrefix = callPrefix;
        CallSuffix = callSuffix;
        ArgumentsProperty = argumentsProperty;
        BareJsonOpeners = bareJsonOpeners;
        Openers = openers;
        NamedArgumentsMarker = namedArgumentsMarker;
        CallNameSeparator = callNameSeparator;
        CallSeparators = callSeparators;
        ReasoningTags = reasoningTags;
    }

    /// <summary>
    /// Hermes / Qwen: <c>&lt;tool_call&gt;\n{"name": ..., "arguments": {...}}\n&lt;/tool_call&gt;</c>, one block per call.
    /// Reads <c>&lt;think&gt;...&lt;/think&gt;</c> reasoning (Qwen3, QwQ) as <see cref="ReasoningTags"/>.
    /// </summary>
    public static ToolCallFormat Hermes { get; } = new("hermes", "<tool_call>", "</tool_call>", "<tool_call>\n", "\n</tool_call>", "arguments", "",
        [CallOpener.Block("<tool_call>", "</tool_call>", CallPayload.Json)], reasoningTags: Chat.ReasoningTags.Think);

    /// <summary>
    /// Llama 3.1+ JSON: <c>{"name": ..., "parameters": {...}}</c> (optionally after <c>&lt;|python_tag|&gt;</c>); several
    /// calls are separated by <c>;</c> or new lines. There is no marker text: a reply that starts with <c>{</c> is read as a
    /// call, and so is a <c>{"name": ..., "parameters": {...}}</c> object after leading text.
    /// </summary>
    public static ToolCallFormat Llama3Json { get; } = new("llama3-json", "{\"name\"", null, "", "", "parameters", "{",
        [CallOpener.Json("<|python_tag|>"), CallOpener.JsonObject()], callSeparators: ";");

    /// <summary>
    /// Mistral: <c>[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]</c>; newer Mistral models write
    /// <c>[TOOL_CALLS]name[ARGS]{...}</c> per call, which is read too. <c>[TOOL_CALLS]</c> is a control token: the text
    /// fed to the parser should show it (a reply that starts with a JSON array or object is also read as calls).
    /// </summary>
    public static ToolCallFormat Mistral { get; } = new("mistral", "[TOOL_CALLS]", null, "[TOOL_CALLS][", "]", "arguments", "[{",
        [CallOpener.Json("[TOOL_CALLS]")], "[ARGS]");

    /// <summary>
    /// Phi-4-mini: <c>&lt;|tool_call|&gt;[{"name": ..., "arguments": {...}}, ...]&lt;|/tool_call|&gt;</c> (a JSON array of
    /// calls, or one object; the closing tag may be missing). vLLM's <c>functools[...]</c> spelling is read too.
    /// </summary>
    public static ToolCallFormat Phi4Mini { get; } = new("phi4-mini", "<|tool_call|>", "<|/tool_call|>", "<|tool_call|>[", "]<|/tool_call|>", "arguments", "",
        [CallOpener.Json("<|tool_call|>", "<|/tool_call|>"), CallOpener.Json("functools[", consume: "functools".Length)]);

    /// <summary>
    /// Gemma (no native tool syntax): a fenced <c>```tool_code</c> block holding a JSON call
    /// (<c>{"name": ..., "arguments": {...}}</c>, or an array of them) or Python-style calls
    /// (<c>get_weather(city="Paris")</c>, one per line), as Google's function-calling guide shows; a fenced
    /// <c>```json</c> call and a reply that is a bare JSON call (as <see cref="Llama3Json"/>) are read too. A forced call
    /// is written <c>```tool_code\n{"name": ..., "arguments": {...}}\n```</c>.
    /// </summary>
    public static ToolCallFormat Gemma { get; } = new("gemma", "```tool_code", "```", "```tool_code\n", "\n```", "arguments", "{[",
        [CallOpener.Block("```tool_code", "```", CallPayload.Code), CallOpener.Block("```json", "```", CallPayload.Json), CallOpener.JsonObject()]);

    /// <summary>
    /// DeepSeek-R1: <c>&lt;｜tool▁calls▁begin｜&gt;&lt;｜tool▁call▁begin｜&gt;function&lt;｜tool▁sep｜&gt;NAME\n```json\n{...}\n```&lt;｜tool▁call▁end｜&gt;...&lt;｜tool▁calls▁end｜&gt;</c>
    /// (the name outside the JSON, see <see cref="CallNameSeparator"/>); the misspellings of the section marker that
    /// llama.cpp accepts are read too. Reads <c>&lt;think&gt;...&lt;/think&gt;</c> reasoning.
    /// </summary>
    public static ToolCallFormat DeepSeekR1 { get; } = new("deepseek-r1", DeepSeekCallsBegin, DeepSeekCallsEnd,
        DeepSeekCallsBegin + DeepSeekCallBegin + "function" + DeepSeekSep, "\n```" + DeepSeekCallEnd + DeepSeekCallsEnd, "arguments", "",
        [
            CallOpener.Block(DeepSeekCallsBegin, DeepSeekCallsEnd, CallPayload.DeepSeek),
            CallOpener.Block("<｜tool_calls_begin｜>", DeepSeekCallsEnd, CallPayload.DeepSeek),
            CallOpener.Block("<｜tool calls begin｜>", DeepSeekCallsEnd, CallPayload.DeepSeek),
            CallOpener.Block("<｜tool\\_calls\\_begin｜>", DeepSeekCallsEnd, CallPayload.DeepSeek),
            CallOpener.Block("<｜tool▁calls｜>", DeepSeekCallsEnd, CallPayload.DeepSeek),
            CallOpener.Block(DeepSeekCallBegin, DeepSeekCallEnd, CallPayload.DeepSeek, keepOpener: true),
        ],
        callNameSeparator: "\n```json\n", reasoningTags: Chat.ReasoningTags.Think);

    /// <summary>
    /// The generic format for models without native tools: <c>&lt;tool_call&gt;{"name": ..., "arguments": {...}}&lt;/tool_call&gt;</c>.
    /// </summary>
    public static ToolCallFormat Generic { get; } = new("generic", "<tool_call>", "</tool_call>", "<tool_call>", "</tool_call>", "arguments", "",
        [CallOpener.Block("<tool_call>", "</tool_call>", CallPayload.Json)]);

    /// <summary>The built-in formats: <see cref="Hermes"/>, <see cref="Llama3Json"/>, <see cref="Mistral"/>,
    /// <see cref="Phi4Mini"/>, <see cref="Gemma"/>, <see cref="DeepSeekR1"/> and <see cref="Generic"/>.</summary>
    public static IReadOnlyList<ToolCallFormat> BuiltIn { get; } = [Hermes, Llama3Json, Mistral, Phi4Mini, Gemma, DeepSeekR1, Generic];

    /// <summary>The built-in format of this <see cref="Name"/> (case-insensitive), or null.</summary>
    public static ToolCallFormat? Find(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var format in BuiltIn)
        {
            if (string.Equals(format.Name, name.Trim(), StringComparison.OrdinalIgnoreCase))
                return format;
        }
        return null;
    }

    /// <summary>
    /// The tool-call format for a model whose chat template (Jinja text from <c>tokenizer.chat_template</c>) is this,
    /// from the markers the template writes, as llama.cpp picks a chat handler: <c>&lt;｜tool▁calls▁begin｜&gt;</c> →
    /// <see cref="DeepSeekR1"/>; <c>&lt;|tool_call|&gt;</c> or <c>&lt;|tool|&gt;</c> → <see cref="Phi4Mini"/>;
    /// <c>[TOOL_CALLS]</c> → <see cref="Mistral"/>; <c>&lt;tool_call&gt;</c> → <see cref="Hermes"/>;
    /// <c>&lt;|python_tag|&gt;</c> or <c>&lt;|start_header_id|&gt;</c> → <see cref="Llama3Json"/>; <c>&lt;start_of_turn&gt;</c>
    /// → <see cref="Gemma"/>; anything else (or no template) → <see cref="Generic"/>. Reasoning is split
    /// (<see cref="ReasoningTags"/> <c>&lt;think&gt;</c>) exactly when the template mentions <c>&lt;think&gt;</c> or
    /// <c>&lt;/think&gt;</c> (Qwen3, QwQ, DeepSeek-R1 and its distills; not Qwen2.5).
    /// </summary>
    public static ToolCallFormat FromChatTemplate(string? chatTemplate)
    {
        if (string.IsNullOrWhiteSpace(chatTemplate))
            return Generic;
        var format = chatTemplate.Contains("tool▁calls▁begin", StringComparison.Ordinal) ? DeepSeekR1
            : chatTemplate.Contains("<|tool_call|>", StringComparison.Ordinal) || chatTemplate.Contains("<|tool|>", StringComparison.Ordinal) ? Phi4Mini
            : chatTemplate.Contains("[TOOL_CALLS]", StringComparison.Ordinal) ? Mistral
            : chatTemplate.Contains("<tool_call>", StringComparison.Ordinal) ? Hermes
            : chatTemplate.Contains("<|python_tag|>", StringComparison.Ordinal) || chatTemplate.Contains("<|start_header_id|>", StringComparison.Ordinal) ? Llama3Json
            : chatTemplate.Contains("<start_of_turn>", StringComparison.Ordinal) ? Gemma
            : Generic;
        var thinks = chatTemplate.Contains("<think>", StringComparison.Ordinal) || chatTemplate.Contains("</think>", StringComparison.Ordinal);
        return format.WithReasoning(thinks ? format.ReasoningTags ?? Chat.ReasoningTags.Think : null);
    }

    /// <summary>The format's name: <c>hermes</c>, <c>llama3-json</c>, <c>mistral</c>, <c>phi4-mini</c>, <c>gemma</c>,
    /// <c>deepseek-r1</c> or <c>generic</c>.</summary>
    public string Name { get; }

    /// <summary>The text that starts a call in the output: the trigger for a lazy grammar.</summary>
    public string CallStart { get; }

    /// <summary>The text that ends a call block, or null where the JSON value itself ends the call.</summary>
    public string? CallEnd { get; }

    /// <summary>The exact text before a call's JSON object when one call is written.</summary>
    public string CallPrefix { get; }

    /// <summary>The exact text after a call's JSON object when one call is written.</summary>
    public string CallSuffix { get; }

    /// <summary>
    /// Null where a call is one JSON object with the name inside; otherwise the text between the tool name and its
    /// arguments object, for families that write the name outside the JSON (DeepSeek-R1: <c>\n```json\n</c>).
    /// </summary>
    public string? CallNameSeparator { get; }

    /// <summary>The property holding the arguments object (<c>arguments</c>, or <c>parameters</c> for Llama 3). The
    /// parser accepts either.</summary>
    public string ArgumentsProperty { get; }

    /// <summary>
    /// The tags around the model's reasoning (<c>&lt;think&gt;</c> ... <c>&lt;/think&gt;</c>) that the chat client splits
    /// off as <see cref="Microsoft.Extensions.AI.TextReasoningContent"/> before tool calls are parsed; null where the
    /// family does not reason in tags (the text is then left as it is).
    /// </summary>
    public ReasoningTags? ReasoningTags { get; }

    // Characters that open a call when a reply starts with them (no marker), e.g. "{" for Llama 3.
    internal string BareJsonOpeners { get; }

    // Separates a tool name from its JSON arguments in Mistral's newer NAME[ARGS]{...} calls.
    internal string? NamedArgumentsMarker { get; }

    // What opens a call wherever it appears, and how the call goes on from there.
    internal CallOpener[] Openers { get; }

    // Characters allowed (and dropped) between two calls besides whitespace, e.g. ";" for Llama 3.
    internal string CallSeparators { get; }

    /// <summary>This format with <paramref name="tags"/> as its <see cref="ReasoningTags"/> (null: no reasoning split).</summary>
    public ToolCallFormat WithReasoning(ReasoningTags? tags) => tags == ReasoningTags ? this
        : new(Name, CallStart, CallEnd, CallPrefix, CallSuffix, ArgumentsProperty, BareJsonOpeners, Openers, NamedArgumentsMarker, CallNameSeparator, CallSeparators, tags);

    /// <inheritdoc />
    public override string ToString() => Name;

    /// <summary>Writes one call exactly as this format expects it.</summary>
    /// <param name="name">The tool name.</param>
    /// <param name="argumentsJson">The arguments as a JSON object.</param>
    public string FormatCall(string name, string argumentsJson)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(argumentsJson);
        return CallNameSeparator is { } separator
            ? $"{CallPrefix}{name}{separator}{argumentsJson}{CallSuffix}"
            : $"{CallPrefix}{{\"name\": {JsonText.Quote(name)}, \"{ArgumentsProperty}\": {argumentsJson}}}{CallSuffix}";
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

/// <summary>What is inside a call block.</summary>
internal enum CallPayload
{
    /// <summary>A JSON call object or an array of them.</summary>
    Json,

    /// <summary>A JSON call, or Python-style calls <c>name(key=value, ...)</c> one per line (Gemma's tool_code).</summary>
    Code,

    /// <summary>DeepSeek's <c>function&lt;｜tool▁sep｜&gt;NAME\n```json\n{...}\n```</c> calls.</summary>
    DeepSeek,
}

/// <summary>
/// One way a call starts. <see cref="Text"/> null is the JSON-object opener: <c>{</c>, whitespace and <c>"name"</c> (or
/// <c>"type"</c> / <c>"function"</c>), which opens a call in the middle of text (such a call needs arguments).
/// </summary>
internal sealed class CallOpener
{
    private static readonly string[] _objectKeys = ["\"name\"", "\"type\"", "\"function\""];

    private CallOpener(string? text, int consume, string? end, bool block, CallPayload payload, bool keepOpener)
    {
        Text = text;
        Consume = consume;
        End = end;
        IsBlock = block;
        Payload = payload;
        KeepOpener = keepOpener;
    }

    public string? Text { get; }

    // Characters of Text consumed before the call's payload (less than Text.Length where the rest belongs to the JSON).
    public int Consume { get; }

    // For a block: the text that ends it. For a JSON call: an optional closing tag read after the JSON value.
    public string? End { get; }

    // A block reads everything up to End as its payload; otherwise one JSON value is scanned.
    public bool IsBlock { get; }

    public CallPayload Payload { get; }

    // Whether the opener text is part of the payload (DeepSeek's bare <｜tool▁call▁begin｜>).
    public bool KeepOpener { get; }

    public char First => Text is null ? '{' : Text[0];

    public static CallOpener Block(string text, string end, CallPayload payload, bool keepOpener = false) => new(text, text.Length, end, true, payload, keepOpener);

    public static CallOpener Json(string text, string? end = null, int? consume = null) => new(text, consume ?? text.Length, end, false, CallPayload.Json, false);

    public static CallOpener JsonObject() => new(null, 0, null, false, CallPayload.Json, false);

    /// <summary>1: <paramref name="text"/> starts with this opener; 0: it may still become one (it ends first); -1: it is not one.</summary>
    public int Match(ReadOnlySpan<char> text)
    {
        if (Text is not null)
        {
            if (text.StartsWith(Text, StringComparison.Ordinal))
                return 1;
            return Text.AsSpan().StartsWith(text, StringComparison.Ordinal) ? 0 : -1;
        }
        if (text.IsEmpty || text[0] != '{')
            return -1;
        var i = 1;
        while (i < text.Length && char.IsWhiteSpace(text[i]))
            i++;
        if (i - 1 > 16)
            return -1;
        var rest = text[i..];
        var partial = false;
        foreach (var key in _objectKeys)
        {
            if (rest.StartsWith(key, StringComparison.Ordinal))
                return 1;
            partial |= key.AsSpan().StartsWith(rest, StringComparison.Ordinal);
        }
        return partial ? 0 : -1;
    }
}
