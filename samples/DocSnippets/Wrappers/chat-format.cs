using AgentHost.Extensions.AI.Chat;
using AgentHost.Llama.Models;
using Microsoft.Extensions.AI;
// Wrapper "chat-format": a loaded model, the messages and the tools (AIFunctionDeclaration) to render.
internal static class __NAME__
{
    public static async Task RunAsync(LlamaModel model, ChatFormatCatalog catalog, IReadOnlyList<ChatMessage> messages, IReadOnlyList<AIFunctionDeclaration> tools)
    {
/*SNIPPET*/
    }
}
