using System.Text.Json;
using System.Text.Json.Serialization;
using AgentHost.Extensions.AI;

namespace Microsoft.SemanticKernel;

/// <summary>
/// Prompt execution settings for AgentHost models, shaped like SK's Ollama settings. The JSON names are
/// the keys SK's <c>ToChatOptions</c> maps onto <c>ChatOptions</c> (temperature, top_p, top_k, seed,
/// max_tokens, stop_sequences, penalties); <see cref="DecodingStrategy"/>, <see cref="MinP"/>,
/// <see cref="RepeatPenalty"/> and any strategy knob put into <see cref="PromptExecutionSettings.ExtensionData"/>
/// (e.g. <c>recycling_tree</c>, <c>cautious_max_trials</c>) reach the client through
/// <c>ChatOptions.AdditionalProperties</c> under the same keys.
/// </summary>
[JsonNumberHandling(JsonNumberHandling.AllowReadingFromString)]
public sealed class LlamaPromptExecutionSettings : PromptExecutionSettings
{
    private static readonly JsonSerializerOptions _readPermissive = new()
    {
        AllowTrailingCommas = true,
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
    };

    private float? _temperature;
    private float? _topP;
    private int? _topK;
    private float? _minP;
    private long? _seed;
    private int? _maxTokens;
    private IList<string>? _stopSequences;
    private float? _frequencyPenalty;
    private float? _presencePenalty;
    private float? _repeatPenalty;
    private string? _decodingStrategy;

    /// <summary>
    /// Converts any settings (e.g. from a prompt's config.json) to this type: a JSON round trip, keeping
    /// the function choice behaviour (whose function list does not survive serialisation).
    /// </summary>
    public static LlamaPromptExecutionSettings FromExecutionSettings(PromptExecutionSettings? executionSettings)
    {
        switch (executionSettings)
        {
            case null:
                return new();
            case LlamaPromptExecutionSettings settings:
                return settings;
        }

        var json = JsonSerializer.Serialize(executionSettings);
        var converted = JsonSerializer.Deserialize<LlamaPromptExecutionSettings>(json, _readPermissive)
            ?? throw new ArgumentException($"Invalid execution settings, cannot convert to {nameof(LlamaPromptExecutionSettings)}.", nameof(executionSettings));
        converted.FunctionChoiceBehavior = executionSettings.FunctionChoiceBehavior;
        return converted;
    }

    /// <summary>Sampling temperature; 0 means greedy when no strategy is named.</summary>
    [JsonPropertyName("temperature")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public float? Temperature { get => _temperature; set => Set(ref _temperature, value); }

    /// <summary>Nucleus sampling cut-off in (0, 1].</summary>
    [JsonPropertyName("top_p")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public float? TopP { get => _topP; set => Set(ref _topP, value); }

    /// <summary>Top-k cut-off (0 = off).</summary>
    [JsonPropertyName("top_k")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? TopK { get => _topK; set => Set(ref _topK, value); }

    /// <summary>Min-p cut-off in [0, 1).</summary>
    [JsonPropertyName(ChatRequestMapper.MinPKey)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public float? MinP { get => _minP; set => Set(ref _minP, value); }

    /// <summary>Sampling seed.</summary>
    [JsonPropertyName("seed")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? Seed { get => _seed; set => Set(ref _seed, value); }

    /// <summary>Most tokens to generate.</summary>
    [JsonPropertyName("max_tokens")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? MaxTokens { get => _maxTokens; set => Set(ref _maxTokens, value); }

    /// <summary>Strings that end the reply.</summary>
    [JsonPropertyName("stop_sequences")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IList<string>? StopSequences { get => _stopSequences; set => Set(ref _stopSequences, value); }

    /// <summary>Frequency penalty.</summary>
    [JsonPropertyName("frequency_penalty")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public float? FrequencyPenalty { get => _frequencyPenalty; set => Set(ref _frequencyPenalty, value); }

    /// <summary>Presence penalty.</summary>
    [JsonPropertyName("presence_penalty")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public float? PresencePenalty { get => _presencePenalty; set => Set(ref _presencePenalty, value); }

    /// <summary>Repetition penalty (1 = off).</summary>
    [JsonPropertyName(ChatRequestMapper.RepeatPenaltyKey)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public float? RepeatPenalty { get => _repeatPenalty; set => Set(ref _repeatPenalty, value); }

    /// <summary>Decoding strategy: greedy, sample, recycling, lookup or cautious.</summary>
    [JsonPropertyName(ChatRequestMapper.StrategyKey)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? DecodingStrategy { get => _decodingStrategy; set => Set(ref _decodingStrategy, value); }

    /// <inheritdoc />
    public override PromptExecutionSettings Clone() => new LlamaPromptExecutionSettings
    {
        ModelId = ModelId,
        ServiceId = ServiceId,
        FunctionChoiceBehavior = FunctionChoiceBehavior,
        ExtensionData = ExtensionData is null ? null : new Dictionary<string, object>(ExtensionData),
        Temperature = Temperature,
        TopP = TopP,
        TopK = TopK,
        MinP = MinP,
        Seed = Seed,
        MaxTokens = MaxTokens,
        StopSequences = StopSequences is null ? null : new List<string>(StopSequences),
        FrequencyPenalty = FrequencyPenalty,
        PresencePenalty = PresencePenalty,
        RepeatPenalty = RepeatPenalty,
        DecodingStrategy = DecodingStrategy,
    };

    /// <inheritdoc />
    public override void Freeze()
    {
        if (IsFrozen)
            return;
        base.Freeze();
        if (_stopSequences is not null)
            _stopSequences = new List<string>(_stopSequences).AsReadOnly();
    }

    private void Set<T>(ref T field, T value)
    {
        ThrowIfFrozen();
        field = value;
    }
}
