namespace AgentHost.Llama.ToolTokens;

/// <summary>Progress of training: the epoch just finished and its mean batch loss.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Epochs">Total epochs.</param>
/// <param name="Loss">Mean loss of the epoch's steps.</param>
/// <param name="HeldOutF1">F1 on the held-out lines after this epoch, when the trainer has them.</param>
public sealed record ToolTokenTrainingProgress(int Epoch, int Epochs, double Loss, double? HeldOutF1 = null);

/// <summary>
/// Trains W of a tool-token head on a cached <see cref="ToolTokenDataset"/> (the model stays frozen):
/// cross-entropy over [vocabulary ; tools] with <c>z_tool = W h</c> and
/// <c>LSE_all = log(exp(LSE_vocab) + sum exp(z_tool))</c>, so <c>dL/dW_i = (p_i - [label = i]) h</c>, plus the
/// penalty towards W0; Adam; deterministic for a seed. Only W changes. Steps take <see cref="ToolTokenTrainingOptions.BatchSize"/>
/// positions, or one corpus line each (<see cref="ToolTokenTrainingOptions.PerSequence"/>, ToolkenGPT's trainer). Given held-out
/// lines, the weights of the epoch with the best held-out F1 are kept (ToolkenGPT saves every epoch and uses the best one);
/// otherwise the last epoch's.
/// </summary>
public sealed class ToolTokenTrainer
{
    private readonly ToolTokenDataset _data;
    private readonly float[] _prior;
    private readonly ToolTokenTrainingOptions _options;
    private readonly int[] _positions;
    private readonly int[][] _sequences;
    private readonly double[] _scores;
    private readonly ToolTokenDataset? _heldOut;

    /// <summary>
    /// Creates a trainer starting from (and regularised towards) <paramref name="prior"/>: [tools x d] as
    /// <see cref="ToolTokenPriors"/> builds it (widened with zeros for a context window), or already [tools x features].
    /// </summary>
    /// <param name="data">The training positions.</param>
    /// <param name="prior">W0.</param>
    /// <param name="options">Training settings.</param>
    /// <param name="heldOut">Held-out lines read the same way as <paramref name="data"/>: the best epoch on them is kept; null keeps the last.</param>
    public ToolTokenTrainer(ToolTokenDataset data, float[] prior, ToolTokenTrainingOptions options, ToolTokenDataset? heldOut = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(prior);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var hidden = ToolTokenContext.HiddenSizeOf(data.Dimension, data.ContextWindow);
        if (prior.Length == data.Tools.Count * hidden)
            prior = ToolTokenContext.WidenPrior(prior, data.Tools.Count, hidden, data.ContextWindow);
        if (prior.Length != data.Tools.Count * data.Dimension)
            throw new ArgumentException($"W0 must have {data.Tools.Count} x {data.Dimension} values (or {data.Tools.Count} x {hidden}).", nameof(prior));
        _data = data;
        _prior = prior;
        _options = options;
        var selected = new List<int>();
        for (var p = 0; p < data.Count; p++)
        {
            if (!options.OnlyToolTokens || data.Labels[p] >= data.VocabularySize)
                selected.Add(p);
        }
        if (selected.Count == 0)
            throw new AgentHostException(ErrorKind.InvalidArgument, "The corpus has no positions to train on (no tool calls were found in it).");
        _positions = [.. selected];
        _scores = new double[data.Tools.Count];
        // A line's selected positions: the positions between its start and the next line's.
        var starts = data.ExampleStarts;
        _sequences = [.. starts.Select((start, e) => _positions.Where(p => p >= start && p < (e + 1 < starts.Length ? starts[e + 1] : data.Count)).ToArray()).Where(s => s.Length > 0)];
        if (heldOut is not null && (heldOut.Dimension != data.Dimension || heldOut.ContextWindow != data.ContextWindow || !heldOut.Tools.SequenceEqual(data.Tools)))
            throw new ArgumentException("The held-out lines must be read with the training data's features, context window and tools.", nameof(heldOut));
        _heldOut = heldOut;
    }

    /// <summary>The epoch whose weights <see cref="Train"/> returned (1-based; the last one without held-out lines).</summary>
    public int BestEpoch { get; private set; }

    /// <summary>Held-out F1 of the returned weights (at bias 0, as ToolkenGPT's trainer scores), or null without held-out lines.</summary>
    public double? HeldOutF1 { get; private set; }

    /// <summary>W0 as the head stores it: [tools x features].</summary>
    public float[] Prior => _prior;

    /// <summary>Positions the loss is taken over.</summary>
    public int PositionCount => _positions.Length;

    /// <summary>
    /// Mean cross-entropy over all training positions plus the penalty, at <paramref name="weights"/>;
    /// when <paramref name="gradient"/> is not empty it receives dLoss/dW.
    /// </summary>
    public double Loss(ReadOnlySpan<float> weights, Span<double> gradient) => Loss(weights, _positions, gradient, regularize: true);

    /// <summary>Mean cross-entropy over all training positions, without the penalty.</summary>
    public double CrossEntropy(ReadOnlySpan<float> weights) => Loss(weights, _positions, [], regularize: false);

    /// <summary>Trains from W0; returns W.</summary>
    public float[] Train(IProgress<ToolTokenTrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var n = _prior.Length;
        var weights = (float[])_prior.Clone();
        var gradient = new double[n];
        var m = new double[n];
        var v = new double[n];
        const double Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-8;
        var random = new Random(_options.Seed);
        var order = (int[])_positions.Clone();
        var sequences = (int[][])_sequences.Clone();
        float[]? best = null;
        BestEpoch = 0;
        HeldOutF1 = null;
        int step = 0, batches;
        for (var epoch = 1; epoch <= _options.Epochs; epoch++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var epochLoss = 0.0;
            batches = 0;
            if (_options.PerSequence)
            {
                random.Shuffle(sequences);
                foreach (var sequence in sequences)
                    epochLoss += Step(sequence);
            }
            else
            {
                random.Shuffle(order);
                for (var start = 0; start < order.Length; start += _options.BatchSize)
                    epochLoss += Step(order.AsSpan(start, Math.Min(_options.BatchSize, order.Length - start)));
            }
            double? f1 = null;
            if (_heldOut is not null)
            {
                f1 = ToolTokenEvaluation.Evaluate(weights, 0, _heldOut).F1;
                if (best is null || f1 > HeldOutF1)
                    (best, BestEpoch, HeldOutF1) = ((float[])weights.Clone(), epoch, f1);
            }
            else
            {
                BestEpoch = epoch;
            }
            progress?.Report(new ToolTokenTrainingProgress(epoch, _options.Epochs, epochLoss / batches, f1));
        }
        return best ?? weights;

        double Step(ReadOnlySpan<int> batch)
        {
            var loss = Loss(weights, batch, gradient, regularize: true);
            batches++;
            step++;
            var correction1 = 1 - Math.Pow(Beta1, step);
            var correction2 = 1 - Math.Pow(Beta2, step);
            for (var i = 0; i < n; i++)
            {
                m[i] = Beta1 * m[i] + (1 - Beta1) * gradient[i];
                v[i] = Beta2 * v[i] + (1 - Beta2) * gradient[i] * gradient[i];
                weights[i] -= (float)(_options.LearningRate * (m[i] / correction1) / (Math.Sqrt(v[i] / correction2) + Epsilon));
            }
            return loss;
        }
    }


    private double Loss(ReadOnlySpan<float> weights, ReadOnlySpan<int> positions, Span<double> gradient, bool regularize)
    {
        var d = _data.Dimension;
        var tools = _data.Tools.Count;
        var vocabulary = _data.VocabularySize;
        if (!gradient.IsEmpty)
            gradient.Clear();
        var total = 0.0;
        foreach (var p in positions)
        {
            var h = _data.FeaturesAt(p);
            var max = (double)_data.VocabLogSumExp[p];
            for (var i = 0; i < tools; i++)
            {
                _scores[i] = ToolTokenHead.Dot(weights.Slice(i * d, d), h);
                max = Math.Max(max, _scores[i]);
            }
            var sum = Math.Exp(_data.VocabLogSumExp[p] - max);
            for (var i = 0; i < tools; i++)
                sum += Math.Exp(_scores[i] - max);
            var lseAll = max + Math.Log(sum);
            var label = _data.Labels[p];
            total += lseAll - (label < vocabulary ? _data.LabelLogit[p] : _scores[label - vocabulary]);
            if (gradient.IsEmpty)
                continue;
            for (var i = 0; i < tools; i++)
            {
                var g = Math.Exp(_scores[i] - lseAll) - (label == vocabulary + i ? 1 : 0);
                var row = gradient.Slice(i * d, d);
                for (var k = 0; k < d; k++)
                    row[k] += g * h[k];
            }
        }
        var count = positions.Length;
        var loss = total / count;
        if (!gradient.IsEmpty)
        {
            for (var i = 0; i < gradient.Length; i++)
                gradient[i] /= count;
        }
        if (regularize && _options.Lambda > 0)
            loss += Penalty(weights, gradient);
        return loss;
    }

    private double Penalty(ReadOnlySpan<float> weights, Span<double> gradient)
    {
        var squared = 0.0;
        for (var i = 0; i < weights.Length; i++)
        {
            var diff = (double)weights[i] - _prior[i];
            squared += diff * diff;
        }
        var lambda = _options.Lambda;
        if (_options.Regularizer == ToolTokenRegularizer.SquaredL2)
        {
            if (!gradient.IsEmpty)
            {
                for (var i = 0; i < weights.Length; i++)
                    gradient[i] += 2 * lambda * ((double)weights[i] - _prior[i]);
            }
            return lambda * squared;
        }
        var norm = Math.Sqrt(squared);
        if (!gradient.IsEmpty && norm > 0)
        {
            for (var i = 0; i < weights.Length; i++)
                gradient[i] += lambda * ((double)weights[i] - _prior[i]) / norm;
        }
        return lambda * norm;
    }
}
