using System.Collections.Concurrent;
using System.Text.Json;
using Json.Schema;
using Microsoft.Extensions.AI;

namespace AgentHost.SemanticKernel.ChatClient;

/// <summary>
/// Checks a tool call's arguments against the function's JSON schema before the function runs. Wrap the
/// tools of an invoking loop with <see cref="WithSchemaCheck"/>: arguments that break the schema then become
/// an error result for the model (the loop turns the exception into one) and the function is never called.
/// Grammar-constrained calls always match; this guards calls parsed without a grammar.
/// </summary>
public static class ToolArgumentValidator
{
    private static readonly ConcurrentDictionary<string, JsonSchema> _schemas = new(StringComparer.Ordinal);

    // Draft 2020-12 ignores keywords it does not define (SK writes a "condition"), as the specification says.
    private static readonly BuildOptions _build = new() { Dialect = Dialect.Draft202012 };

    /// <summary>The problems of <paramref name="arguments"/> against <paramref name="tool"/>'s schema; empty when valid.</summary>
    public static IReadOnlyList<string> Check(AIFunctionDeclaration tool, IEnumerable<KeyValuePair<string, object?>> arguments)
    {
        ArgumentNullException.ThrowIfNull(tool);
        ArgumentNullException.ThrowIfNull(arguments);
        var schema = _schemas.GetOrAdd(tool.JsonSchema.GetRawText(), text => JsonSchema.FromText(text, _build));
        var instance = JsonSerializer.SerializeToElement(arguments.ToDictionary(a => a.Key, a => a.Value));
        var result = schema.Evaluate(instance, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (result.IsValid)
            return [];
        return (result.Details ?? []).Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{(d.InstanceLocation.ToString() is { Length: > 0 } at ? at : "/")}: {e.Value}"))
            .ToList();
    }

    /// <summary>The function, checking its arguments against its schema before every call.</summary>
    public static AIFunction WithSchemaCheck(this AIFunction function) => new SchemaChecked(function);

    private sealed class SchemaChecked(AIFunction inner) : DelegatingAIFunction(inner)
    {
        protected override ValueTask<object?> InvokeCoreAsync(AIFunctionArguments arguments, CancellationToken cancellationToken)
        {
            var problems = Check(this, arguments);
            if (problems.Count > 0)
                throw new ArgumentException($"The arguments of '{Name}' do not match its schema: {string.Join("; ", problems)}.");
            return base.InvokeCoreAsync(arguments, cancellationToken);
        }
    }
}
