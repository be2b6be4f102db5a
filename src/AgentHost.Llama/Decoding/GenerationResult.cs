namespace AgentHost.Llama.Decoding;

/// <summary>Why generation ended.</summary>
public enum StopReason
{
    /// <summary>The model produced an end-of-generation token (EOS, EOT ...).</summary>
    EndOfGeneration,
    /// <summary>The requested number of tokens was reached.</summary>
    MaxTokens,
    /// <summary>A stop string appeared in the text.</summary>
    StopString,
    /// <summary>The context window is full.</summary>
    ContextFull,
}

/// <summary>Statistics every strategy reports; strategy-specific numbers go to <see cref="Extra"/>.</summary>
public sealed class GenerationStats
{
    /// <summary>Tokens in the prompt (with BOS).</summary>
    public int PromptTokens { get; init; }

    /// <summary>Tokens generated (EOG not counted).</summary>
    public int GeneratedTokens { get; init; }

    /// <summary>llama_decode calls, prefill included.</summary>
    public int DecodeCalls { get; init; }

    /// <summary>Prompt tokens kept from the session's cache instead of being decoded (see <see cref="GenerationRequest.ReusePrefix"/>).</summary>
    public int CachedPromptTokens { get; init; }

    /// <summary>Time to decode the prompt.</summary>
    public TimeSpan PrefillTime { get; init; }

    /// <summary>Wall time of the whole generation, prefill included.</summary>
    public TimeSpan Elapsed { get; init; }

    /// <summary>Generated tokens per second of <see cref="Elapsed"/>.</summary>
    public double TokensPerSecond => Elapsed > TimeSpan.Zero ? GeneratedTokens / Elapsed.TotalSeconds : 0;

    /// <summary>The seed a sampling strategy used (null for greedy).</summary>
    public ulong? Seed { get; init; }

    /// <summary>Strategy-specific statistics (acceptance, branching steps ...).</summary>
    public IReadOnlyDictionary<string, double> Extra { get; init; } = new Dictionary<string, double>();
}

/// <summary>What a strategy returns: tokens, text and statistics.</summary>
public sealed class GenerationResult
{
    /// <summary>Name of the strategy that generated this.</summary>
    public required string Strategy { get; init; }

    /// <summary>Generated token ids (EOG excluded; the token that completed a stop string included).</summary>
    public required IReadOnlyList<int> Tokens { get; init; }

    /// <summary>Generated text (cut before a stop string).</summary>
    public required string Text { get; init; }

    /// <summary>Why generation ended.</summary>
    public required StopReason StopReason { get; init; }

    /// <summary>Statistics.</summary>
    public required GenerationStats Stats { get; init; }

    /// <summary>
    /// Strategy-specific detail beyond flat statistics (e.g. one record per branching step), or null.
    /// Serialised as is into the CLI's <c>--json</c> output under <c>details</c>.
    /// </summary>
    public object? Details { get; init; }

    /// <summary>Each generated token's log-probability, when the request asked for them (<see cref="GenerationRequest.TopLogprobs"/>); else null.</summary>
    public IReadOnlyList<TokenLogprob>? Logprobs { get; init; }
}
