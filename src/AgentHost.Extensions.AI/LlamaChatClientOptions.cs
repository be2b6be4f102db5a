namespace AgentHost.Extensions.AI;

/// <summary>How a <see cref="LlamaChatClient"/> serves its model.</summary>
public sealed class LlamaChatClientOptions
{
    /// <summary>Strategy when a request names none and sets no sampling option (default greedy).</summary>
    public string DefaultStrategy { get; set; } = AgentHost.Llama.Decoding.DecodingStrategies.Greedy.Name;

    /// <summary>Most tokens per reply when the request sets no <c>MaxOutputTokens</c> (default 256).</summary>
    public int MaxTokens { get; set; } = 256;

    /// <summary>
    /// Keep each slot's KV cache between requests and decode only what a new prompt does not share with
    /// it (default on): a multi-turn conversation then prefills just its newest turn.
    /// </summary>
    public bool PromptCache { get; set; } = true;

    /// <summary>
    /// Continuous batching (default on): concurrent requests, whatever their strategy, run as slots of one shared context
    /// and every step decodes all their tokens together (speculative drafts, cautious trials and tool-token argument
    /// mode included), which raises throughput with many concurrent requests; each slot keeps its prompt cache, and a
    /// prompt that shares a prefix with another slot's copies it instead of decoding it again. At most the model's
    /// <c>Sequences</c> sequences are in use at once. A batched greedy reply equals its serial result except where the top
    /// two logits are nearly tied (batched decodes can differ in their last bits). Off: one request decodes at a time.
    /// </summary>
    public bool ContinuousBatching { get; set; } = true;

    /// <summary>
    /// Sessions also return final hidden states (needed by the <c>toolkens</c> strategy; a little extra work
    /// per decode). Default off.
    /// </summary>
    public bool HiddenStates { get; set; }

    /// <summary>Chat format name (see the format catalog); null: detected from the model.</summary>
    public string? ChatFormat { get; set; }

    /// <summary>Folder whose templates override the built-in chat formats; null: built-in only.</summary>
    public string? FormatsDirectory { get; set; }

    /// <summary>
    /// Whether a reply under a JSON response format (<c>ChatOptions.ResponseFormat</c>, which MEAI's typed
    /// <c>GetResponseAsync&lt;T&gt;</c> sets) that max tokens or a full context cut off before the JSON was complete is an
    /// <see cref="AgentHost.Llama.AgentHostException"/> saying so and what to raise (the default), rather than a response with
    /// finish reason <c>length</c> and the partial JSON, which a typed helper reports only as a JSON parse error. An
    /// OpenAI-compatible server, which answers <c>finish_reason: "length"</c> with the partial text, sets it off.
    /// </summary>
    public bool CutOffJsonIsError { get; set; } = true;

    /// <summary>
    /// Whether requests may name files through option keys (<c>recycling_matrix</c>, <c>toolkens_head</c>; see
    /// <see cref="AgentHost.Llama.Decoding.DecodingStrategies.FileOptionKeys"/>). Default on, for trusted in-process callers; a host that serves
    /// untrusted requests sets it off, and such a request is refused: server-side files are the operator's to name.
    /// </summary>
    public bool AllowFileOptions { get; set; } = true;

    /// <summary>
    /// The recycling matrix file of this client's model, named by the host (warm start, saved after each request);
    /// used when a request chooses <c>recycling</c> and names no file itself. Null: the matrix lives in memory only.
    /// </summary>
    public string? RecyclingMatrixFile { get; set; }
}
