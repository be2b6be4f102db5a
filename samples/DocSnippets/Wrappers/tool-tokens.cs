using AgentHost.Extensions.AI;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;
using AgentHost.Llama.ToolTokens;
using AgentHost.SemanticKernel.ToolTokens;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
// Wrapper "tool-tokens": a model loaded with HiddenStates, a session, a kernel, an AIFunction, the tool's JSON schema, the head's tool slots, a progress sink and a request.
internal static class __NAME__
{
    public static async Task RunAsync(LlamaModel model, InferenceSession session, Kernel kernel, AIFunction aiFunction, string schemaJson, IReadOnlyList<ToolTokenSlot> slots, IProgress<ToolTokenTrainingProgress> progress, GenerationRequest request)
    {
/*SNIPPET*/
    }
}
