using AgentHost.Extensions.AI.Chat;
using Microsoft.Extensions.AI;
// Wrapper "tool-call-parser": a chat format, the offered tool names, the generated text deltas and what handles each content.
internal static class __NAME__
{
    public static async Task RunAsync(ChatFormat format, IReadOnlyList<string> toolNames, IEnumerable<string> generatedTextDeltas, Action<AIContent> handle)
    {
/*SNIPPET*/
    }
}
