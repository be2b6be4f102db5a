using System.Diagnostics;

namespace AgentHost.Extensions.AI;

/// <summary>
/// The names under which AgentHost's libraries report what they do, for OpenTelemetry
/// (<c>AddMeter(AgentHostTelemetry.MeterName)</c>, <c>AddSource(AgentHostTelemetry.ActivitySourceName)</c>) or any
/// <see cref="System.Diagnostics.Metrics.MeterListener"/> / <see cref="ActivityListener"/>. Every generation of a
/// <see cref="LlamaChatClient"/> and every batch of a <see cref="LlamaEmbeddingGenerator"/> is one span with the
/// OpenTelemetry GenAI attributes (<c>gen_ai.operation.name</c>, <c>gen_ai.request.model</c>,
/// <c>gen_ai.usage.input_tokens</c> ...) and updates the instruments named here. A remote catalog entry's client
/// (<see cref="Remote.RemoteChatClient"/>) is traced by MEAI's OpenTelemetry client under the same names
/// (<c>gen_ai.client.token.usage</c>, <c>gen_ai.client.operation.duration</c>).
/// </summary>
public static class AgentHostTelemetry
{
    /// <summary>Name of the <see cref="System.Diagnostics.Metrics.Meter"/> (created through the container's <c>IMeterFactory</c> when one is given).</summary>
    public const string MeterName = "AgentHost";

    /// <summary>Name of the <see cref="System.Diagnostics.ActivitySource"/>.</summary>
    public const string ActivitySourceName = "AgentHost";

    /// <summary>Counter: generations and embedding batches finished, by <c>model</c>, <c>operation</c> and <c>strategy</c>.</summary>
    public const string Generations = "agenthost.generations";

    /// <summary>Counter: prompt tokens of finished generations (and embedded inputs), by <c>model</c>.</summary>
    public const string PromptTokens = "agenthost.prompt_tokens";

    /// <summary>Counter: prompt tokens taken from the prompt cache instead of being decoded, by <c>model</c>.</summary>
    public const string CachedPromptTokens = "agenthost.cached_prompt_tokens";

    /// <summary>Counter: generated tokens, by <c>model</c>.</summary>
    public const string CompletionTokens = "agenthost.completion_tokens";

    /// <summary>Counter (seconds): wall time spent generating, prefill included, by <c>model</c>.</summary>
    public const string GenerationSeconds = "agenthost.generation_seconds";

    /// <summary>Counter: verification forwards of speculative strategies (recycling, lookup), by <c>model</c>.</summary>
    public const string SpeculativeForwards = "agenthost.speculative_forwards";

    /// <summary>Counter: tokens emitted by those forwards, by <c>model</c>.</summary>
    public const string SpeculativeTokens = "agenthost.speculative_tokens";

    /// <summary>Up-down counter: generations started and not yet finished (waiting for or holding a slot), by <c>model</c>.</summary>
    public const string ActiveGenerations = "agenthost.active_generations";

    /// <summary>Histogram: generated tokens per second of one generation, by <c>model</c>.</summary>
    public const string TokensPerSecond = "agenthost.tokens_per_second";

    /// <summary>Histogram: mean tokens accepted per verification forward of one speculative generation, by <c>model</c>.</summary>
    public const string SpeculativeMat = "agenthost.speculative_mat";

    /// <summary>Histogram (seconds, GenAI convention): from the request until its first token was decoded (queue wait and prefill included).</summary>
    public const string TimeToFirstToken = "gen_ai.server.time_to_first_token";

    /// <summary>Histogram (seconds, GenAI convention): time per generated token after the first, of one generation.</summary>
    public const string TimePerOutputToken = "gen_ai.server.time_per_output_token";

    /// <summary>Histogram (seconds, GenAI convention): the whole request, from the call until the last token.</summary>
    public const string RequestDuration = "gen_ai.server.request.duration";

    internal static readonly ActivitySource ActivitySource = new(ActivitySourceName, typeof(AgentHostTelemetry).Assembly.GetName().Version?.ToString());
}
