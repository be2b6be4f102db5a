namespace AgentHost.Llama.Decoding.Speculative;

/// <summary>
/// C(b): the time of a speculative step that verifies b tokens over that of a plain one-token step,
/// learned from the steps sessions really run (no calibration decodes). One per loaded model, touched
/// only on its scheduler thread. Until a size has been measured a prior stands in: cheap enough that
/// the planner tries the size (which measures it), never cheaper than a measured smaller size.
/// </summary>
public sealed class VerificationCosts
{
    /// <summary>Largest batch size tracked; bigger batches share its slot.</summary>
    public const int MaxBatch = 128;

    /// <summary>Samples of a size before its measurement replaces the prior.</summary>
    public const int MinSamples = 3;

    /// <summary>Steps after which a plain step is due again, so that C(1) follows the machine's load and the context's growth.</summary>
    public const int PlainStepEvery = 32;

    private const int Window = 16;

    private readonly double[][] _times = new double[MaxBatch + 1][];
    private readonly int[] _counts = new int[MaxBatch + 1];
    private readonly double[] _medians = new double[MaxBatch + 1];
    private readonly double[] _scratch = new double[Window];
    private long _steps;
    private long _lastPlainStep;

    /// <summary>The prior: each extra token costs a tenth of a plain step.</summary>
    public static double Prior(int batch) => 1 + 0.1 * (batch - 1);

    /// <summary>Whether a plain (one-token) step should run now: C(1) is not measured yet, or not lately.</summary>
    public bool PlainStepDue => _counts[1] < MinSamples || _steps - _lastPlainStep >= PlainStepEvery;

    /// <summary>Records the wall time of a step that verified <paramref name="batch"/> tokens.</summary>
    public void Record(int batch, double milliseconds)
    {
        var b = Math.Clamp(batch, 1, MaxBatch);
        var ring = _times[b] ??= new double[Window];
        ring[_counts[b] % Window] = milliseconds;
        _counts[b]++;
        var n = Math.Min(_counts[b], Window);
        ring.AsSpan(0, n).CopyTo(_scratch);
        Array.Sort(_scratch, 0, n);
        _medians[b] = _scratch[n / 2];
        _steps++;
        if (b == 1)
            _lastPlainStep = _steps;
    }

    /// <summary>Whether C(<paramref name="batch"/>) is measured (and C(1) too).</summary>
    public bool IsMeasured(int batch) => _counts[1] >= MinSamples && _counts[Math.Clamp(batch, 1, MaxBatch)] >= MinSamples;

    /// <summary>
    /// C(<paramref name="batch"/>): the median measured step time over the median plain one, at least
    /// 1; where not measured, the prior or the C of the nearest measured smaller batch, whichever is more.
    /// </summary>
    public double Cost(int batch)
    {
        var b = Math.Clamp(batch, 1, MaxBatch);
        if (b == 1)
            return 1;
        if (IsMeasured(b))
            return Math.Max(1, _medians[b] / _medians[1]);
        var cost = Prior(b);
        if (_counts[1] < MinSamples)
            return cost;
        for (var smaller = b - 1; smaller > 1; smaller--)
        {
            if (_counts[smaller] >= MinSamples)
                return Math.Max(cost, _medians[smaller] / _medians[1]);
        }
        return cost;
    }

    /// <summary>Median time of a plain step in milliseconds, or NaN before one ran.</summary>
    public double PlainStepMilliseconds => _counts[1] > 0 ? _medians[1] : double.NaN;
}
