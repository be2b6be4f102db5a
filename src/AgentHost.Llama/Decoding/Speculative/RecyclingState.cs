using System.Diagnostics;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Decoding.Speculative;

/// <summary>
/// What token recycling keeps per loaded model across requests: the adjacency matrix, the measured
/// verification costs C(b) and the observed rank statistics that <c>auto</c> chooses a template from.
/// </summary>
public sealed class RecyclingState
{
    private const int Misses = TreeTemplate.Width;
    private readonly double[] _rankCounts = new double[TreeTemplate.Width + 1];
    private Dictionary<int, double>? _cost;

    /// <summary>Creates the state for <paramref name="model"/>.</summary>
    public RecyclingState(LlamaModel model)
    {
        Matrix = new AdjacencyMatrix(model.Vocabulary.Count);
        // A weak prior until drafts are observed: the top candidate is right a bit less than half the time.
        _rankCounts[0] = 4;
        _rankCounts[1] = 1;
        _rankCounts[2] = 0.5;
        _rankCounts[Misses] = 4.5;
    }

    /// <summary>The adjacency matrix.</summary>
    public AdjacencyMatrix Matrix { get; }

    /// <summary>The matrix file this state was loaded from, if any.</summary>
    public string? LoadedFrom { get; set; }

    /// <summary>The template <c>auto</c> chose last (kept for the next request).</summary>
    public TreeTemplate? AutoChoice { get; set; }

    /// <summary>Whether C(b) has been measured.</summary>
    public bool HasCosts => _cost is not null;

    /// <summary>Records where the verified token ranked in the candidate row it was drafted from (-1: not there).</summary>
    public void RecordRank(int rank) => _rankCounts[rank < 0 ? Misses : rank]++;

    /// <summary>Estimated probability that the verified token has rank <paramref name="rank"/> in its row.</summary>
    public double RankProbability(int rank)
    {
        var total = 0.0;
        foreach (var count in _rankCounts)
            total += count;
        return _rankCounts[rank] / total;
    }

    /// <summary>
    /// Expected tokens per forward of a template, assuming each node's verified token ranks
    /// independently as observed: 1 (the bonus) + the probability of reaching each node.
    /// </summary>
    public double ExpectedMat(TreeTemplate template)
    {
        Span<double> reach = stackalloc double[template.Size];
        reach[0] = 1;
        var expected = 1.0;
        for (var n = 1; n < template.Size; n++)
        {
            reach[n] = reach[template.Parent[n]] * RankProbability(template.Rank[n]);
            expected += reach[n];
        }
        return expected;
    }

    /// <summary>C(b): decode time of a b-token batch over a 1-token one, as measured on this machine.</summary>
    public double Cost(int size) => _cost is not null && _cost.TryGetValue(size, out var c) ? c : double.NaN;

    /// <summary>
    /// Measures C(b) for <paramref name="sizes"/> once per model and process: median decode times of
    /// chains of b tokens (logits for every token, as verification needs) over single tokens, after a
    /// short prefix. Leaves the session empty.
    /// </summary>
    public void MeasureCosts(InferenceSession session, IEnumerable<int> sizes)
    {
        var wanted = sizes.Append(1).Where(b => b <= session.BatchCapacity).Distinct().Order().ToArray();
        var prefix = Enumerable.Range(0, Math.Min(64, session.ContextSize / 4)).Select(i => 1 + i % (session.Model.Vocabulary.Count - 1)).ToArray();
        session.Reset();
        session.Prefill(prefix, 0);
        var medians = new Dictionary<int, double>();
        var times = new List<double>();
        foreach (var size in wanted)
        {
            if (prefix.Length + size > session.ContextSize)
                continue;
            times.Clear();
            for (var rep = 0; rep < 15; rep++)
            {
                session.ClearBatch();
                for (var i = 0; i < size; i++)
                    session.AddToBatch(1 + (rep + i) % (session.Model.Vocabulary.Count - 1), prefix.Length + i, 0, logits: true);
                var start = Stopwatch.GetTimestamp();
                session.Decode();
                var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                session.TruncateAll(prefix.Length);
                if (rep >= 3)
                    times.Add(elapsed);
            }
            times.Sort();
            medians[size] = times[times.Count / 2];
        }
        session.Reset();
        _cost = medians.ToDictionary(kv => kv.Key, kv => kv.Value / medians[1]);
    }
}
