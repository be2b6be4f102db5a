using AgentHost.Extensions.AI.Chat;
using AgentHost.Extensions.AI.Jinja;
using AgentHost.Llama.Models;
using Microsoft.Extensions.AI;
// Wrapper "jinja": the GGUF's chat template text, the messages and tools to render, a clock and the loaded model.
internal static class __NAME__
{
    public static async Task RunAsync(string ggufTemplate, IReadOnlyList<ChatMessage> messages, IReadOnlyList<AIFunctionDeclaration> tools, TimeProvider timeProvider, LlamaModel model)
    {
/*SNIPPET*/
    }
}
