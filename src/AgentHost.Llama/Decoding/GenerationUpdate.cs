namespace AgentHost.Llama.Decoding;

/// <summary>One item of a streamed generation: a piece of text as soon as it is safe to show, or, last, the result.</summary>
/// <param name="Text">The new text (empty in the last update).</param>
/// <param name="Result">The finished generation, in the last update only.</param>
public sealed record GenerationUpdate(string Text, GenerationResult? Result = null);
