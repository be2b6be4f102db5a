using System.Text.Json;

namespace AgentHost.Llama.Grammar;

/// <summary>A function a tool-call grammar may call: its name and its parameters' JSON schema.</summary>
/// <param name="Name">The function name, as the model writes it.</param>
/// <param name="Parameters">JSON schema of the arguments object.</param>
public sealed record ToolGrammarFunction(string Name, JsonElement Parameters);

/// <summary>Ready-made grammars from JSON schemas (build others with <see cref="GbnfBuilder"/>).</summary>
public static class JsonSchemaGrammar
{
    /// <summary>
    /// A grammar for one JSON value valid against <paramref name="schema"/> (e.g. response_format
    /// json_schema). Unsupported keywords are an <see cref="AgentHostException"/>; see <see cref="GbnfBuilder"/>.
    /// </summary>
    public static GrammarConstraint FromSchema(JsonElement schema, JsonGrammarOptions? options = null, CancellationToken cancellationToken = default)
        => FromSchema(schema, options, out _, cancellationToken);

    /// <summary>As <see cref="FromSchema(JsonElement, JsonGrammarOptions?, CancellationToken)"/>, reporting keywords left out under IgnoreUnsupported.</summary>
    public static GrammarConstraint FromSchema(JsonElement schema, JsonGrammarOptions? options, out IReadOnlyList<string> ignoredKeywords, CancellationToken cancellationToken = default)
    {
        var builder = new GbnfBuilder(options);
        var value = builder.AddJsonSchema(schema, cancellationToken: cancellationToken);
        ignoredKeywords = builder.IgnoredKeywords;
        return Checked(builder.ToConstraint(value), cancellationToken);
    }

    /// <summary>
    /// A grammar that forces a call of one of <paramref name="functions"/>, written as
    /// <paramref name="prefix"/> <c>{"name": ..., "arguments": {...}}</c> <paramref name="suffix"/>
    /// (e.g. <c>&lt;tool_call&gt;</c> and <c>&lt;/tool_call&gt;</c>), up to <paramref name="maxCalls"/>
    /// calls in a row. With <paramref name="lazy"/> the grammar waits for <paramref name="prefix"/> as its
    /// trigger word and constrains what follows it, so the model may answer in text instead (tool choice auto).
    /// <paramref name="argumentsKey"/> names the arguments member (e.g. <c>parameters</c> in Llama 3's format).
    /// <paramref name="trigger"/> (lazy only) is the trigger word when it is shorter than the prefix: the rest of the prefix
    /// is then forced after it (Mistral's <c>[TOOL_CALLS]</c> then <c>[</c>). With <paramref name="nameSeparator"/> a call is
    /// written <c>NAME</c> + separator + the arguments object instead of one JSON object (DeepSeek-R1).
    /// </summary>
    public static GrammarConstraint ToolCalls(IReadOnlyList<ToolGrammarFunction> functions, string prefix, string suffix,
        JsonGrammarOptions? options = null, bool lazy = false, int maxCalls = 1, string argumentsKey = "arguments", CancellationToken cancellationToken = default,
        string? trigger = null, string? nameSeparator = null)
    {
        ArgumentNullException.ThrowIfNull(functions);
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentNullException.ThrowIfNull(suffix);
        if (functions.Count == 0)
            throw new AgentHostException(ErrorKind.InvalidArgument, "A tool-call grammar needs at least one function.");
        if (maxCalls < 1)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"maxCalls must be at least 1, not {maxCalls}.");
        if (lazy && prefix.Length == 0)
            throw new AgentHostException(ErrorKind.InvalidArgument, "A lazy tool-call grammar needs a prefix to trigger on.");
        trigger ??= prefix;
        if (lazy && (trigger.Length == 0 || !prefix.StartsWith(trigger, StringComparison.Ordinal)))
            throw new AgentHostException(ErrorKind.InvalidArgument, "A lazy tool-call grammar's trigger must be the start of its prefix.");

        var builder = new GbnfBuilder(options);
        var calls = new List<string>();
        foreach (var function in functions)
            calls.Add(nameSeparator is null
                ? builder.AddToolCall(function.Name, function.Parameters, argumentsKey: argumentsKey, cancellationToken: cancellationToken)
                : builder.AddRule(function.Name + "-call", $"{GbnfBuilder.Literal(function.Name + nameSeparator)} {builder.AddJsonSchema(function.Parameters, function.Name + "-arguments", cancellationToken)}"));
        var ws = builder.Whitespace;
        var call = builder.AddRule("call", string.Join(" | ", calls));
        var close = suffix.Length == 0 ? "" : " " + GbnfBuilder.Literal(suffix);
        var open = prefix.Length == 0 ? "" : GbnfBuilder.Literal(prefix) + " ";
        var block = builder.AddRule("tool-call", $"{open}{ws} {call} {ws}{close}");
        var afterTrigger = prefix[trigger.Length..]; // the rest of the opener, exactly (Hermes' newline, Mistral's "[")
        var first = !lazy ? block : afterTrigger.Length == 0 ? $"{ws} {call} {ws}{close}" : $"{ws} {GbnfBuilder.Literal(afterTrigger)} {ws} {call} {ws}{close}";
        if (nameSeparator is not null && lazy)
        {
            var rest = prefix[trigger.Length..];
            first = rest.Length == 0 ? $"{call}{close}" : $"{GbnfBuilder.Literal(rest)} {call}{close}"; // the name's markup is exact
        }
        var more = GbnfBuilder.Repeat($"({ws} {block})", 0, maxCalls - 1);
        return Checked(builder.ToConstraint(more.Length == 0 ? first : $"{first} {more}", lazy ? [trigger] : null), cancellationToken);
    }

    // Checked here too, so that a grammar beyond the limits is refused when the request is read, not when decoding starts.
    private static GrammarConstraint Checked(GrammarConstraint constraint, CancellationToken cancellationToken)
    {
        constraint.Validate(cancellationToken);
        return constraint;
    }
}
