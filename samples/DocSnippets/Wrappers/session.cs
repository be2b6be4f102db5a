using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Grammar;
using AgentHost.Llama.Models;
// Wrapper "session": a loaded model and a session on it (LlamaModel.Load, model.CreateSessionAsync()).
internal static class __NAME__
{
    public static async Task RunAsync(LlamaModel model, InferenceSession session)
    {
/*SNIPPET*/
    }
}
