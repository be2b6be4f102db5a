using AgentHost.Llama.Engine;

namespace AgentHost.Llama.Decoding;

/// <summary>
/// A decoding strategy: turns a request into tokens on a session. Every strategy (plain, token
/// recycling, cautious, tool tokens) implements this and reports its statistics in the common result.
/// <see cref="Generate"/> runs on the model's scheduler thread.
/// </summary>
public interface IDecodingStrategy
{
    /// <summary>Name used on the command line and in results (e.g. <c>greedy</c>).</summary>
    string Name { get; }

    /// <summary>Generates on <paramref name="session"/>; <paramref name="onText"/> receives streamed text.</summary>
    GenerationResult Generate(InferenceSession session, GenerationRequest request, Action<string>? onText, CancellationToken cancellationToken);
}
