using System.Diagnostics;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Models;
using LLama;
using LLama.Native;

namespace AgentHost.Bench;

/// <summary>
/// The <c>raw</c> bench row, the limit greedy is measured against: a bare llama_decode loop through LLamaSharp's
/// native API on a context with the model's own parameters (the ones its sessions get), prefill in one batch, then
/// argmax and one token per decode until max tokens or end of generation. No strategy, output or stop machinery.
/// </summary>
internal static class RawDecodeLoop
{
    /// <summary>Greedy tokens of every prompt and the wall time of the whole loop (context creation excluded).</summary>
    public static Task<(int Tokens, TimeSpan Elapsed, IReadOnlyList<IReadOnlyList<int>> Outputs)> RunAsync(
        LlamaModel model, IReadOnlyList<string> prompts, int maxTokens, CancellationToken cancellationToken)
        // On the model's scheduler thread, like every session's decodes (one OpenMP thread team).
        => model.Scheduler.RunAsync(() =>
        {
            using var context = model.Weights.CreateContext(model.Parameters);
            var handle = context.NativeHandle;
            var batch = new LLamaBatch();
            var outputs = new List<IReadOnlyList<int>>(prompts.Count);
            var tokens = 0;
            var clock = Stopwatch.StartNew();
            foreach (var prompt in prompts)
            {
                cancellationToken.ThrowIfCancellationRequested();
                handle.MemoryClear(true);
                var promptTokens = model.Tokenize(prompt, model.Vocabulary.AddBos);
                batch.Clear();
                for (var i = 0; i < promptTokens.Length; i++)
                    batch.Add((LLamaToken)promptTokens[i], i, LLamaSeqId.Zero, i == promptTokens.Length - 1);
                Decode(handle, batch);
                var logitsIndex = batch.TokenCount - 1;
                var output = new List<int>(maxTokens);
                for (var position = promptTokens.Length; output.Count < maxTokens; position++)
                {
                    var token = TokenSampler.ArgMax(handle.GetLogitsIth(logitsIndex));
                    if (model.Vocabulary.IsEndOfGeneration(token))
                        break;
                    output.Add(token);
                    if (output.Count == maxTokens)
                        break;
                    batch.Clear();
                    logitsIndex = batch.Add((LLamaToken)token, position, LLamaSeqId.Zero, true);
                    Decode(handle, batch);
                }
                tokens += output.Count;
                outputs.Add(output);
            }
            return (tokens, clock.Elapsed, (IReadOnlyList<IReadOnlyList<int>>)outputs);
        }, cancellationToken);

    private static void Decode(SafeLLamaContextHandle handle, LLamaBatch batch)
    {
        var result = handle.Decode(batch);
        if (result != DecodeResult.Ok)
            throw new InvalidOperationException($"llama_decode failed in the raw loop: {result}.");
    }
}
