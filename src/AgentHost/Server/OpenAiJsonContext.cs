using System.Text.Json;
using System.Text.Json.Serialization;

namespace AgentHost.Server;

/// <summary>
/// The source-generated JSON of the OpenAI layer: snake_case names, and strict readers for every scalar
/// (<see cref="OpenAiJsonConverters"/>) so that a value of the wrong kind is a <see cref="JsonFieldException"/> naming what was expected.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    Converters = [typeof(StrictStringConverter), typeof(StrictInt32Converter), typeof(StrictInt64Converter), typeof(StrictDoubleConverter), typeof(StrictBooleanConverter)])]
[JsonSerializable(typeof(ChatCompletionRequest))]
[JsonSerializable(typeof(CompletionRequest))]
[JsonSerializable(typeof(EmbeddingRequest))]
[JsonSerializable(typeof(ChatCompletionResponse))]
[JsonSerializable(typeof(ChatCompletionChunk))]
[JsonSerializable(typeof(CompletionResponse))]
[JsonSerializable(typeof(EmbeddingResponse))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(StrategyList))]
[JsonSerializable(typeof(AgentList))]
[JsonSerializable(typeof(AgentRunRequest))]
[JsonSerializable(typeof(AgentRunResponse))]
[JsonSerializable(typeof(HealthBody))]
[JsonSerializable(typeof(ApplyTemplateResponse))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(float[]))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(Dictionary<string, JsonElement>))]
internal sealed partial class OpenAiJsonContext : JsonSerializerContext;
