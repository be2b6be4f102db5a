using System.Text.Json;
using System.Text.Json.Serialization;
using AgentHost.Llama.Decoding;

namespace AgentHost.Cli;

/// <summary>The JSON shapes the CLI prints (snake_case, as OpenAI-style tools expect).</summary>
internal static class JsonOutput
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);

    /// <summary>The common statistics as a flat object with milliseconds.</summary>
    public static Dictionary<string, object?> Stats(GenerationStats stats)
    {
        var json = new Dictionary<string, object?>
        {
            ["prompt_tokens"] = stats.PromptTokens,
            ["generated_tokens"] = stats.GeneratedTokens,
            ["decode_calls"] = stats.DecodeCalls,
            ["prefill_ms"] = Math.Round(stats.PrefillTime.TotalMilliseconds, 3),
            ["elapsed_ms"] = Math.Round(stats.Elapsed.TotalMilliseconds, 3),
            ["tokens_per_second"] = Math.Round(stats.TokensPerSecond, 1),
            ["seed"] = stats.Seed,
        };
        foreach (var (key, value) in stats.Extra)
            json[key] = value;
        return json;
    }
}
