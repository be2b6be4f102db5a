using System.Text.Json;
using AgentHost.Llama;
using AgentHost.Llama.Grammar;
using AgentHost.Extensions.AI.Chat;
using Microsoft.Extensions.AI;

namespace AgentHost.Extensions.AI;

/// <summary>
/// The grammar a chat request decodes under: a forced tool call in Required mode (from the functions'
/// JSON schemas, in the chat format's call syntax), a lazy one in Auto mode that switches on at the
/// format's call marker, or the JSON of <c>response_format</c>. None when nothing constrains the reply.
/// </summary>
public static class ToolGrammar
{
    private static readonly JsonElement _anyObject = JsonDocument.Parse("""{"type": "object"}""").RootElement;

    // Compact JSON: small models otherwise spend their tokens on the whitespace a looser grammar allows.
    private static readonly JsonGrammarOptions _compact = new() { MaxWhitespace = 0 };

    /// <summary>
    /// The constraint for <paramref name="options"/> given the tools on offer (null: free text). Schemas no value
    /// satisfies, or beyond <see cref="GrammarLimits"/>, are an <see cref="AgentHostException"/> (HTTP 400).
    /// </summary>
    public static GrammarConstraint? For(ToolCallFormat format, ChatOptions? options, IReadOnlyList<AIFunctionDeclaration>? tools, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(format);
        if (tools is null)
        {
            return options?.ResponseFormat switch
            {
                ChatResponseFormatJson { Schema: { } schema } => JsonSchemaGrammar.FromSchema(schema, _compact, cancellationToken),
                ChatResponseFormatJson => JsonSchemaGrammar.FromSchema(_anyObject, _compact, cancellationToken),
                _ => null,
            };
        }
        if (options?.ResponseFormat is ChatResponseFormatJson)
            throw new AgentHostException(ErrorKind.InvalidArgument, "A JSON response format cannot be combined with tools; send tool mode none or drop the response format.");

        var required = options?.ToolMode as RequiredChatToolMode;
        var functions = tools
            .Where(t => required?.RequiredFunctionName is not { } name || t.Name == name)
            .Select(t => new ToolGrammarFunction(t.Name, t.JsonSchema))
            .ToList();
        if (functions.Count == 0)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"The required function '{required!.RequiredFunctionName}' is not among the tools.");

        // Several calls in a row only where the format writes each call as its own block.
        var maxCalls = options?.AllowMultipleToolCalls == true && format.CallPrefix.Length > 0 && format.CallEnd is not null ? 4 : 1;
        if (required is not null)
            return JsonSchemaGrammar.ToolCalls(functions, format.CallPrefix, format.CallSuffix, _compact, maxCalls: maxCalls, argumentsKey: format.ArgumentsProperty,
                cancellationToken: cancellationToken, nameSeparator: format.CallNameSeparator);

        // Auto: free text until the call marker (the family's own opener; the rest of the call's prefix is forced after
        // it); formats whose calls start with bare JSON have no marker to wait for.
        if (format.CallPrefix.Length == 0 || !format.CallPrefix.StartsWith(format.CallStart, StringComparison.Ordinal))
            return null;
        return JsonSchemaGrammar.ToolCalls(functions, format.CallPrefix, format.CallSuffix, _compact, lazy: true, maxCalls: maxCalls, argumentsKey: format.ArgumentsProperty,
            cancellationToken: cancellationToken, trigger: format.CallStart, nameSeparator: format.CallNameSeparator);
    }
}
