using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace AgentHost.Extensions.AI.Chat;

/// <summary>
/// JSON written the way chat templates write it (Python's <c>json.dumps</c>: <c>", "</c> and <c>": "</c>
/// separators, non-ASCII kept), which is the text the model families saw in training.
/// </summary>
internal static class JsonText
{
    private static readonly JsonSerializerOptions _stringOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Quote(string value) => JsonSerializer.Serialize(value, _stringOptions);

    public static string Write(JsonElement element)
    {
        var builder = new StringBuilder();
        Write(element, builder);
        return builder.ToString();
    }

    /// <summary>Serializes any value (a JSON element, string, number, object) into template-style JSON.</summary>
    public static string Write(object? value) => value switch
    {
        null => "null",
        JsonElement element => Write(element),
        _ => Write(JsonSerializer.SerializeToElement(value, Microsoft.Extensions.AI.AIJsonUtilities.DefaultOptions)),
    };

    private static void Write(JsonElement element, StringBuilder builder)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                builder.Append('{');
                var first = true;
                foreach (var property in element.EnumerateObject())
                {
                    if (!first)
                        builder.Append(", ");
                    first = false;
                    builder.Append(Quote(property.Name)).Append(": ");
                    Write(property.Value, builder);
                }
                builder.Append('}');
                break;
            case JsonValueKind.Array:
                builder.Append('[');
                var firstItem = true;
                foreach (var item in element.EnumerateArray())
                {
                    if (!firstItem)
                        builder.Append(", ");
                    firstItem = false;
                    Write(item, builder);
                }
                builder.Append(']');
                break;
            case JsonValueKind.String:
                builder.Append(Quote(element.GetString()!));
                break;
            default:
                builder.Append(element.GetRawText());
                break;
        }
    }
}
