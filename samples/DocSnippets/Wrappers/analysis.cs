using AgentHost.Llama.Analysis;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;
using AgentHost.SemanticKernel.Analysis;
using Microsoft.SemanticKernel;
// Wrapper "analysis": a session of the analysed model, and the two models a contrastive score compares.
internal static class __NAME__
{
    public static async Task RunAsync(InferenceSession session, Kernel kernel, KernelFunction function, LlamaModel good, LlamaModel bad)
    {
/*SNIPPET*/
    }
}
