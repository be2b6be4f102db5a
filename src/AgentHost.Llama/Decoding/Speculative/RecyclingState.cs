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
    private Dictionary<string, double>? _cost;

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

    /// <summary>
    /// C(tree): the time of one verification step with <paramref name="template"/> (sequence copies,
    /// the tree decode and the clean-up) over a plain one-token decode, as measured here; NaN if not measured.
    /// </summary>
    public double Cost(TreeTemplate template) => _cost is not null && _cost.TryGetValue(template.Name, out var c) ? c : double.NaN;

    /// <summary>
    /// Measures C(tree) for <paramref name="templates"/> once per model and process: median times of
    /// real verification steps of each shape after a short prefix, over the median of plain one-token
    /// decodes. Leaves the session empty.
    /// </summary>
    public void MeasureCosts(InferenceSession session, IEnumerable<TreeTemplate> templates)
    {
        var vocabulary = session.Model.Vocabulary.Count;
        var prefix = Enumerable.Range(0, Math.Min(64, session.ContextSize / 4)).Select(i => 1 + i % (vocabulary - 1)).ToArray();
        session.Reset();
        session.Prefill(prefix, 0);
        var tree = new DraftTree();
        var plain = Median(session, () =>
        {
            session.ClearBatch();
            session.AddToBatch(1, prefix.Length, 0, logits: true);
            session.Decode();
            session.TruncateAll(prefix.Length);
        });
        var costs = new Dictionary<string, double>();
        foreach (var template in templates)
        {
            if (template.Size == 1)
            {
                costs[template.Name] = 1; // the root alone is a plain step by definition
                continue;
            }
            if (prefix.Length + template.MaxDepth >= session.ContextSize)
                continue;
            tree.Reset(1);
            for (var n = 1; n < template.Size; n++)
                tree.Add(template.Parent[n], 1 + n % (vocabulary - 1));
            tree.Complete();
            costs[template.Name] = Median(session, () =>
            {
                for (var leaf = 1; leaf < tree.LeafCount; leaf++)
                    session.CopySequence(0, leaf);
                session.ClearBatch();
                for (var n = 0; n < tree.Count; n++)
                    session.AddToBatch(tree.Token(n), prefix.Length + tree.Depth(n), tree.Sequences(n), logits: true);
                session.Decode();
                session.TruncateAll(prefix.Length);
                for (var leaf = 1; leaf < tree.LeafCount; leaf++)
                    session.RemoveSequence(leaf);
            }) / plain;
        }
        session.Reset();
        _cost = costs;
    }

    private static double Median(InferenceSession session, Action step)
    {
        var times = new double[12];
        for (var rep = -3; rep < times.Length; rep++)
        {
            var start = Stopwatch.GetTimestamp();
            step();
            if (rep >= 0)
                times[rep] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        Array.Sort(times);
        return times[times.Length / 2];
    }
}
