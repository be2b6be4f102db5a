using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using AgentHost.Llama;
using AgentHost.Llama.Decoding;
using AgentHost.Extensions.AI;
using Microsoft.Extensions.AI;

namespace AgentHost.Server;

/// <summary>A parsed <c>/v1/chat/completions</c> body.</summary>
internal sealed record ChatCompletionCall(string Model, List<ChatMessage> Messages, ChatOptions Options, bool Stream, bool IncludeUsage);

/// <summary>A parsed <c>/apply-template</c> body: a chat request and whether to open the assistant's turn.</summary>
internal sealed record ApplyTemplateCall(ChatCompletionCall Chat, bool AddGenerationPrompt);

/// <summary>A parsed <c>/v1/completions</c> body.</summary>
internal sealed record CompletionCall(string Model, string Prompt, ChatOptions Options, bool Stream, bool IncludeUsage);

/// <summary>A parsed <c>/v1/embeddings</c> body.</summary>
internal sealed record EmbeddingCall(string Model, IReadOnlyList<string> Inputs, bool Base64);

/// <summary>
/// Reads OpenAI request bodies (typed, through <see cref="OpenAiJsonContext"/>) into MEAI messages and options, checking
/// every field it uses: a wrong type or value (wrong element type, empty name, unknown enum value, a string that is not
/// valid Unicode) is one 400 naming the field. Fields it does not know are ignored (clients send many), except that
/// AgentHost's decoding options (<c>decoding_strategy</c>, <c>min_p</c>, <c>repeat_penalty</c> and every strategy knob)
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

    private static readonly JsonElement _emptySchema = JsonDocument.Parse("""{"type":"object","properties":{}}""").RootElement;

    public static ChatCompletionCall ParseChat(JsonElement body)
    {
        var request = Read(body, OpenAiJsonContext.Default.ChatCompletionRequest);
        var messages = new List<ChatMessage>();
        foreach (var message in request.Messages ?? throw Required("messages"))
            messages.Add(ToMessage(message, $"messages[{messages.Count}]"));
        if (messages.Count == 0)
            throw ApiError.BadRequest("'messages' must hold at least one message.", "messages");

        var options = ToOptions(request, chat: true);
        if (request.MaxCompletionTokens is { } maxCompletionTokens)
            options.MaxOutputTokens = AtLeast(maxCompletionTokens, 1, "max_completion_tokens");
        AddTools(request, options);
        options.ResponseFormat = ToResponseFormat(request.ResponseFormat);
        options.AllowMultipleToolCalls = request.ParallelToolCalls;
        if (request.DecodingTrace == true)
            (options.AdditionalProperties ??= [])[ChatRequestMapper.DecodingTraceKey] = true;
        return new ChatCompletionCall(ModelName(request.Model), messages, options, request.Stream == true, request.StreamOptions?.IncludeUsage == true);
    }

    /// <summary>
    /// An <c>/apply-template</c> body: a chat completion request (read and checked as <see cref="ParseChat"/> does) and
    /// <c>add_generation_prompt</c> (a boolean, true by default).
    /// </summary>
    public static ApplyTemplateCall ParseApplyTemplate(JsonElement body)
    {
        // The chat body without the one field of this endpoint (a chat request would refuse it as unknown).
        var chatBody = body;
        if (body.ValueKind == JsonValueKind.Object && body.TryGetProperty("add_generation_prompt", out _))
        {
            var copy = System.Text.Json.Nodes.JsonObject.Create(body)!;
            copy.Remove("add_generation_prompt");
            chatBody = JsonSerializer.SerializeToElement(copy);
        }
        var chat = ParseChat(chatBody);
        var add = body.TryGetProperty("add_generation_prompt", out var value) ? value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Null => true,
            _ => throw ApiError.BadRequest("'add_generation_prompt' must be true or false.", "add_generation_prompt"),
        } : true;
        return new ApplyTemplateCall(chat, add);
    }

    public static CompletionCall ParseCompletion(JsonElement body)
    {
        var request = Read(body, OpenAiJsonContext.Default.CompletionRequest);
        var prompt = request.Prompt switch
        {
            null => throw Required("prompt"),
            [var text] => text,
            _ => throw ApiError.BadRequest("'prompt' must be a string (or an array of one string).", "prompt"),
        };
        return new CompletionCall(ModelName(request.Model), prompt, ToOptions(request, chat: false), request.Stream == true, request.StreamOptions?.IncludeUsage == true);
    }

    public static EmbeddingCall ParseEmbeddings(JsonElement body, int maxInputs)
    {
        var request = Read(body, OpenAiJsonContext.Default.EmbeddingRequest);
        var inputs = request.Input ?? throw Required("input");
        if (inputs.Count > maxInputs)
            throw new ApiError(StatusCodes.Status413PayloadTooLarge, $"'input' holds {inputs.Count} inputs; the limit is {maxInputs} (Server:MaxEmbeddingInputs).", code: "too_many_inputs", param: "input");
        if (inputs.Count == 0 || inputs.Any(string.IsNullOrEmpty))
            throw ApiError.BadRequest("'input' must be a string or a non-empty array of non-empty strings (token arrays are not supported).", "input");
        var format = request.EncodingFormat ?? "float";
        if (format is not ("float" or "base64"))
            throw ApiError.BadRequest($"'encoding_format' must be float or base64, not '{format}'.", "encoding_format");
        if (request.Dimensions is { ValueKind: not JsonValueKind.Null })
            throw ApiError.BadRequest("'dimensions' is not supported: embeddings have the model's hidden size.", "dimensions");
        if (request.Extra?.Keys.FirstOrDefault() is { } unknown)
            throw Unsupported(unknown, chat: false);
        return new EmbeddingCall(ModelName(request.Model), inputs, format == "base64");
    }

    /// <summary>
    /// A <c>/v1/agents/run</c> body: <c>agent</c> and <c>messages</c> (user and assistant turns, the last a user's;
    /// the agent's own instructions are its system message). Any other field is a 400 naming it.
    /// </summary>
    public static (string Agent, List<ChatMessage> History) ParseAgentRun(JsonElement body)
    {
        var request = Read(body, OpenAiJsonContext.Default.AgentRunRequest);
        if (request.Extra?.Keys.FirstOrDefault() is { } unknown)
            throw ApiError.BadRequest($"'{unknown}' is not a field of an agent run (agent, messages).", unknown);
        var agent = request.Agent switch
        {
            null => throw Required("agent"),
            "" => throw ApiError.BadRequest("'agent' must not be empty.", "agent"),
            var name => name,
        };
        var history = new List<ChatMessage>();
        foreach (var message in request.Messages ?? throw Required("messages"))
        {
            var where = $"messages[{history.Count}]";
            if (message.Role is not ("user" or "assistant"))
                throw ApiError.BadRequest($"'{where}.role' must be user or assistant in an agent run, not '{message.Role}'.", $"{where}.role");
            history.Add(new ChatMessage(message.Role == "user" ? ChatRole.User : ChatRole.Assistant, message.Content ?? throw Required($"{where}.content")));
        }
        if (history.Count == 0 || history[^1].Role != ChatRole.User)
            throw ApiError.BadRequest("'messages' must end with a user message.", "messages");
        return (agent, history);
    }

    /// <summary>The typed body; a field of the wrong kind or shape is a 400 naming it (the serializer's path, without <c>$.</c>).</summary>
    private static T Read<T>(JsonElement body, JsonTypeInfo<T> type)
    {
        if (body.ValueKind != JsonValueKind.Object)
            throw ApiError.BadRequest("The request body must be a JSON object.");
        try
        {
            return body.Deserialize(type)!;
        }
        catch (JsonException e)
        {
            var param = e.Path is { Length: > 2 } path && path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : null;
            var mustBe = e is JsonFieldException ? e.Message : "has the wrong type or shape";
            throw ApiError.BadRequest(param is null ? $"The request has a field of the wrong type: {mustBe}." : $"'{param}' {mustBe}.", param);
        }
    }

    private static ApiError Required(string param) => ApiError.BadRequest($"'{param}' is required.", param);

    private static string ModelName(string? model) => model switch
    {
        null => throw Required("model"),
        "" => throw ApiError.BadRequest("'model' must not be empty.", "model"),
        _ => model,
    };

    // Fields of OpenAI's or llama-server's API that AgentHost does not implement, with why: each is a 400 naming it
    // (docs/server.md), as is any other field neither declares.
    private static readonly Dictionary<string, string> _unsupported = new(StringComparer.Ordinal)
    {
        ["best_of"] = "server-side best-of-n ranking is not implemented; send n requests",
        ["echo"] = "the prompt is not echoed back; the client has it",
        ["suffix"] = "insertion (fill-in-the-middle) is not implemented",
        ["grammar"] = "raw GBNF from a request is not accepted; use response_format with a json_schema, or tools",
        ["json_schema"] = "use response_format: {\"type\": \"json_schema\", ...}",
        ["n_probs"] = "use logprobs (and top_logprobs in chat)",
        ["audio"] = "the models are text only",
        ["modalities"] = "the models are text only",
        ["prediction"] = "predicted outputs are not implemented",
        ["reasoning_effort"] = "the reasoning budget of a local model is not configurable per request",
        ["web_search_options"] = "there is no web search",
        ["functions"] = "the deprecated functions field is not supported; use tools",
        ["function_call"] = "the deprecated function_call field is not supported; use tool_choice",
        ["store"] = "nothing is stored",
        ["metadata"] = "nothing is stored",
        ["service_tier"] = "there are no service tiers",
    };

    private static ApiError Unsupported(string name, bool chat)
        => ApiError.BadRequest(_unsupported.TryGetValue(name, out var why)
            ? $"'{name}' is not supported: {why}."
            : $"'{name}' is not a field of {(chat ? "chat completions" : "this endpoint")} that AgentHost supports (see docs/server.md).", name);

    private static ChatOptions ToOptions(SamplingRequest request, bool chat)
    {
        if (request.N is not (null or 1))
            throw ApiError.BadRequest($"'n' must be 1, not {request.N}: one choice per request is supported; send n requests.", "n");
        var options = new ChatOptions
        {
            MaxOutputTokens = request.MaxTokens is { } maxTokens ? AtLeast(maxTokens, 1, "max_tokens") : null,
            Temperature = Within(request.Temperature, 0, 2, "temperature"),
            TopP = Within(request.TopP, 0, 1, "top_p"),
            FrequencyPenalty = Within(request.FrequencyPenalty, -2, 2, "frequency_penalty"),
            PresencePenalty = Within(request.PresencePenalty, -2, 2, "presence_penalty"),
            TopK = request.TopK is { } topK ? AtLeast(topK, 0, "top_k") : null,
            Seed = request.Seed,
            StopSequences = request.Stop is { } stop ? Stops(stop) : null,
        };
        AddTokenLevelFields(request, chat, options);
        if (request.Extra is not { } extra)
            return options;

        foreach (var key in AgentHost.Llama.Decoding.DecodingStrategies.FileOptionKeys)
        {
            if (extra.ContainsKey(key))
                throw ApiError.BadRequest($"'{key}' names a server-side file, which requests may not do; the operator configures server state (Server:StateDirectory).", key);
        }
        foreach (var (name, value) in extra)
        {
            if (!_decodingKeys.Contains(name))
            {
                // null is what clients send for a field they leave at its default; false for logprobs / echo likewise.
                if (value.ValueKind is JsonValueKind.Null || value.ValueKind is JsonValueKind.False && name is "logprobs" or "echo" or "store")
                    continue;
                throw Unsupported(name, chat);
            }
            if (value.ValueKind == JsonValueKind.Null)
                continue;
            (options.AdditionalProperties ??= [])[name] = value.ValueKind switch
            {
                JsonValueKind.String => DecodingText(value, name),
                JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => value.GetRawText(),
                _ => throw ApiError.BadRequest($"'{name}' must be a string or a number.", name),
            };
        }
        return options;
    }

    // logprobs / top_logprobs (chat: a flag and a count; completions: the count, OpenAI's legacy shape) and logit_bias,
    // as the engine's options; the strategy (greedy or sample only) and the vocabulary are checked by the engine.
    private static void AddTokenLevelFields(SamplingRequest request, bool chat, ChatOptions options)
    {
        int? top;
        if (chat)
        {
            var on = request.Logprobs switch
            {
                null or { ValueKind: JsonValueKind.Null or JsonValueKind.False } => false,
                { ValueKind: JsonValueKind.True } => true,
                _ => throw ApiError.BadRequest("'logprobs' must be true or false.", "logprobs"),
            };
            if (request.TopLogprobs is not null && !on)
                throw ApiError.BadRequest("'top_logprobs' needs 'logprobs': true.", "top_logprobs");
            top = on ? request.TopLogprobs ?? 0 : null;
            if (top is < 0 or > GenerationRequest.MaxTopLogprobs)
                throw ApiError.BadRequest($"'top_logprobs' must be a whole number from 0 to {GenerationRequest.MaxTopLogprobs}.", "top_logprobs");
        }
        else
        {
            if (request.TopLogprobs is not null)
                throw ApiError.BadRequest("'top_logprobs' is a chat field; completions take 'logprobs': N (0 to 20 alternatives).", "top_logprobs");
            top = request.Logprobs switch
            {
                null or { ValueKind: JsonValueKind.Null } => null,
                { ValueKind: JsonValueKind.Number } n when n.TryGetInt32(out var count) && count is >= 0 and <= GenerationRequest.MaxTopLogprobs => count,
                _ => throw ApiError.BadRequest($"'logprobs' must be a whole number from 0 to {GenerationRequest.MaxTopLogprobs} (the alternatives per token).", "logprobs"),
            };
        }
        if (top is { } alternatives)
            (options.AdditionalProperties ??= [])[ChatRequestMapper.TopLogprobsKey] = alternatives;

        if (request.LogitBias is not { ValueKind: not JsonValueKind.Null } bias)
            return;
        if (bias.ValueKind != JsonValueKind.Object)
            throw ApiError.BadRequest("'logit_bias' must be an object of token ids to biases from -100 to 100.", "logit_bias");
        var biases = new Dictionary<int, float>();
        foreach (var entry in bias.EnumerateObject())
        {
            if (biases.Count == GenerationRequest.MaxLogitBiasEntries)
                throw ApiError.BadRequest($"'logit_bias' holds more than {GenerationRequest.MaxLogitBiasEntries} entries.", "logit_bias");
            if (!int.TryParse(entry.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var token))
                throw ApiError.BadRequest($"'logit_bias' keys must be token ids (whole numbers), not '{entry.Name}'.", "logit_bias");
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetDouble(out var value) || value is < -100 or > 100)
                throw ApiError.BadRequest($"'logit_bias' for token {token} must be a number from -100 to 100.", "logit_bias");
            biases[token] = (float)value;
        }
        (options.AdditionalProperties ??= [])[ChatRequestMapper.LogitBiasKey] = biases;
    }

    private static string DecodingText(JsonElement value, string name)
    {
        try
        {
            return OpenAiJsonConverters.TextOf(value)!;
        }
        catch (JsonFieldException e)
        {
            throw ApiError.BadRequest($"'{name}' {e.Message}.", name);
        }
    }

    private static float? Within(double? value, float min, float max, string name)
        => value is not { } number ? null
            : number >= min && number <= max ? (float)number
            : throw ApiError.BadRequest($"'{name}' must be a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}.", name);

    private static int AtLeast(int value, int min, string name)
        => value >= min ? value : throw ApiError.BadRequest($"'{name}' must be a whole number of at least {min}.", name);

    private static List<string> Stops(List<string> stops)
    {
        if (stops.Count > 4)
            throw ApiError.BadRequest("'stop' must be a string or an array of up to 4 strings.", "stop");
        return stops.Any(string.IsNullOrEmpty) ? throw ApiError.BadRequest("'stop' strings must not be empty.", "stop") : stops;
    }

    private static ChatMessage ToMessage(RequestMessage message, string where)
    {
        var text = message.Content;
        switch (message.Role ?? throw Required($"{where}.role"))
        {
            case "system" or "developer":
                return new ChatMessage(ChatRole.System, text ?? "");
            case "user":
                return new ChatMessage(ChatRole.User, text ?? throw Required($"{where}.content"));
            case "assistant":
                var contents = new List<AIContent>();
                if (!string.IsNullOrEmpty(text))
                    contents.Add(new TextContent(text));
                var index = 0;
                foreach (var call in message.ToolCalls ?? [])
                    contents.Add(ToFunctionCall(call, $"{where}.tool_calls[{index++}]"));
                return new ChatMessage(ChatRole.Assistant, contents);
            case "tool":
                return new ChatMessage(ChatRole.Tool, [new FunctionResultContent(message.ToolCallId ?? throw Required($"{where}.tool_call_id"), text ?? "")]);
            case var role:
                throw ApiError.BadRequest($"'{where}.role' must be system, developer, user, assistant or tool, not '{role}'.", $"{where}.role");
        }
    }

    private static FunctionCallContent ToFunctionCall(RequestToolCall call, string where)
    {
        var id = call.Id ?? throw Required($"{where}.id");
        var function = call.Function ?? throw Required($"{where}.function");
        var name = FunctionName(function.Name, $"{where}.function.name");
        Dictionary<string, object?>? arguments;
        try
        {
            arguments = JsonSerializer.Deserialize(function.Arguments ?? "{}", OpenAiJsonContext.Default.DictionaryStringJsonElement)?
                .ToDictionary(a => a.Key, a => (object?)a.Value);
        }
        catch (JsonException)
        {
            throw ApiError.BadRequest($"'{where}.function.arguments' is not a JSON object.", $"{where}.function.arguments");
        }
        return new FunctionCallContent(id, name, arguments);
    }

    /// <summary>A function name, checked against OpenAI's rule (letters, digits, _ and -, 1 to 64).</summary>
    private static string FunctionName(string? name, string param)
    {
        if (name is null)
            throw Required(param);
        return _functionName.IsMatch(name) ? name
            : throw ApiError.BadRequest($"'{param}' must be 1 to 64 letters, digits, '_' or '-', not '{name}'.", param);
    }

    private static void AddTools(ChatCompletionRequest request, ChatOptions options)
    {
        if (request.Tools is { } tools)
        {
            options.Tools = [];
            var index = 0;
            foreach (var tool in tools)
            {
                var where = $"tools[{index++}]";
                if (tool is not { Type: { ValueKind: JsonValueKind.String } type } || !type.ValueEquals("function"))
                    throw ApiError.BadRequest($"'{where}' must be a function tool ({{\"type\": \"function\", \"function\": ...}}).", where);
                var function = tool.Function ?? throw Required($"{where}.function");
                var name = FunctionName(function.Name, $"{where}.function.name");
                if (options.Tools.Any(t => t.Name == name))
                    throw ApiError.BadRequest($"'{where}.function.name' repeats the tool name '{name}'.", $"{where}.function.name");
                var parameters = function.Parameters switch
                {
                    null or { ValueKind: JsonValueKind.Null } => _emptySchema,
                    { ValueKind: JsonValueKind.Object } schema => schema,
                    _ => throw ApiError.BadRequest($"'{where}.function.parameters' must be an object.", $"{where}.function.parameters"),
                };
                CheckSchema(parameters, $"{where}.function.parameters");
                options.Tools.Add(AIFunctionFactory.CreateDeclaration(name, function.Description, parameters));
            }
        }

        if (request.ToolChoice is not { } choice)
            return;
        options.ToolMode = choice switch
        {
            { FunctionName: { } function } => ChatToolMode.RequireSpecific(FunctionName(function, "tool_choice.function.name")),
            { Mode: "none" } => ChatToolMode.None,
            { Mode: "auto" } => ChatToolMode.Auto,
            { Mode: "required" } => ChatToolMode.RequireAny,
            { Mode: var other } => throw ApiError.BadRequest($"'tool_choice' must be none, auto, required or a named function, not '{other}'.", "tool_choice"),
        };
        if (options.ToolMode is RequiredChatToolMode { RequiredFunctionName: { } required } && options.Tools?.Any(t => t.Name == required) != true)
            throw ApiError.BadRequest($"'tool_choice' names the function '{required}', which is not in 'tools'.", "tool_choice");
        if (options.ToolMode is RequiredChatToolMode && options.Tools is not { Count: > 0 })
            throw ApiError.BadRequest("'tool_choice' requires a tool call but 'tools' is empty.", "tool_choice");
    }

    /// <summary>
    /// The schema, converted once here so that a schema error is a 400 whose <c>param</c> is the request field holding
    /// the schema; its message names the place inside the schema (a JSON pointer such as <c>#/properties/a</c>).
    /// </summary>
    private static JsonElement CheckSchema(JsonElement schema, string param)
    {
        try
        {
            AgentHost.Llama.Grammar.JsonSchemaGrammar.FromSchema(schema);
            return schema;
        }
        catch (AgentHostException e) when (e.Kind == ErrorKind.InvalidArgument)
        {
            throw ApiError.BadRequest($"'{param}': {e.Message}", param);
        }
    }

    private static ChatResponseFormat? ToResponseFormat(ResponseFormatSpec? format) => format?.Type switch
    {
        null when format is null => null,
        null => throw Required("response_format.type"),
        "text" => ChatResponseFormat.Text,
        "json_object" => ChatResponseFormat.Json,
        "json_schema" => format.JsonSchema is not { } spec ? throw Required("response_format.json_schema")
            : spec.Schema is not { ValueKind: JsonValueKind.Object } schema
                ? throw ApiError.BadRequest("'response_format.json_schema.schema' must be an object.", "response_format.json_schema.schema")
                : ChatResponseFormat.ForJsonSchema(CheckSchema(schema, "response_format.json_schema.schema"), spec.Name, spec.Description),
        var type => throw ApiError.BadRequest($"'response_format.type' must be text, json_object or json_schema, not '{type}'.", "response_format.type"),
    };
}
