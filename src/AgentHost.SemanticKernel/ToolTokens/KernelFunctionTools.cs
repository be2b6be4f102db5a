using System.Globalization;
using System.Text.Json;
using AgentHost.Llama.ToolTokens;
using Microsoft.SemanticKernel;

namespace AgentHost.SemanticKernel.ToolTokens;

/// <summary>Turns Semantic Kernel functions into the tools a tool-token head calls.</summary>
public static class KernelFunctionTools
{
    /// <summary>
    /// The tool for <paramref name="function"/>: its name, the JSON schema of its parameters (the function's own
    /// <c>JsonSchema</c>, as function calling uses it) and an invoker that runs it on <paramref name="kernel"/> with
    /// the JSON arguments and returns its result as invariant-culture text.
    /// </summary>
    public static ToolDefinition AsToolDefinition(this KernelFunction function, Kernel kernel)
    {
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(kernel);
        return new ToolDefinition(function.Name, function.JsonSchema.GetRawText(), async (_, json, cancellationToken) =>
        {
            var result = await function.InvokeAsync(kernel, ToArguments(json), cancellationToken).ConfigureAwait(false);
            return Convert.ToString(result.GetValue<object>(), CultureInfo.InvariantCulture) ?? "";
        }, function.Description);
    }

    /// <summary>The tools for <paramref name="functions"/>, in order.</summary>
    public static IReadOnlyList<ToolDefinition> AsToolDefinitions(this IEnumerable<KernelFunction> functions, Kernel kernel)
    {
        ArgumentNullException.ThrowIfNull(functions);
        return [.. functions.Select(f => f.AsToolDefinition(kernel))];
    }

    // Values go in as text: Semantic Kernel converts text to each parameter's type.
    private static KernelArguments ToArguments(string json)
    {
        var arguments = new KernelArguments();
        using var document = JsonDocument.Parse(json);
        foreach (var property in document.RootElement.EnumerateObject())
        {
            arguments[property.Name] = property.Value.ValueKind switch
            {
                JsonValueKind.String => property.Value.GetString(),
                JsonValueKind.Null => null,
                _ => property.Value.GetRawText(),
            };
        }
        return arguments;
    }
}
