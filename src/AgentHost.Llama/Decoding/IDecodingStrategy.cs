using AgentHost.Llama.Engine;

namespace AgentHost.Llama.Decoding;

/// <summary>
/// A decoding strategy: turns a request into tokens on a session. Every strategy (plain, token recycling, lookup,
/// cautious, tool tokens) implements this and reports its statistics in the common result. A strategy is a step
/// machine: each step it adds its tokens to the session's batch and awaits <see cref="InferenceSession.DecodeAsync"/>;
/// on a standalone session the decode runs at once, in the engine it is one shared decode for every request.
/// <see cref="GenerateAsync"/> runs on the model's scheduler thread.
/// </summary>
public interface IDecodingStrategy
{
    /// <summary>Name used on the command line and in results (e.g. <c>greedy</c>).</summary>
    string Name { get; }

    /// <summary>
    /// How many sequences a request needs (its own, plus scratch sequences for trials, draft leaves or argument
    /// mode), given that the context has <paramref name="available"/>. The engine waits until that many are free.
    /// </summary>
    int SequencesWanted(int available) => 1;

    /// <summary>
    /// KV cells a request needs beyond its prompt and output, at most (draft trees, trials, argument mode): the engine
    /// reserves them, so the request's scratch work always fits the shared context.
    /// </summary>
    int ScratchCells(int promptTokens, int maxTokens, int batchCapacity) => 0;

    /// <summary>Generates on <paramref name="session"/>; <paramref name="onText"/> receives streamed text.</summary>
    ValueTask<GenerationResult> GenerateAsync(InferenceSession session, GenerationRequest request, Action<string>? onText, CancellationToken cancellationToken);
}
