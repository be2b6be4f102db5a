using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.ToolTokens;

/// <summary>Builds the prior W0 [tools x d] of a tool-token head from the tools' names (TokenLearning).</summary>
public static class ToolTokenPriors
{
    /// <summary>TokenLearning's scale for the hidden-state prior, 1/sqrt(5120) (LLaMA-13B's hidden size).</summary>
    public static readonly float DefaultScale = 1 / MathF.Sqrt(5120);

    /// <summary>
    /// Builds the prior of kind <paramref name="kind"/> for <paramref name="tools"/> (the hidden-state prior clears the session's KV cache);
    /// <see cref="ToolTokenPrior.None"/> is ToolkenGPT's random start, drawn from <paramref name="seed"/> (<see cref="Random(int, int, int)"/>).
    /// </summary>
    public static Task<float[]> BuildAsync(ToolTokenPrior kind, InferenceSession session, IReadOnlyList<string> tools, float scale, int seed = 1, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(tools);
        ToolTokenDataset.RequireHiddenStates(session);
        return kind switch
        {
            ToolTokenPrior.None => Task.FromResult(Random(tools.Count, Dimension(session), seed)),
            ToolTokenPrior.HiddenStates => session.RunAsync(s => FromHiddenStates(s, tools, scale, cancellationToken), cancellationToken),
            _ => Task.FromResult(FromOutputEmbeddings(session.Model, tools)),
        };
    }

    /// <summary>
    /// ToolkenGPT's start, <c>nn.Linear(d, tools, bias=False)</c>'s default initialisation: every weight uniform in
    /// [-1/sqrt(d), 1/sqrt(d)]; deterministic for <paramref name="seed"/> (the values differ from PyTorch's generator).
    /// </summary>
    public static float[] Random(int tools, int dimension, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tools);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        var random = new Random(seed);
        var bound = 1 / Math.Sqrt(dimension);
        var weights = new float[tools * dimension];
        for (var i = 0; i < weights.Length; i++)
            weights[i] = (float)((random.NextDouble() * 2 - 1) * bound);
        return weights;
    }

    /// <summary>Code variant: run the model on the bare name (no BOS), average the final hidden states, normalise, scale.</summary>
    public static float[] FromHiddenStates(InferenceSession session, IReadOnlyList<string> tools, float scale, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(tools);
        var d = Dimension(session);
        var prior = new float[tools.Count * d];
        for (var t = 0; t < tools.Count; t++)
        {
            var tokens = NameTokens(session.Model, tools[t]);
            session.Reset();
            session.ClearBatch();
            for (var i = 0; i < tokens.Length; i++)
                session.AddToBatch(tokens[i], i, 0, logits: true);
            session.Decode(cancellationToken);
            var row = prior.AsSpan(t * d, d);
            for (var i = 0; i < tokens.Length; i++)
            {
                var h = session.GetHiddenState(i);
                for (var k = 0; k < d; k++)
                    row[k] += h[k] / tokens.Length;
            }
            Normalize(row, scale);
        }
        session.Reset();
        return prior;
    }

    /// <summary>
    /// Paper variant: the mean of the rows of <c>output.weight</c> (or the tied <c>token_embd.weight</c>) for the
    /// name's tokens, dequantized from the GGUF file. Its score W0 . h is the mean logit of the name's tokens.
    /// </summary>
    public static float[] FromOutputEmbeddings(LlamaModel model, IReadOnlyList<string> tools)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tools);
        var tensor = model.File.FindTensor("output.weight") ?? model.File.FindTensor("token_embd.weight")
            ?? throw new AgentHostException(ErrorKind.InvalidModelFile, $"Model '{model.Name}' has neither output.weight nor token_embd.weight.");
        var d = (int)tensor.Dimensions[0];
        var prior = new float[tools.Count * d];
        for (var t = 0; t < tools.Count; t++)
        {
            var tokens = NameTokens(model, tools[t]);
            var row = prior.AsSpan(t * d, d);
            foreach (var token in tokens)
            {
                var embedding = model.File.ReadRows(tensor, token, 1);
                for (var k = 0; k < d; k++)
                    row[k] += embedding[k] / tokens.Length;
            }
        }
        return prior;
    }

    private static int[] NameTokens(LlamaModel model, string name)
    {
        var tokens = model.Tokenize(name, addBos: false);
        if (tokens.Length == 0)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Tool name '{name}' has no tokens.");
        return tokens;
    }

    private static int Dimension(InferenceSession session) => session.Model.EmbeddingSize;

    private static void Normalize(Span<float> row, float scale)
    {
        var norm = 0.0;
        foreach (var v in row)
            norm += v * v;
        norm = Math.Sqrt(norm);
        if (norm == 0)
            return;
        for (var k = 0; k < row.Length; k++)
            row[k] = (float)(row[k] / norm * scale);
    }
}
