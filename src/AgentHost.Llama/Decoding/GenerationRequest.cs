using AgentHost.Llama.Grammar;

namespace AgentHost.Llama.Decoding;

/// <summary>Sampling knobs of the plain sampler (llama.cpp's names and defaults).</summary>
public sealed record SamplingOptions
{
    /// <summary>Softmax temperature; 0 means greedy.</summary>
    public float Temperature { get; init; } = 0.8f;

    /// <summary>Keep only the K most likely tokens; 0 disables.</summary>
    public int TopK { get; init; } = 40;

    /// <summary>Keep the smallest set of tokens whose probability sums to P; 1 disables.</summary>
    public float TopP { get; init; } = 0.95f;

    /// <summary>Drop tokens less likely than MinP times the most likely one; 0 disables.</summary>
    public float MinP { get; init; } = 0.05f;

    /// <summary>Repetition penalty over the last <see cref="PenaltyLastN"/> tokens; 1 disables.</summary>
    public float RepeatPenalty { get; init; } = 1.0f;

    /// <summary>Subtracted from a logit once per earlier occurrence of its token; 0 disables.</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>Subtracted from a logit once if its token occurred; 0 disables.</summary>
    public float PresencePenalty { get; init; }

    /// <summary>How many recent tokens the penalties look at.</summary>
    public int PenaltyLastN { get; init; } = 64;

    /// <summary>Random seed; null picks one (reported in the statistics so the run can be repeated).</summary>
    public ulong? Seed { get; init; }

    /// <summary>Whether any penalty is active.</summary>
    public bool HasPenalties => PenaltyLastN > 0 && (RepeatPenalty != 1.0f || FrequencyPenalty != 0 || PresencePenalty != 0);

    /// <summary>Throws an <see cref="AgentHostException"/> naming the first invalid value.</summary>
    public void Validate()
    {
        Require(float.IsFinite(Temperature) && Temperature >= 0, $"temperature must be 0 or more, not {Temperature}.", "temperature");
        Require(TopK >= 0, $"top-k must be 0 (off) or more, not {TopK}.", "top_k");
        Require(TopP is > 0 and <= 1, $"top-p must be in (0, 1], not {TopP}.", "top_p");
        Require(MinP is >= 0 and < 1, $"min-p must be in [0, 1), not {MinP}.", "min_p");
        Require(float.IsFinite(RepeatPenalty) && RepeatPenalty > 0, $"repeat penalty must be positive, not {RepeatPenalty}.", "repeat_penalty");
        Require(float.IsFinite(FrequencyPenalty), "frequency penalty must be a finite number.", "frequency_penalty");
        Require(float.IsFinite(PresencePenalty), "presence penalty must be a finite number.", "presence_penalty");
        Require(PenaltyLastN >= 0, $"penalty window must be 0 or more, not {PenaltyLastN}.", "penalty_last_n");
    }

    internal static void Require(bool ok, string message, string? parameter = null)
    {
        if (!ok)
            throw new AgentHostException(ErrorKind.InvalidArgument, message) { Parameter = parameter };
    }
}

/// <summary>One generation: the prompt and when to stop.</summary>
public sealed record GenerationRequest
{
    /// <summary>The prompt text.</summary>
    public required string Prompt { get; init; }

    /// <summary>
    /// The prompt already tokenized (e.g. a chat format with control tokens), used instead of
    /// tokenizing <see cref="Prompt"/>, which then only describes it.
    /// </summary>
    public IReadOnlyList<int>? PromptTokens { get; init; }

    /// <summary>
    /// Keep the longest prefix the session's sequence 0 shares with this prompt instead of decoding it
    /// again (the prompt cache of multi-turn chats); the count is in <see cref="GenerationStats.CachedPromptTokens"/>.
    /// Off by default: a fresh prefill makes results independent of what the session decoded before.
    /// </summary>
    public bool ReusePrefix { get; init; }

    /// <summary>Most tokens to generate.</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>Strings that end generation; the text ends before the first one found (it may span tokens).</summary>
    public IReadOnlyList<string> Stop { get; init; } = [];

    /// <summary>Tokens that end generation like EOG (e.g. a chat format's end-of-turn control token); not part of the output.</summary>
    public IReadOnlyList<int> StopTokens { get; init; } = [];

    /// <summary>
    /// Sampler settings, or null for none. Strategies that can do both (token recycling, lookup)
    /// decode greedily without them; <c>sample</c> then uses the defaults; <c>greedy</c> ignores them.
    /// </summary>
    public SamplingOptions? Sampling { get; init; }

    /// <summary>
    /// A grammar the output must follow, or null. Honoured by the plain strategies (greedy, sample);
    /// the others refuse a request with one.
    /// </summary>
    public GrammarConstraint? Grammar { get; init; }

    /// <summary>The most alternatives <see cref="TopLogprobs"/> may ask for (OpenAI's bound).</summary>
    public const int MaxTopLogprobs = 20;

    /// <summary>The most entries <see cref="LogitBias"/> may hold.</summary>
    public const int MaxLogitBiasEntries = 1024;

    /// <summary>
    /// Record each generated token's log-probability with this many of the step's most likely tokens (0 to
    /// <see cref="MaxTopLogprobs"/>) into <see cref="GenerationResult.Logprobs"/> (and each streamed update's); null, the
    /// default, records nothing at no cost. Honoured by the plain strategies (greedy, sample, batched or not); the
    /// others refuse a request with it.
    /// </summary>
    public int? TopLogprobs { get; init; }

    /// <summary>
    /// Biases added to the raw logits of these token ids before a token is chosen, each from -100 to 100, at most
    /// <see cref="MaxLogitBiasEntries"/>; ids must be in the model's vocabulary. Honoured by the plain strategies; the
    /// others refuse a request with it.
    /// </summary>
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }

    /// <summary>
    /// Where the strategy records its own events (speculative drafts accepted and rejected, cautious branching steps, tool
    /// tokens firing, a grammar switching on) as they happen, or null (the default) for none. Unlike
    /// <see cref="TopLogprobs"/> every strategy honours it.
    /// </summary>
    public DecodingTrace? Trace { get; init; }

    /// <summary>This run's log-probability recorder (one per generation, set by the engine's entry points).</summary>
    internal TokenLogprobRecorder? Recorder { get; init; }

    /// <summary>This request with a fresh recorder when it asks for log-probabilities and has none yet.</summary>
    internal GenerationRequest ForRun() => TopLogprobs is { } top && Recorder is null ? this with { Recorder = new TokenLogprobRecorder(top) } : this;

    /// <summary>Throws an <see cref="AgentHostException"/> when <see cref="LogitBias"/> names a token outside a vocabulary of <paramref name="vocabularySize"/>.</summary>
    public void ValidateFor(int vocabularySize)
    {
        if (LogitBias is null)
            return;
        foreach (var token in LogitBias.Keys)
            SamplingOptions.Require(token >= 0 && token < vocabularySize, $"logit_bias names token {token}, outside the model's vocabulary of {vocabularySize} tokens (0 to {vocabularySize - 1}).", "logit_bias");
    }

    /// <summary>
    /// Refuses a request with <see cref="TopLogprobs"/> or <see cref="LogitBias"/> for <paramref name="strategy"/>, which
    /// cannot honour them (it does not choose tokens one at a time from the raw logits).
    /// </summary>
    public void RefuseTokenLevelFields(string strategy)
    {
        if (TopLogprobs is not null)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"logprobs are not available with decoding strategy '{strategy}'; use greedy or sample.") { Parameter = "logprobs" };
        if (LogitBias is not null)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"logit_bias is not available with decoding strategy '{strategy}'; use greedy or sample.") { Parameter = "logit_bias" };
    }

    /// <summary>Throws an <see cref="AgentHostException"/> naming the first invalid value.</summary>
    public void Validate()
    {
        SamplingOptions.Require(TopLogprobs is null or (>= 0 and <= MaxTopLogprobs), $"top_logprobs must be from 0 to {MaxTopLogprobs}, not {TopLogprobs}.", "top_logprobs");
        if (LogitBias is not null)
        {
            SamplingOptions.Require(LogitBias.Count <= MaxLogitBiasEntries, $"logit_bias holds {LogitBias.Count} entries; the limit is {MaxLogitBiasEntries}.", "logit_bias");
            foreach (var (token, bias) in LogitBias)
            {
                SamplingOptions.Require(token >= 0, $"logit_bias names token {token}; token ids are 0 or more.", "logit_bias");
                SamplingOptions.Require(float.IsFinite(bias) && bias is >= -100 and <= 100, $"logit_bias for token {token} must be from -100 to 100, not {bias}.", "logit_bias");
            }
        }
        SamplingOptions.Require(PromptTokens is null ? !string.IsNullOrEmpty(Prompt) : PromptTokens.Count > 0, "The prompt is empty; pass some text to continue.");
        SamplingOptions.Require(MaxTokens >= 1, $"max tokens must be at least 1, not {MaxTokens}.");
        foreach (var stop in Stop)
            SamplingOptions.Require(!string.IsNullOrEmpty(stop), "A stop string is empty.");
        Sampling?.Validate();
        Grammar?.Validate();
    }
}
