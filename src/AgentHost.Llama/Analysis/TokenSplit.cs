using AgentHost.Llama.Models;

namespace AgentHost.Llama.Analysis;

/// <summary>Splits the tokens of a prompt followed by a continuation, tokenized together as the model would read them.</summary>
public static class TokenSplit
{
    /// <summary>
    /// Tokenizes <paramref name="prompt"/> + <paramref name="continuation"/> (BOS as the model wants) and splits it
    /// where the prompt's own tokens stop matching; a token spanning the boundary goes to the continuation.
    /// </summary>
    public static (int[] Prompt, int[] Continuation) Split(LlamaModel model, string prompt, string continuation)
    {
        ArgumentNullException.ThrowIfNull(model);
        Guard.Require(!string.IsNullOrEmpty(prompt), "The prompt is empty.");
        Guard.Require(!string.IsNullOrEmpty(continuation), "The response to analyse is empty.");
        var full = model.Tokenize(prompt + continuation, model.Vocabulary.AddBos);
        var own = model.Tokenize(prompt, model.Vocabulary.AddBos);
        var common = full.AsSpan().CommonPrefixLength(own);
        Guard.Require(common >= 1, "The prompt shares no token with the prompt followed by the response; give a longer prompt.");
        Guard.Require(common < full.Length, "The response adds no token to the prompt.");
        return (full[..common], full[common..]);
    }
}
