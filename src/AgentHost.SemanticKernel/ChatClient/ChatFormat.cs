using AgentHost.Llama.Models;
using Microsoft.Extensions.AI;

namespace AgentHost.SemanticKernel.ChatClient;

// TEMPORARY until the chat-format catalog lands: plain text turns only.
/// <summary>Renders conversations for a model.</summary>
public sealed class ChatFormat
{
    /// <summary>Format name.</summary>
    public string Name => "plain";

    /// <summary>Text that ends an assistant turn.</summary>
    public IReadOnlyList<string> StopSequences { get; } = ["\nUser:"];

    /// <summary>Picks the format for a model.</summary>
    public static ChatFormat Resolve(LlamaModel model, string? name, string? directory) => new();

    /// <summary>Renders a conversation.</summary>
    public RenderedPrompt Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var text = string.Concat(messages.Select(m => m.Role == ChatRole.Assistant ? $"Assistant: {m.Text}\n" : $"{(m.Role == ChatRole.System ? "" : "User: ")}{m.Text}\n"));
        return new RenderedPrompt(addGenerationPrompt ? text + "Assistant:" : text);
    }
}

/// <summary>A rendered prompt.</summary>
public sealed record RenderedPrompt(string Text)
{
    /// <summary>Tokenizes it.</summary>
    public int[] Tokenize(LlamaModel model) => model.Tokenize(Text, model.Vocabulary.AddBos);
}
