using System.Text.Json;
using System.Text.Json.Serialization;

namespace AgentHost.Server;

// OpenAI's request bodies as AgentHost reads them (snake_case through OpenAiJsonContext). Every field is optional
// here; OpenAiRequests checks what is required and what each value may be, naming the field in its 400.

/// <summary>Fields shared by <c>/v1/chat/completions</c> and <c>/v1/completions</c>.</summary>
internal abstract class SamplingRequest
{
    public string? Model { get; init; }

    public int? N { get; init; }

    public int? MaxTokens { get; init; }

    public double? Temperature { get; init; }

    public double? TopP { get; init; }

    public double? FrequencyPenalty { get; init; }

    public double? PresencePenalty { get; init; }

    public int? TopK { get; init; }

    public long? Seed { get; init; }

    [JsonConverter(typeof(TextListConverter))]
    public List<string>? Stop { get; init; }

    public bool? Stream { get; init; }

    public StreamOptions? StreamOptions { get; init; }

    /// <summary>An end-user identifier (OpenAI's abuse monitoring); accepted and not used.</summary>
    public string? User { get; init; }

    /// <summary>Chat: true for each token's log-probability; completions: the number of alternatives (legacy shape). Kept raw: the two differ.</summary>
    public JsonElement? Logprobs { get; init; }

    /// <summary>Chat: alternatives per token (0 to 20), with <c>logprobs: true</c>.</summary>
    public int? TopLogprobs { get; init; }

    /// <summary>Token id (a string key) to a bias from -100 to 100; kept raw so that each problem names the field.</summary>
    public JsonElement? LogitBias { get; init; }

    /// <summary>Fields not declared here: AgentHost's decoding options travel on from these; any other is a 400 naming it.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>A <c>/v1/chat/completions</c> body.</summary>
internal sealed class ChatCompletionRequest : SamplingRequest
{
    public List<RequestMessage>? Messages { get; init; }

    public int? MaxCompletionTokens { get; init; }

    public List<ToolSpec>? Tools { get; init; }

    [JsonConverter(typeof(ToolChoiceConverter))]
    public ToolChoice? ToolChoice { get; init; }

    public ResponseFormatSpec? ResponseFormat { get; init; }

    /// <summary>Whether the model may write several tool calls in one turn (MEAI's AllowMultipleToolCalls).</summary>
    public bool? ParallelToolCalls { get; init; }

    /// <summary>AgentHost's: true for the strategy's own events in <c>decoding_trace</c> (see docs/server.md).</summary>
    public bool? DecodingTrace { get; init; }
}

/// <summary>A <c>POST /v1/agents/run</c> body: the agent and the conversation (user and assistant turns).</summary>
internal sealed class AgentRunRequest
{
    public string? Agent { get; init; }

    public List<RequestMessage>? Messages { get; init; }

    /// <summary>Fields not declared here: each is a 400 naming it.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>A <c>/v1/completions</c> body.</summary>
internal sealed class CompletionRequest : SamplingRequest
{
    [JsonConverter(typeof(TextListConverter))]
    public List<string>? Prompt { get; init; }
}

/// <summary>A <c>/v1/embeddings</c> body.</summary>
internal sealed class EmbeddingRequest
{
    public string? Model { get; init; }

    [JsonConverter(typeof(TextListConverter))]
    public List<string>? Input { get; init; }

    public string? EncodingFormat { get; init; }

    /// <summary>Refused whatever its value: embeddings have the model's hidden size.</summary>
    public JsonElement? Dimensions { get; init; }

    /// <summary>An end-user identifier; accepted and not used.</summary>
    public string? User { get; init; }

    /// <summary>Fields not declared here: each is a 400 naming it.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }
}

internal sealed class StreamOptions
{
    public bool? IncludeUsage { get; init; }
}

/// <summary>One message; <see cref="Content"/> is a string or text parts, joined.</summary>
internal sealed class RequestMessage
{
    public string? Role { get; init; }

    [JsonConverter(typeof(TextPartsConverter))]
    public string? Content { get; init; }

    public List<RequestToolCall>? ToolCalls { get; init; }

    public string? ToolCallId { get; init; }
}

/// <summary>A tool call in an assistant message of the history.</summary>
internal sealed class RequestToolCall
{
    public string? Id { get; init; }

    public FunctionCallSpec? Function { get; init; }
}

internal sealed class FunctionCallSpec
{
    public string? Name { get; init; }

    /// <summary>The arguments as JSON text (OpenAI sends a string holding an object).</summary>
    public string? Arguments { get; init; }
}

/// <summary>A tool offered to the model.</summary>
internal sealed class ToolSpec
{
    /// <summary>Must be the string <c>function</c>; kept raw so that any other value is one error naming the tool.</summary>
    public JsonElement? Type { get; init; }

    public FunctionSpec? Function { get; init; }
}

internal sealed class FunctionSpec
{
    public string? Name { get; init; }

    public string? Description { get; init; }

    /// <summary>The JSON schema of the arguments (an object).</summary>
    public JsonElement? Parameters { get; init; }
}

/// <summary><c>tool_choice</c>: a mode (none, auto, required) or a named function.</summary>
internal sealed record ToolChoice(string? Mode, string? FunctionName);

internal sealed class ResponseFormatSpec
{
    public string? Type { get; init; }

    public JsonSchemaSpec? JsonSchema { get; init; }
}

internal sealed class JsonSchemaSpec
{
    public string? Name { get; init; }

    public string? Description { get; init; }

    public JsonElement? Schema { get; init; }
}
