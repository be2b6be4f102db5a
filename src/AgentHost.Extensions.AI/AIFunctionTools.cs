using System.Globalization;
using System.Text.Json;
using AgentHost.Llama.ToolTokens;
using Microsoft.Extensions.AI;

namespace AgentHost.Extensions.AI;

/// <summary>Turns Microsoft.Extensions.AI functions into the tools a tool-token head calls.</summary>
public static class AIFunctionTools
{
    /// <summary>
    /// The tool for a Microsoft.Extensions.AI <paramref name="function"/> (e.g. from <c>ChatOptions.Tools</c>): its
    /// name, <c>JsonSchema</c> and an invoker passing the JSON arguments as <see cref="JsonElement"/> values.
    /// </summary>
    public static ToolDefinition AsToolDefinition(this AIFunction function)
    {
        ArgumentNullException.ThrowIfNull(function);
        return new ToolDefinition(function.Name, function.JsonSchema.GetRawText(), async (_, json, cancellationToken) =>
        {
            var arguments = new AIFunctionArguments();
            using (var document = JsonDocument.Parse(json))
            {
                foreach (var property in document.RootElement.EnumerateObject())
                    arguments[property.Name] = property.Value.Clone();
            }
            var result = await function.InvokeAsync(arguments, cancellationToken).ConfigureAwait(false);
            return result switch
            {
                null => "",
                JsonElement { ValueKind: JsonValueKind.String } text => text.GetString() ?? "",
                JsonElement element => element.GetRawText(),
                _ => Convert.ToString(result, CultureInfo.InvariantCulture) ?? "",
            };
        }, function.Description);
    }
}
