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

    /// <summary>Throws an <see cref="AgentHostException"/> naming the first invalid value.</summary>
    public void Validate()
    {
        SamplingOptions.Require(PromptTokens is null ? !string.IsNullOrEmpty(Prompt) : PromptTokens.Count > 0, "The prompt is empty; pass some text to continue.");
        SamplingOptions.Require(MaxTokens >= 1, $"max tokens must be at least 1, not {MaxTokens}.");
        foreach (var stop in Stop)
            SamplingOptions.Require(!string.IsNullOrEmpty(stop), "A stop string is empty.");
        Sampling?.Validate();
        Grammar?.Validate();
    }
}
