using AgentHost.Llama.Decoding;
using Microsoft.Extensions.AI;

namespace AgentHost.Extensions.AI;

/// <summary>
/// The one mapping from a generation's outcome to Microsoft.Extensions.AI's terms (usage, finish reason),
/// shared by <see cref="LlamaChatClient"/> and every layer above it (the OpenAI server, telemetry).
/// </summary>
public static class GenerationMapping
{
    /// <summary>The usage of a generation: prompt, cached prompt, generated and total tokens.</summary>
    /// <param name="stats">The generation's statistics.</param>
    /// <returns>The usage.</returns>
    public static UsageDetails ToUsage(this GenerationStats stats)
    {
        ArgumentNullException.ThrowIfNull(stats);
        return new UsageDetails
        {
            InputTokenCount = stats.PromptTokens,
            OutputTokenCount = stats.GeneratedTokens,
            TotalTokenCount = stats.PromptTokens + stats.GeneratedTokens,
            CachedInputTokenCount = stats.CachedPromptTokens,
        };
    }

    /// <summary>Why a reply ended: <see cref="ChatFinishReason.Length"/> for a token limit or a full context, else <see cref="ChatFinishReason.Stop"/>.</summary>
    /// <param name="reason">Why the generation stopped.</param>
    /// <param name="toolCalls">Whether the reply holds tool calls, which makes it <see cref="ChatFinishReason.ToolCalls"/>.</param>
    /// <returns>The finish reason.</returns>
    public static ChatFinishReason ToFinishReason(this StopReason reason, bool toolCalls = false) => toolCalls ? ChatFinishReason.ToolCalls : reason switch
    {
        StopReason.MaxTokens or StopReason.ContextFull => ChatFinishReason.Length,
        _ => ChatFinishReason.Stop,
    };
}
