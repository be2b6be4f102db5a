using System.Globalization;
using System.Text.Json;
using AgentHost.Llama;
using AgentHost.Llama.Decoding;
using Microsoft.Extensions.AI;

namespace AgentHost.Extensions.AI;

/// <summary>
/// Turns <see cref="ChatOptions"/> into the engine's request and strategy. MEAI's own properties map onto
/// the request (max tokens, stop sequences, temperature, top-p, top-k, penalties, seed); AgentHost's
/// decoding options travel in <see cref="ChatOptions.AdditionalProperties"/> under their own keys:
/// <c>decoding_strategy</c>, <c>min_p</c>, <c>repeat_penalty</c> and every strategy's knobs
/// (<c>recycling_tree</c>, <c>cautious_max_trials</c>, ...). Keys no strategy knows are left alone (they
/// may belong to another layer); a knob of a different strategy than the chosen one, or a sampling option
/// with a strategy that does not sample, is an error (the engine's rules, in <see cref="DecodingStrategies"/>).
/// </summary>
public static class ChatRequestMapper
{
    /// <summary>Key naming the decoding strategy (greedy, sample, recycling, lookup, cautious).</summary>
    public const string StrategyKey = "decoding_strategy";

    /// <summary>Key of the min-p sampling cut-off.</summary>
    public const string MinPKey = "min_p";

    /// <summary>Key of the repetition penalty.</summary>
    public const string RepeatPenaltyKey = "repeat_penalty";

    /// <summary>
    /// Key asking for each generated token's log-probability with this many alternatives (0 to 20; an integer): the
    /// response's <c>AdditionalProperties</c> (and each streamed update's) then hold <see cref="LogprobsKey"/>.
    /// Only greedy and sample provide them; other strategies refuse the request.
    /// </summary>
    public const string TopLogprobsKey = "top_logprobs";

    /// <summary>Key, in a response's or update's <c>AdditionalProperties</c>, of its tokens' <see cref="TokenLogprob"/> list.</summary>
    public const string LogprobsKey = "logprobs";

    /// <summary>
    /// Key asking for the strategy's own events (true; a bool or "true"): the response's <c>AdditionalProperties</c> then
    /// hold every <see cref="DecodingEvent"/> under this key, and each streamed update those since the previous one.
    /// Every strategy honours it (see <see cref="GenerationRequest.Trace"/>).
    /// </summary>
    public const string DecodingTraceKey = "decoding_trace";

    /// <summary>
    /// Key of logit biases: token id to a bias from -100 to 100 added to the raw logits before a token is chosen (an
    /// <c>IReadOnlyDictionary&lt;int, float&gt;</c> or a JSON object of id strings to numbers). Greedy and sample only.
    /// </summary>
    public const string LogitBiasKey = "logit_bias";

    /// <summary>
    /// The strategy a request asks for, built by the engine's factory in <paramref name="context"/> (unknown names,
    /// misplaced knobs and, where the context forbids them, file options refused).
    /// </summary>
    public static IDecodingStrategy CreateStrategy(ChatOptions? options, StrategyDescriptor descriptor, StrategyContext context)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        var knobs = options?.AdditionalProperties?
            .Where(p => DecodingStrategies.OptionKeys.Contains(p.Key))
            .Select(p => KeyValuePair.Create(p.Key, ToInvariantString(p.Key, p.Value)))
            .ToList() ?? [];
        return DecodingStrategies.Create(descriptor, new StrategyOptions(knobs), context);
    }

    /// <summary>
    /// The strategy name, one rule: <c>decoding_strategy</c> when given; otherwise any sampling option
    /// (see <see cref="SamplingOptionIn"/>) selects <c>sample</c>, temperature 0 alone selects greedy, and with
    /// none, <paramref name="defaultStrategy"/>.
    /// </summary>
    public static StrategyDescriptor ChooseStrategy(ChatOptions? options, string defaultStrategy)
    {
        if (GetString(options, StrategyKey) is { } named)
            return DecodingStrategies.Find(named);
        if (SamplingOptionIn(options) is not null)
            return DecodingStrategies.Sample;
        return options?.Temperature == 0 ? DecodingStrategies.Greedy : DecodingStrategies.Find(defaultStrategy);
    }

    /// <summary>
    /// The first sampling option <paramref name="options"/> sets (by its request key), or null: temperature other
    /// than 0, top_p, top_k, seed, frequency_penalty, presence_penalty, min_p, repeat_penalty.
    /// </summary>
    public static string? SamplingOptionIn(ChatOptions? options)
    {
        if (options is null)
            return null;
        if (options.Temperature is { } temperature && temperature != 0)
            return "temperature";
        if (options.TopP is not null)
            return "top_p";
        if (options.TopK is not null)
            return "top_k";
        if (options.Seed is not null)
            return "seed";
        if (options.FrequencyPenalty is not null)
            return "frequency_penalty";
        if (options.PresencePenalty is not null)
            return "presence_penalty";
        if (GetString(options, MinPKey) is not null)
            return MinPKey;
        return GetString(options, RepeatPenaltyKey) is not null ? RepeatPenaltyKey : null;
    }

    /// <summary>The engine request for a rendered prompt (validated when generation starts; callers may validate earlier).</summary>
    public static GenerationRequest CreateRequest(string promptText, IReadOnlyList<int> promptTokens, ChatOptions? options, LlamaChatClientOptions clientOptions, IReadOnlyList<string> formatStops, StrategyDescriptor strategy)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        var stops = new List<string>(formatStops);
        if (options?.StopSequences is { } requested)
            stops.AddRange(requested);

        DecodingStrategies.EnsureSamplingApplies(strategy, SamplingOptionIn(options));
        var sampling = strategy.AcceptsSampling ? CreateSampling(options) : null;
        var request = new GenerationRequest
        {
            Prompt = promptText,
            PromptTokens = promptTokens,
            TopLogprobs = GetTopLogprobs(options),
            LogitBias = GetLogitBias(options),
            Trace = GetString(options, DecodingTraceKey) switch
            {
                null or "false" or "False" => null,
                "true" or "True" => new DecodingTrace(),
                var other => throw new AgentHostException(ErrorKind.InvalidArgument, $"{DecodingTraceKey} must be true or false, not '{other}'.") { Parameter = DecodingTraceKey },
            },
        };
        // Refused here, before the request waits for a slot, by the engine's rule.
        if (strategy != DecodingStrategies.Greedy && strategy != DecodingStrategies.Sample)
            request.RefuseTokenLevelFields(strategy.Name);
        return request with
        {
            Prompt = promptText,
            PromptTokens = promptTokens,
            MaxTokens = options?.MaxOutputTokens ?? clientOptions.MaxTokens,
            Stop = stops,
            Sampling = sampling,
            ReusePrefix = clientOptions.PromptCache,
        };
    }

    private static SamplingOptions? CreateSampling(ChatOptions? options)
    {
        if (options is null)
            return null;
        var minP = GetFloat(options, MinPKey);
        var repeatPenalty = GetFloat(options, RepeatPenaltyKey);
        if (options.Temperature is null && options.TopP is null && options.TopK is null && options.Seed is null
            && options.FrequencyPenalty is null && options.PresencePenalty is null && minP is null && repeatPenalty is null)
        {
            return null;
        }

        var defaults = new SamplingOptions();
        return new SamplingOptions
        {
            Temperature = options.Temperature ?? defaults.Temperature,
            TopP = options.TopP ?? defaults.TopP,
            TopK = options.TopK ?? defaults.TopK,
            MinP = minP ?? defaults.MinP,
            RepeatPenalty = repeatPenalty ?? defaults.RepeatPenalty,
            FrequencyPenalty = options.FrequencyPenalty ?? defaults.FrequencyPenalty,
            PresencePenalty = options.PresencePenalty ?? defaults.PresencePenalty,
            Seed = options.Seed is { } seed ? unchecked((ulong)seed) : null,
        };
    }

    private static int? GetTopLogprobs(ChatOptions? options)
    {
        if (GetString(options, TopLogprobsKey) is not { } text)
            return null;
        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var top) && top is >= 0 and <= GenerationRequest.MaxTopLogprobs ? top
            : throw new AgentHostException(ErrorKind.InvalidArgument, $"top_logprobs must be a whole number from 0 to {GenerationRequest.MaxTopLogprobs}, not '{text}'.") { Parameter = TopLogprobsKey };
    }

    private static IReadOnlyDictionary<int, float>? GetLogitBias(ChatOptions? options)
    {
        if (options?.AdditionalProperties?.TryGetValue(LogitBiasKey, out var value) != true || value is null)
            return null;
        switch (value)
        {
            case IReadOnlyDictionary<int, float> typed:
                return typed;
            case JsonElement { ValueKind: JsonValueKind.Object } json:
                var bias = new Dictionary<int, float>();
                foreach (var entry in json.EnumerateObject())
                {
                    if (bias.Count == GenerationRequest.MaxLogitBiasEntries)
                        throw new AgentHostException(ErrorKind.InvalidArgument, $"logit_bias holds more than {GenerationRequest.MaxLogitBiasEntries} entries.") { Parameter = LogitBiasKey };
                    if (!int.TryParse(entry.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var token))
                        throw new AgentHostException(ErrorKind.InvalidArgument, $"logit_bias keys must be token ids (whole numbers), not '{entry.Name}'.") { Parameter = LogitBiasKey };
                    if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetDouble(out var number))
                        throw new AgentHostException(ErrorKind.InvalidArgument, $"logit_bias for token {token} must be a number.") { Parameter = LogitBiasKey };
                    bias[token] = (float)Math.Clamp(number, -1000, 1000);   // out of range is refused by the request's validation
                }
                return bias;
            default:
                throw new AgentHostException(ErrorKind.InvalidArgument, "logit_bias must map token ids to numbers.") { Parameter = LogitBiasKey };
        }
    }

    internal static string? GetString(ChatOptions? options, string key)
        => options?.AdditionalProperties?.TryGetValue(key, out var value) == true && value is not null ? ToInvariantString(key, value) : null;

    internal static float? GetFloat(ChatOptions options, string key)
    {
        if (GetString(options, key) is not { } text)
            return null;
        if (!float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Option '{key}' must be a number, not '{text}'.") { Parameter = key };
        return value;
    }

    /// <summary>Option values arrive as strings, numbers, booleans or JSON elements (SK's settings round trip).</summary>
    private static string ToInvariantString(string key, object? value) => value switch
    {
        null => throw new AgentHostException(ErrorKind.InvalidArgument, $"Option '{key}' has no value.") { Parameter = key },
        string text => text,
        bool flag => flag ? "true" : "false",
        IFormattable number => number.ToString(null, CultureInfo.InvariantCulture),
        JsonElement { ValueKind: JsonValueKind.String } element => element.GetString()!,
        JsonElement { ValueKind: JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False } element => element.GetRawText(),
        _ => throw new AgentHostException(ErrorKind.InvalidArgument, $"Option '{key}' must be a string, number or boolean.") { Parameter = key },
    };
}
