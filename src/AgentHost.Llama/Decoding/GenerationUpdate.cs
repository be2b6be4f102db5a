namespace AgentHost.Llama.Decoding;

/// <summary>One item of a streamed generation: a piece of text as soon as it is safe to show, or, last, the result.</summary>
/// <param name="Text">The new text (empty in the last update).</param>
/// <param name="Result">The finished generation, in the last update only.</param>
/// <param name="Logprobs">The log-probabilities of the tokens emitted since the previous update, when the request asked for them.</param>
public sealed record GenerationUpdate(string Text, GenerationResult? Result = null, IReadOnlyList<TokenLogprob>? Logprobs = null);
