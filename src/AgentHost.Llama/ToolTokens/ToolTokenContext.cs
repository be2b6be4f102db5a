namespace AgentHost.Llama.ToolTokens;

/// <summary>
/// What a tool-token head reads at a position: the final hidden state h, and, with a context window of K
/// tokens, also the mean of the last K hidden states (h included), <c>[h ; mean]</c>. The window is
/// AgentHost's addition to ToolkenGPT: a small model's h says that a number comes next, but not which
/// operation the sentence described, so a head on h alone does not carry over to sentences it has not seen.
/// Hidden states are pushed in text order, one per token; the same class builds training and inference features.
/// </summary>
public sealed class ToolTokenContext
{
    /// <summary>The window <c>toolkens train</c> uses unless told otherwise: about a sentence of story text.</summary>
    public const int DefaultWindow = 16;

    private readonly float[] _ring;
    private readonly double[] _sum;   // of the ring's rows, kept as they enter and leave: a step costs O(d), not O(K d)
    private readonly float[] _latest;
    private int _count;
    private int _next;

    /// <summary>Creates the feature builder for hidden size <paramref name="dimension"/> and a window of <paramref name="window"/> tokens (0: h alone).</summary>
    public ToolTokenContext(int dimension, int window)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(window);
        Dimension = dimension;
        Window = window;
        _ring = new float[window * dimension];
        _sum = new double[window > 0 ? dimension : 0];
        _latest = new float[dimension];
    }

    /// <summary>Hidden size d.</summary>
    public int Dimension { get; }

    /// <summary>Tokens averaged into the context part; 0 for the papers' head on h alone.</summary>
    public int Window { get; }

    /// <summary>Length of a feature vector: d, or 2d with a window.</summary>
    public int FeatureSize => FeatureSizeOf(Dimension, Window);

    /// <summary>Length of a feature vector for hidden size <paramref name="dimension"/> and window <paramref name="window"/>.</summary>
    public static int FeatureSizeOf(int dimension, int window) => window > 0 ? 2 * dimension : dimension;

    /// <summary>The hidden size d behind features of length <paramref name="featureSize"/> with window <paramref name="window"/>.</summary>
    public static int HiddenSizeOf(int featureSize, int window) => window > 0 ? featureSize / 2 : featureSize;

    /// <summary>Forgets the text so far (a new line or generation).</summary>
    public void Reset()
    {
        _count = 0;
        _next = 0;
        Array.Clear(_sum);
    }

    /// <summary>Adds the hidden state of the next token of the text.</summary>
    public void Push(ReadOnlySpan<float> hidden)
    {
        if (hidden.Length != Dimension)
            throw new ArgumentException($"A hidden state has {Dimension} values, not {hidden.Length}.", nameof(hidden));
        hidden.CopyTo(_latest);
        _count++;
        if (Window == 0)
            return;
        var row = _ring.AsSpan(_next * Dimension, Dimension);
        var leaving = _count > Window;
        for (var k = 0; k < Dimension; k++)
            _sum[k] += hidden[k] - (leaving ? row[k] : 0.0);
        hidden.CopyTo(row);
        _next = (_next + 1) % Window;
    }

    /// <summary>Writes the features of the last pushed token: its h, then the mean of the window's hidden states.</summary>
    public void Write(Span<float> features)
    {
        if (_count == 0)
            throw new InvalidOperationException("No hidden state was pushed.");
        if (features.Length != FeatureSize)
            throw new ArgumentException($"The features have {FeatureSize} values, not {features.Length}.", nameof(features));
        _latest.CopyTo(features);
        if (Window == 0)
            return;
        var mean = features[Dimension..];
        var held = Math.Min(_count, Window);
        for (var k = 0; k < Dimension; k++)
            mean[k] = (float)(_sum[k] / held);
    }

    /// <summary>A prior of [tools x d] widened to the features: the context part starts at zero.</summary>
    public static float[] WidenPrior(float[] prior, int tools, int dimension, int window)
    {
        ArgumentNullException.ThrowIfNull(prior);
        if (prior.Length != tools * dimension)
            throw new ArgumentException($"W0 must have {tools} x {dimension} values.", nameof(prior));
        var size = FeatureSizeOf(dimension, window);
        if (size == dimension)
            return prior;
        var widened = new float[tools * size];
        for (var i = 0; i < tools; i++)
            prior.AsSpan(i * dimension, dimension).CopyTo(widened.AsSpan(i * size));
        return widened;
    }
}
