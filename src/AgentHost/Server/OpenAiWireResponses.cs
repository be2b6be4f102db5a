using System.Text.Json.Serialization;

namespace AgentHost.Server;

// OpenAI's response bodies as AgentHost writes them (snake_case through OpenAiJsonContext; nulls are written
// unless a property says otherwise, as OpenAI does). Besides OpenAI's fields, replies carry "decoding".

/// <summary>A <c>chat.completion</c>.</summary>
internal sealed record ChatCompletionResponse(string Id, long Created, string Model, IReadOnlyList<ChatChoice> Choices, UsageBody Usage, DecodingBody? Decoding)
{
    [JsonPropertyOrder(-1)]
    public string Object => "chat.completion";
}

internal sealed record ChatChoice(ResponseMessage Message, string? FinishReason, ChatLogprobsBody? Logprobs = null)
{
    [JsonPropertyOrder(-1)]
    public int Index => 0;
}

/// <summary>A chat choice's <c>logprobs</c>: one entry per generated token.</summary>
internal sealed record ChatLogprobsBody(IReadOnlyList<ChatTokenLogprobBody> Content)
{
    public string? Refusal => null;
}

/// <summary>A token: its text, log-probability, UTF-8 bytes and the step's most likely tokens.</summary>
internal sealed record ChatTokenLogprobBody(string Token, double Logprob, IReadOnlyList<int> Bytes, IReadOnlyList<ChatTopLogprobBody> TopLogprobs);

internal sealed record ChatTopLogprobBody(string Token, double Logprob, IReadOnlyList<int> Bytes);

/// <summary>A completion choice's legacy <c>logprobs</c>: parallel lists per token, alternatives as text to log-probability.</summary>
internal sealed record CompletionLogprobsBody(IReadOnlyList<string> Tokens, IReadOnlyList<double> TokenLogprobs, IReadOnlyList<Dictionary<string, double>> TopLogprobs, IReadOnlyList<int> TextOffset);

internal sealed record ResponseMessage(string? Content, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<ToolCallBody>? ToolCalls)
{
    [JsonPropertyOrder(-1)]
    public string Role => "assistant";

    /// <summary>The model's reasoning (llama-server's <c>reasoning_content</c>), written only when there is some.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ReasoningContent { get; init; }
}

/// <summary>A tool call; <see cref="Index"/> only in streamed deltas.</summary>
internal sealed record ToolCallBody(string Id, FunctionCallBody Function, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Index)
{
    public string Type => "function";
}

internal sealed record FunctionCallBody(string Name, string Arguments);

/// <summary>A <c>chat.completion.chunk</c>: a delta, or (with no choices) the usage at the end.</summary>
internal sealed record ChatCompletionChunk(
    string Id,
    long Created,
    string Model,
    IReadOnlyList<ChunkChoice> Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] UsageBody? Usage = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] DecodingBody? Decoding = null)
{
    [JsonPropertyOrder(-1)]
    public string Object => "chat.completion.chunk";
}

internal sealed record ChunkChoice(Delta Delta, string? FinishReason, ChatLogprobsBody? Logprobs = null)
{
    [JsonPropertyOrder(-1)]
    public int Index => 0;
}

/// <summary>What a chunk adds: only the fields it sets are written.</summary>
internal sealed record Delta
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Role { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Content { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ReasoningContent { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<ToolCallBody>? ToolCalls { get; init; }
}

/// <summary>A <c>text_completion</c> (also each streamed piece of one).</summary>
internal sealed record CompletionResponse(string Id, long Created, string Model, IReadOnlyList<CompletionChoice> Choices, UsageBody? Usage, DecodingBody? Decoding)
{
    [JsonPropertyOrder(-1)]
    public string Object => "text_completion";
}

internal sealed record CompletionChoice(string Text, string? FinishReason, CompletionLogprobsBody? Logprobs = null)
{
    [JsonPropertyOrder(-1)]
    public int Index => 0;
}

internal sealed record UsageBody(long PromptTokens, long CompletionTokens, long TotalTokens, PromptTokensDetails PromptTokensDetails);

internal sealed record PromptTokensDetails(long CachedTokens);

/// <summary>AgentHost's extra field: the strategy that decoded the reply and its statistics.</summary>
internal sealed record DecodingBody(string? Strategy, IReadOnlyDictionary<string, double>? Stats);

/// <summary>The <c>list</c> of embeddings.</summary>
internal sealed record EmbeddingResponse(IReadOnlyList<EmbeddingBody> Data, string Model, EmbeddingUsage Usage)
{
    [JsonPropertyOrder(-1)]
    public string Object => "list";
}

/// <summary>One embedding: floats, or their little-endian bytes in base64 (<c>encoding_format</c>).</summary>
internal sealed record EmbeddingBody(int Index, object Embedding)
{
    [JsonPropertyOrder(-1)]
    public string Object => "embedding";
}

internal sealed record EmbeddingUsage(long PromptTokens, long TotalTokens);

/// <summary>The <c>list</c> of models.</summary>
internal sealed record ModelList(IReadOnlyList<ModelBody> Data)
{
    [JsonPropertyOrder(-1)]
    public string Object => "list";
}

internal sealed record ModelBody(string Id, string OwnedBy)
{
    public string Object => "model";

    public long Created => 0;
}

internal sealed record HealthBody(string Status);

/// <summary>
/// <c>/apply-template</c>'s answer: the rendered prompt (as llama-server's <c>prompt</c>), the format that rendered it
/// (<c>gguf</c> or a built-in name), its family, the tool-call syntax replies are read with and the prompt's token count.
/// </summary>
internal sealed record ApplyTemplateResponse(string Prompt, string Format, string Family, string ToolCallFormat, int Tokens);

/// <summary>OpenAI's error shape.</summary>
internal sealed record ErrorResponse(ErrorBody Error);

internal sealed record ErrorBody(string Message, string Type, string? Param, string? Code);
