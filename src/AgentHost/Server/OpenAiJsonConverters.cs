using System.Text.Json;
using System.Text.Json.Serialization;

namespace AgentHost.Server;

/// <summary>
/// A value of the wrong kind or shape in a request; the serializer adds the field's path, and the message is what the
/// field must be ("must be a number"), to be read after the field's name.
/// </summary>
internal sealed class JsonFieldException(string mustBe) : JsonException(mustBe);

/// <summary>Readers shared by the strict converters: one kind check and one Unicode check.</summary>
internal static class OpenAiJsonConverters
{
    public const string NotUnicode = "is not valid Unicode text (invalid UTF-8 or an unpaired surrogate)";

    /// <summary>The string at the reader; a string that is not valid Unicode is a <see cref="JsonFieldException"/>.</summary>
    public static string ReadText(ref Utf8JsonReader reader, string mustBe)
    {
        if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName))
            throw new JsonFieldException(mustBe);
        try
        {
            return reader.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw new JsonFieldException(NotUnicode);
        }
    }

    /// <summary>The string of an element (read the same way).</summary>
    public static string? TextOf(JsonElement element)
    {
        try
        {
            return element.ValueKind == JsonValueKind.String ? element.GetString() : null;
        }
        catch (InvalidOperationException)
        {
            throw new JsonFieldException(NotUnicode);
        }
    }
}

internal sealed class StrictStringConverter : JsonConverter<string>
{
    public override string Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => OpenAiJsonConverters.ReadText(ref reader, "must be a string");

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);

    public override string ReadAsPropertyName(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => OpenAiJsonConverters.ReadText(ref reader, "must be a string");

    public override void WriteAsPropertyName(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WritePropertyName(value);
}

internal sealed class StrictInt32Converter : JsonConverter<int>
{
    public override int Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        => reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var value) ? value : throw new JsonFieldException("must be a whole number");

    public override void Write(Utf8JsonWriter writer, int value, JsonSerializerOptions options) => writer.WriteNumberValue(value);
}

internal sealed class StrictInt64Converter : JsonConverter<long>
{
    public override long Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        => reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var value) ? value : throw new JsonFieldException("must be an integer");

    public override void Write(Utf8JsonWriter writer, long value, JsonSerializerOptions options) => writer.WriteNumberValue(value);
}

internal sealed class StrictDoubleConverter : JsonConverter<double>
{
    public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        => reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out var value) ? value : throw new JsonFieldException("must be a number");

    public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options) => writer.WriteNumberValue(value);
}

internal sealed class StrictBooleanConverter : JsonConverter<bool>
{
    public override bool Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.True => true,
        JsonTokenType.False => false,
        _ => throw new JsonFieldException("must be true or false"),
    };

    public override void Write(Utf8JsonWriter writer, bool value, JsonSerializerOptions options) => writer.WriteBooleanValue(value);
}

/// <summary>A string or an array of strings (<c>stop</c>, <c>prompt</c>, <c>input</c>), read as a list.</summary>
internal sealed class TextListConverter : JsonConverter<List<string>>
{
    private const string MustBe = "must be a string or an array of strings";

    public override List<string> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
            return [OpenAiJsonConverters.ReadText(ref reader, MustBe)];
        var list = new List<string>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            list.Add(OpenAiJsonConverters.ReadText(ref reader, MustBe));
        return list;
    }

    public override void Write(Utf8JsonWriter writer, List<string> value, JsonSerializerOptions options) => throw new NotSupportedException();
}

/// <summary>Message content: a string, or an array of text parts (<c>{"type": "text", "text": ...}</c>) joined into one.</summary>
internal sealed class TextPartsConverter : JsonConverter<string>
{
    private const string MustBe = "must be a string or an array of text parts ({\"type\": \"text\", \"text\": ...}); this model reads text only";

    public override string Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
            return OpenAiJsonConverters.ReadText(ref reader, MustBe);
        using var parts = JsonDocument.ParseValue(ref reader);
        var text = new System.Text.StringBuilder();
        foreach (var part in parts.RootElement.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || !type.ValueEquals("text")
                || !part.TryGetProperty("text", out var partText) || OpenAiJsonConverters.TextOf(partText) is not { } value)
            {
                throw new JsonFieldException(MustBe);
            }
            text.Append(value);
        }
        return text.ToString();
    }

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => throw new NotSupportedException();
}

/// <summary><c>tool_choice</c>: <c>"none"</c>, <c>"auto"</c>, <c>"required"</c> or <c>{"type": "function", "function": {"name": ...}}</c>.</summary>
internal sealed class ToolChoiceConverter : JsonConverter<ToolChoice>
{
    private const string MustBe = "must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}";

    public override ToolChoice Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
            return new ToolChoice(OpenAiJsonConverters.ReadText(ref reader, MustBe), null);
        using var choice = JsonDocument.ParseValue(ref reader);
        return choice.RootElement.TryGetProperty("function", out var function) && function.ValueKind == JsonValueKind.Object
            && function.TryGetProperty("name", out var name) && OpenAiJsonConverters.TextOf(name) is { } text
            ? new ToolChoice(null, text) : throw new JsonFieldException(MustBe);
    }

    public override void Write(Utf8JsonWriter writer, ToolChoice value, JsonSerializerOptions options) => throw new NotSupportedException();
}
