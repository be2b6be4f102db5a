using System.Text.Json.Serialization;

namespace AgentHost.Server;

// OpenAI's response bodies as AgentHost writes them (snake_case through OpenAiJsonContext; nulls are written
// unless a property says otherwise, as OpenAI does). Besides OpenAI's fields, replies carry "decoding".

/// <summary>A <c>chat.completion</c>.</summary>
internal sealed record ChatCompletionResponse(string Id, long Created, string Model, IReadOnlyList<ChatChoice> Choices, UsageBody Usage, DecodingBody? Decoding)
{
    [JsonPropertyOrder(-1)]
    public string Object => "chat.completion";

    /// <summary>The strategy's events, only when the request asked (<c>decoding_trace: true</c>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<TraceEventBody>? DecodingTrace { get; init; }
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

/// <summary>A token: its text, log-probability, UTF-8 bytes and the step's most likely tokens; AgentHost adds the step's entropy (nats).</summary>
internal sealed record ChatTokenLogprobBody(string Token, double Logprob, IReadOnlyList<int> Bytes, IReadOnlyList<ChatTopLogprobBody> TopLogprobs, double Entropy);

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

    /// <summary>The strategy's events since the previous chunk, only when the request asked (<c>decoding_trace: true</c>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<TraceEventBody>? DecodingTrace { get; init; }
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

/// <summary>
/// One event of <c>decoding_trace</c>: <c>type</c> (<c>draft</c>, <c>branch</c>, <c>tool_token</c>, <c>grammar</c>) and
/// <c>position</c> (generated tokens before it); the other fields belong to one type each and are written only there.
/// Tokens are their text, as <c>logprobs</c> writes them.
/// </summary>
internal sealed record TraceEventBody(string Type, int Position)
{
    /// <summary>draft: the drafted tokens the verifier accepted, in order.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Accepted { get; init; }

    /// <summary>draft: the drafted tokens it rejected.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Rejected { get; init; }

    /// <summary>draft: the tokens the step emitted (the accepted drafts, then the verifier's own next token).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Emitted { get; init; }

    /// <summary>branch: the entropy (nats) that called for trials.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Entropy { get; init; }

    /// <summary>branch: every trial, in trial order.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<TrialBody>? Trials { get; init; }

    /// <summary>branch: the index of the chosen trial (lowest perplexity).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Winner { get; init; }

    /// <summary>branch: how many of the winner's tokens were kept.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Kept { get; init; }

    /// <summary>tool_token: the tool that fired, its arguments and its result or error.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Tool { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Arguments { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Result { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Error { get; init; }
}

/// <summary>One trial of a cautious branching step: its tokens and perplexity.</summary>
internal sealed record TrialBody(IReadOnlyList<string> Tokens, double Perplexity);

/// <summary>The <c>list</c> of decoding strategies a request may name (<c>GET /v1/strategies</c>, for the web page).</summary>
internal sealed record StrategyList(IReadOnlyList<StrategyBody> Data)
{
    [JsonPropertyOrder(-1)]
    public string Object => "list";
}

/// <summary>A strategy: its name, summary, whether it samples (never, optional, always), whether it gives logprobs, and its options.</summary>
internal sealed record StrategyBody(string Id, string Summary, string Sampling, bool Logprobs, IReadOnlyList<StrategyOptionBody> Options);

internal sealed record StrategyOptionBody(string Key, string Help);

/// <summary>The <c>list</c> of agents (<c>GET /v1/agents</c>).</summary>
internal sealed record AgentList(IReadOnlyList<AgentBody> Data)
{
    [JsonPropertyOrder(-1)]
    public string Object => "list";
}

internal sealed record AgentBody(string Id, string Description);

/// <summary><c>POST /v1/agents/run</c>'s answer: the agent's answer and every call it and the agents it called made (depth 0 = the agent asked).</summary>
internal sealed record AgentRunResponse(string Agent, string Answer, IReadOnlyList<AgentStepBody> Trace);

internal sealed record AgentStepBody(int Depth, string Agent, string Kind, string Function, string Text, bool Failed);

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
