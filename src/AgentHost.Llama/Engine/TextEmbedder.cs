using AgentHost.Llama.Models;

namespace AgentHost.Llama.Engine;

/// <summary>
/// Text embeddings from a generative model: the mean of the final hidden states over the text's tokens,
/// L2-normalised. It owns one session with hidden states on (created on first use); calls are serialised.
/// </summary>
public sealed class TextEmbedder(LlamaModel model) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private InferenceSession? _session;

    /// <summary>The model embedded with.</summary>
    public LlamaModel Model { get; } = model;

    /// <summary>Embeds <paramref name="text"/>; returns the unit vector and the number of tokens it took.</summary>
    public async Task<(float[] Vector, int Tokens)> EmbedAsync(string text, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0)
            throw new AgentHostException(ErrorKind.InvalidArgument, "Cannot embed an empty text.");
        var tokens = Model.Tokenize(text, Model.Vocabulary.AddBos);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _session ??= await Model.CreateSessionAsync(hiddenStates: true, cancellationToken).ConfigureAwait(false);
            return (await _session.RunAsync(session => MeanHiddenState(session, tokens, cancellationToken), cancellationToken).ConfigureAwait(false), tokens.Length);
        }
        finally
        {
            _gate.Release();
        }
    }

    private static float[] MeanHiddenState(InferenceSession session, int[] tokens, CancellationToken cancellationToken)
    {
        if (tokens.Length > session.ContextSize)
            throw new AgentHostException(ErrorKind.ContextOverflow, $"The text is {tokens.Length} tokens but the context holds {session.ContextSize}; shorten it or raise ContextSize.");
        session.Reset();
        float[]? sum = null;
        for (var start = 0; start < tokens.Length; start += session.BatchCapacity)
        {
            var count = Math.Min(session.BatchCapacity, tokens.Length - start);
            session.ClearBatch();
            for (var i = 0; i < count; i++)
                session.AddToBatch(tokens[start + i], start + i, 0, logits: true);
            session.Decode(cancellationToken);
            for (var i = 0; i < count; i++)
            {
                var state = session.GetHiddenState(i);
                sum ??= new float[state.Length];
                for (var d = 0; d < state.Length; d++)
                    sum[d] += state[d];
            }
        }
        session.Reset();
        ArgumentNullException.ThrowIfNull(sum);   // tokens is never empty: Tokenize adds BOS or the text has characters

        // Mean, then unit length (the mean's scale does not matter once normalised).
        var norm = Math.Sqrt(sum.Sum(v => (double)v * v));
        if (norm > 0)
        {
            for (var d = 0; d < sum.Length; d++)
                sum[d] = (float)(sum[d] / norm);
        }
        return sum;
    }

    /// <summary>Frees the session.</summary>
    public void Dispose()
    {
        _session?.Dispose();
        _gate.Dispose();
    }
}
