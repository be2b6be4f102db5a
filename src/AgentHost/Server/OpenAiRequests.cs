using System.Globalization;
using System.Text.Json;
using AgentHost.Llama.Decoding;
using AgentHost.Extensions.AI;
using Microsoft.Extensions.AI;

namespace AgentHost.Server;

/// <summary>A parsed <c>/v1/chat/completions</c> body.</summary>
internal sealed record ChatCompletionCall(string Model, List<ChatMessage> Messages, ChatOptions Options, bool Stream, bool IncludeUsage);

/// <summary>A parsed <c>/v1/completions</c> body.</summary>
internal sealed record CompletionCall(string Model, string Prompt, ChatOptions Options, bool Stream, bool IncludeUsage);

/// <summary>A parsed <c>/v1/embeddings</c> body.</summary>
internal sealed record EmbeddingCall(string Model, IReadOnlyList<string> Inputs, bool Base64);

/// <summary>
/// Reads OpenAI request bodies into MEAI messages and options, checking every field it uses: a wrong type or
/// value (wrong element type, empty name, unknown enum value, a string that is not valid Unicode) is one 400
/// naming the field. Fields it does not know are ignored (clients send many), except that AgentHost's decoding
/// options (<c>decoding_strategy</c>, <c>min_p</c>, <c>repeat_penalty</c>, <c>top_k</c> and every strategy knob)
/// travel on to the client as <see cref="ChatOptions.AdditionalProperties"/>, and that a field naming a file
/// (<see cref="AgentHost.Llama.Decoding.DecodingStrategies.FileOptionKeys"/>) is refused: requests never name server-side paths.
/// </summary>
internal static class OpenAiRequests
{
    // OpenAI's rule for function names; it also keeps names safe inside prompts and grammars.
    private static readonly System.Text.RegularExpressions.Regex _functionName = new("^[A-Za-z0-9_-]{1,64}$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    private static readonly HashSet<string> _decodingKeys =
    [
        ChatRequestMapper.StrategyKey, ChatRequestMapper.MinPKey, ChatRequestMapper.RepeatPenaltyKey,
        .. DecodingStrategies.All.SelectMany(d => d.Options).Select(o => o.Key),
    ];

    public static ChatCompletionCall ParseChat(JsonElement body) => Checked(() => ReadChat(body));

    public static CompletionCall ParseCompletion(JsonElement body) => Checked(() => ReadCompletion(body));

    public static EmbeddingCall ParseEmbeddings(JsonElement body, int maxInputs) => Checked(() => ReadEmbeddings(body, maxInputs));

    /// <summary>A backstop for the class of fault: any JSON element read as the wrong kind is the client's 400, never a 500.</summary>
    private static T Checked<T>(Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (InvalidOperationException e)
        {
            throw ApiError.BadRequest($"The request has a field of the wrong type: {e.Message}");
        }
    }

    private static ChatCompletionCall ReadChat(JsonElement body)
    {
        RequireObject(body);
        var messages = new List<ChatMessage>();
        var list = Required(body, "messages", JsonValueKind.Array);
        foreach (var item in list.EnumerateArray())
            messages.Add(ParseMessage(item, messages.Count));
        if (messages.Count == 0)
            throw ApiError.BadRequest("'messages' must hold at least one message.", "messages");

        var options = ParseOptions(body);
        if (body.TryGetProperty("max_completion_tokens", out _))
            options.MaxOutputTokens = WholeNumber(body, "max_completion_tokens", 1);
        ParseTools(body, options);
        ParseResponseFormat(body, options);
        var (stream, includeUsage) = ParseStream(body);
        return new ChatCompletionCall(ModelName(body), messages, options, stream, includeUsage);
    }

    private static CompletionCall ReadCompletion(JsonElement body)
    {
        RequireObject(body);
        var prompt = Required(body, "prompt", JsonValueKind.Undefined);
        var text = prompt.ValueKind switch
        {
            JsonValueKind.String => Text(prompt, "prompt"),
            JsonValueKind.Array when prompt.GetArrayLength() == 1 && prompt[0].ValueKind == JsonValueKind.String => Text(prompt[0], "prompt"),
            _ => throw ApiError.BadRequest("'prompt' must be a string (or an array of one string).", "prompt"),
        };
        var (stream, includeUsage) = ParseStream(body);
        return new CompletionCall(ModelName(body), text, ParseOptions(body), stream, includeUsage);
    }

    private static EmbeddingCall ReadEmbeddings(JsonElement body, int maxInputs)
    {
        RequireObject(body);
        var input = Required(body, "input", JsonValueKind.Undefined);
        if (input.ValueKind == JsonValueKind.Array && input.GetArrayLength() > maxInputs)
            throw new ApiError(StatusCodes.Status413PayloadTooLarge, $"'input' holds {input.GetArrayLength()} inputs; the limit is {maxInputs} (Server:MaxEmbeddingInputs).", code: "too_many_inputs", param: "input");
        List<string> inputs = input.ValueKind switch
        {
            JsonValueKind.String => [Text(input, "input")],
            JsonValueKind.Array when input.GetArrayLength() > 0 && input.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String)
                => input.EnumerateArray().Select(e => Text(e, "input")).ToList(),
            _ => throw ApiError.BadRequest("'input' must be a string or a non-empty array of strings (token arrays are not supported).", "input"),
        };
        if (inputs.Any(string.IsNullOrEmpty))
            throw ApiError.BadRequest("'input' must not contain empty strings.", "input");
        var format = OptionalString(body, "encoding_format") ?? "float";
        if (format is not ("float" or "base64"))
            throw ApiError.BadRequest($"'encoding_format' must be float or base64, not '{format}'.", "encoding_format");
        if (Has(body, "dimensions"))
            throw ApiError.BadRequest("'dimensions' is not supported: embeddings have the model's hidden size.", "dimensions");
        return new EmbeddingCall(ModelName(body), inputs, format == "base64");
    }

    private static string ModelName(JsonElement body)
    {
        var model = Text(Required(body, "model", JsonValueKind.String), "model");
        return model.Length > 0 ? model : throw ApiError.BadRequest("'model' must not be empty.", "model");
    }

    private static ChatOptions ParseOptions(JsonElement body)
    {
        var options = new ChatOptions();
        if (body.TryGetProperty("n", out var n) && (n.ValueKind != JsonValueKind.Number || !n.TryGetInt32(out var count) || count != 1))
            throw ApiError.BadRequest("Only 'n': 1 is supported.", "n");
        if (Has(body, "max_tokens"))
            options.MaxOutputTokens = WholeNumber(body, "max_tokens", 1);
        if (Has(body, "temperature"))
            options.Temperature = Number(body, "temperature", 0, 2);
        if (Has(body, "top_p"))
            options.TopP = Number(body, "top_p", 0, 1);
        if (Has(body, "frequency_penalty"))
            options.FrequencyPenalty = Number(body, "frequency_penalty", -2, 2);
        if (Has(body, "presence_penalty"))
            options.PresencePenalty = Number(body, "presence_penalty", -2, 2);
        if (Has(body, "top_k"))
            options.TopK = WholeNumber(body, "top_k", 0);
        if (Has(body, "seed"))
        {
            var seed = body.GetProperty("seed");
            options.Seed = seed.ValueKind == JsonValueKind.Number && seed.TryGetInt64(out var value)
                ? value : throw ApiError.BadRequest("'seed' must be an integer.", "seed");
        }
        if (Has(body, "stop"))
            options.StopSequences = ParseStop(body.GetProperty("stop"));

        foreach (var key in AgentHost.Llama.Decoding.DecodingStrategies.FileOptionKeys)
        {
            if (body.TryGetProperty(key, out _))
                throw ApiError.BadRequest($"'{key}' names a server-side file, which requests may not do; the operator configures server state (Server:StateDirectory).", key);
        }
        foreach (var property in body.EnumerateObject())
        {
            if (!_decodingKeys.Contains(property.Name) || property.Value.ValueKind == JsonValueKind.Null)
                continue;
            (options.AdditionalProperties ??= [])[property.Name] = property.Value.ValueKind switch
            {
                JsonValueKind.String => Text(property.Value, property.Name),
                JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => property.Value.GetRawText(),
                _ => throw ApiError.BadRequest($"'{property.Name}' must be a string or a number.", property.Name),
            };
        }
        return options;
    }

    private static List<string> ParseStop(JsonElement stop) => stop.ValueKind switch
    {
        JsonValueKind.String => [Text(stop, "stop")],
        JsonValueKind.Array when stop.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) && stop.GetArrayLength() <= 4
            => stop.EnumerateArray().Select(e => Text(e, "stop")).ToList(),
        _ => throw ApiError.BadRequest("'stop' must be a string or an array of up to 4 strings.", "stop"),
    } is var stops && stops.Any(string.IsNullOrEmpty) ? throw ApiError.BadRequest("'stop' strings must not be empty.", "stop") : stops;

    private static (bool Stream, bool IncludeUsage) ParseStream(JsonElement body)
    {
        var stream = Has(body, "stream") && Bool(body, "stream");
        var includeUsage = Has(body, "stream_options") && Required(body, "stream_options", JsonValueKind.Object) is var streamOptions
            && Has(streamOptions, "include_usage") && Bool(streamOptions, "include_usage", "stream_options.include_usage");
        return (stream, includeUsage);
    }

    private static ChatMessage ParseMessage(JsonElement item, int index)
    {
        var where = $"messages[{index}]";
        if (item.ValueKind != JsonValueKind.Object)
            throw ApiError.BadRequest($"'{where}' must be an object.", where);
        var role = Text(Required(item, "role", JsonValueKind.String, where), $"{where}.role");
        var text = ParseContent(item, where);
        switch (role)
        {
            case "system" or "developer":
                return new ChatMessage(ChatRole.System, text ?? "");
            case "user":
                return new ChatMessage(ChatRole.User, text ?? throw ApiError.BadRequest($"'{where}.content' is required.", $"{where}.content"));
            case "assistant":
                var contents = new List<AIContent>();
                if (!string.IsNullOrEmpty(text))
                    contents.Add(new TextContent(text));
                if (Has(item, "tool_calls"))
                {
                    var callIndex = 0;
                    foreach (var call in Required(item, "tool_calls", JsonValueKind.Array, where).EnumerateArray())
                        contents.Add(ParseToolCall(call, $"{where}.tool_calls[{callIndex++}]"));
                }
                return new ChatMessage(ChatRole.Assistant, contents);
            case "tool":
                var callId = Text(Required(item, "tool_call_id", JsonValueKind.String, where), $"{where}.tool_call_id");
                return new ChatMessage(ChatRole.Tool, [new FunctionResultContent(callId, text ?? "")]);
            default:
                throw ApiError.BadRequest($"'{where}.role' must be system, developer, user, assistant or tool, not '{role}'.", $"{where}.role");
        }
    }

    private static string? ParseContent(JsonElement item, string where)
    {
        if (!item.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
            return null;
        if (content.ValueKind == JsonValueKind.String)
            return Text(content, $"{where}.content");
        if (content.ValueKind != JsonValueKind.Array)
            throw ApiError.BadRequest($"'{where}.content' must be a string or an array of text parts.", $"{where}.content");
        var parts = new List<string>();
        foreach (var part in content.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || !type.ValueEquals("text")
                || !part.TryGetProperty("text", out var partText) || partText.ValueKind != JsonValueKind.String)
            {
                throw ApiError.BadRequest($"'{where}.content' parts must be text parts ({{\"type\": \"text\", \"text\": ...}}); this model reads text only.", $"{where}.content");
            }
            parts.Add(Text(partText, $"{where}.content"));
        }
        return string.Concat(parts);
    }

    private static FunctionCallContent ParseToolCall(JsonElement call, string where)
    {
        if (call.ValueKind != JsonValueKind.Object)
            throw ApiError.BadRequest($"'{where}' must be a tool call object ({{\"id\", \"type\": \"function\", \"function\": {{\"name\", \"arguments\"}}}}).", where);
        var id = Text(Required(call, "id", JsonValueKind.String, where), $"{where}.id");
        var function = Required(call, "function", JsonValueKind.Object, where);
        var name = FunctionName(function, $"{where}.function");
        var argumentsText = OptionalString(function, "arguments", $"{where}.function") ?? "{}";
        Dictionary<string, object?>? arguments;
        try
        {
            arguments = JsonSerializer.Deserialize<Dictionary<string, object?>>(argumentsText);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw ApiError.BadRequest($"'{where}.function.arguments' is not a JSON object.", $"{where}.function.arguments");
        }
        return new FunctionCallContent(id, name, arguments);
    }

    /// <summary>The <c>name</c> of a function object, checked against OpenAI's rule (letters, digits, _ and -, 1 to 64).</summary>
    private static string FunctionName(JsonElement function, string where)
    {
        var name = Text(Required(function, "name", JsonValueKind.String, where), $"{where}.name");
        return _functionName.IsMatch(name) ? name
            : throw ApiError.BadRequest($"'{where}.name' must be 1 to 64 letters, digits, '_' or '-', not '{name}'.", $"{where}.name");
    }

    private static void ParseTools(JsonElement body, ChatOptions options)
    {
        if (Has(body, "tools"))
        {
            var tools = Required(body, "tools", JsonValueKind.Array);
            options.Tools = [];
            var index = 0;
            foreach (var tool in tools.EnumerateArray())
            {
                var where = $"tools[{index++}]";
                if (tool.ValueKind != JsonValueKind.Object || !tool.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || !type.ValueEquals("function"))
                    throw ApiError.BadRequest($"'{where}' must be a function tool ({{\"type\": \"function\", \"function\": ...}}).", where);
                var function = Required(tool, "function", JsonValueKind.Object, where);
                var name = FunctionName(function, $"{where}.function");
                if (options.Tools.Any(t => t.Name == name))
                    throw ApiError.BadRequest($"'{where}.function.name' repeats the tool name '{name}'.", $"{where}.function.name");
                var description = OptionalString(function, "description", $"{where}.function");
                var parameters = Has(function, "parameters")
                    ? Required(function, "parameters", JsonValueKind.Object, $"{where}.function").Clone() : JsonDocument.Parse("""{"type":"object","properties":{}}""").RootElement;
                options.Tools.Add(AIFunctionFactory.CreateDeclaration(name, description, parameters));
            }
        }

        if (!Has(body, "tool_choice"))
            return;
        var choice = body.GetProperty("tool_choice");
        options.ToolMode = choice.ValueKind switch
        {
            JsonValueKind.String => Text(choice, "tool_choice") switch
            {
                "none" => ChatToolMode.None,
                "auto" => ChatToolMode.Auto,
                "required" => ChatToolMode.RequireAny,
                var other => throw ApiError.BadRequest($"'tool_choice' must be none, auto, required or a named function, not '{other}'.", "tool_choice"),
            },
            JsonValueKind.Object when choice.TryGetProperty("function", out var f) && f.ValueKind == JsonValueKind.Object
                && f.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String => ChatToolMode.RequireSpecific(FunctionName(f, "tool_choice.function")),
            _ => throw ApiError.BadRequest("'tool_choice' must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}.", "tool_choice"),
        };
        if (options.ToolMode is RequiredChatToolMode { RequiredFunctionName: { } required } && options.Tools?.Any(t => t.Name == required) != true)
            throw ApiError.BadRequest($"'tool_choice' names the function '{required}', which is not in 'tools'.", "tool_choice");
        if (options.ToolMode is RequiredChatToolMode && options.Tools is not { Count: > 0 })
            throw ApiError.BadRequest("'tool_choice' requires a tool call but 'tools' is empty.", "tool_choice");
    }

    private static void ParseResponseFormat(JsonElement body, ChatOptions options)
    {
        if (!Has(body, "response_format"))
            return;
        var format = Required(body, "response_format", JsonValueKind.Object);
        var type = Text(Required(format, "type", JsonValueKind.String, "response_format"), "response_format.type");
        options.ResponseFormat = type switch
        {
            "text" => ChatResponseFormat.Text,
            "json_object" => ChatResponseFormat.Json,
            "json_schema" => ParseJsonSchema(format),
            _ => throw ApiError.BadRequest($"'response_format.type' must be text, json_object or json_schema, not '{type}'.", "response_format.type"),
        };
    }

    private static ChatResponseFormatJson ParseJsonSchema(JsonElement format)
    {
        var spec = Required(format, "json_schema", JsonValueKind.Object, "response_format");
        var schema = Required(spec, "schema", JsonValueKind.Object, "response_format.json_schema");
        var name = OptionalString(spec, "name", "response_format.json_schema");
        var description = OptionalString(spec, "description", "response_format.json_schema");
        return ChatResponseFormat.ForJsonSchema(schema.Clone(), name, description);
    }

    private static void RequireObject(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object)
            throw ApiError.BadRequest("The request body must be a JSON object.");
    }

    private static bool Has(JsonElement body, string name) => body.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null;

    /// <summary>A JSON string's text; a string that is not valid Unicode (bad UTF-8, a lone surrogate escape) is a 400 naming <paramref name="path"/>.</summary>
    private static string Text(JsonElement value, string path)
    {
        try
        {
            return value.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw ApiError.BadRequest($"'{path}' is not valid Unicode text (invalid UTF-8 or an unpaired surrogate).", path);
        }
    }

    /// <summary>An optional string field: absent or null is null, any other kind a 400.</summary>
    private static string? OptionalString(JsonElement body, string name, string? parent = null)
    {
        var path = parent is null ? name : $"{parent}.{name}";
        return Has(body, name) ? Text(Required(body, name, JsonValueKind.String, parent), path) : null;
    }

    private static JsonElement Required(JsonElement body, string name, JsonValueKind kind, string? parent = null)
    {
        var path = parent is null ? name : $"{parent}.{name}";
        if (!body.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            throw ApiError.BadRequest($"'{path}' is required.", path);
        if (kind != JsonValueKind.Undefined && value.ValueKind != kind)
            throw ApiError.BadRequest($"'{path}' must be {Describe(kind)}.", path);
        return value;
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        _ => kind.ToString().ToLowerInvariant(),
    };

    private static float Number(JsonElement body, string name, float min, float max)
    {
        var value = body.GetProperty(name);
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var number) || number < min || number > max)
            throw ApiError.BadRequest($"'{name}' must be a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}.", name);
        return (float)number;
    }

    private static int WholeNumber(JsonElement body, string name, int min)
    {
        var value = body.GetProperty(name);
        return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number) && number >= min
            ? number : throw ApiError.BadRequest($"'{name}' must be a whole number of at least {min}.", name);
    }

    private static bool Bool(JsonElement body, string name, string? path = null)
    {
        var value = body.GetProperty(name);
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ApiError.BadRequest($"'{path ?? name}' must be true or false.", path ?? name),
        };
    }
}
