using AgentHost.Llama.Models;

namespace AgentHost.Llama.Decoding.Speculative;

/// <summary>
/// What token recycling keeps per loaded model across requests: the adjacency matrix and how often each
/// row's candidates turned out right, from which every step drafts the tree that pays best. Only the
/// model's scheduler thread touches it. Loading and saving the matrix file are explicit calls of
/// whoever owns the file (<see cref="WarmStart"/>, <see cref="SaveMatrix"/>).
/// </summary>
public sealed class RecyclingState
{
    /// <summary>Most draft tokens per step (a verification batch of at most 16).</summary>
    public const int MaxDraft = 15;

    /// <summary>Longest n-gram matched for the prompt-lookup chain that competes with the matrix's candidates.</summary>
    public const int LookupNgram = 3;

    private const int Width = TreeTemplate.Width;
    private const int Miss = Width;           // slot of "the verified token was not in the row"
    private const float RowWeight = 4;        // pseudo-observations of the global rank prior in a row's estimate
    private const float RowMemory = 32;       // a row's counts halve beyond this, so rows follow their latest context
    private const double MinReach = 0.02;     // drafts likelier than this are considered at all

    private readonly LlamaModel? _model;
    private readonly float[] _rowCounts;      // per row: verified token at rank r (Width slots) or missed
    private readonly float[] _rowTotals;
    private readonly double[] _rankCounts = new double[Width + 1];
    private double _rankTotal;
    private string? _modelKey;

    // Best-first drafting scratch: the frontier (candidates) and the chosen nodes, in choice order. A node's lookup
    // depth is its depth on the prompt-lookup chain (0: the root; -1: not on the chain).
    private readonly int[] _frontierParent = new int[(MaxDraft + 1) * (Width + 1)];
    private readonly int[] _frontierToken = new int[(MaxDraft + 1) * (Width + 1)];
    private readonly double[] _frontierReach = new double[(MaxDraft + 1) * (Width + 1)];
    private readonly int[] _frontierLookup = new int[(MaxDraft + 1) * (Width + 1)];
    private readonly int[] _chosenLookup = new int[MaxDraft + 1];
    private readonly int[] _chosenParent = new int[MaxDraft];
    private readonly int[] _chosenToken = new int[MaxDraft];
    private readonly int[] _chosenDepth = new int[MaxDraft];
    private readonly bool[] _chosenHasChild = new bool[MaxDraft + 1];
    private readonly double[] _chosenReach = new double[MaxDraft];
    private double[] _reach = new double[16];

    /// <summary>Creates the state for <paramref name="model"/>.</summary>
    public RecyclingState(LlamaModel model)
        : this(model.Vocabulary.Count) => _model = model;

    /// <summary>Creates a state for a vocabulary without a model (tests: no matrix file).</summary>
    public RecyclingState(int vocabularySize)
    {
        Matrix = new AdjacencyMatrix(vocabularySize);
        _rowCounts = new float[vocabularySize * (Width + 1)];
        _rowTotals = new float[vocabularySize];
        // A weak prior until drafts are observed: the top candidate is right a bit less than half the time.
        _rankCounts[0] = 4;
        _rankCounts[1] = 1;
        _rankCounts[2] = 0.5;
        _rankCounts[Miss] = 4.5;
        _rankTotal = 10;
    }

    /// <summary>The adjacency matrix.</summary>
    public AdjacencyMatrix Matrix { get; }

    /// <summary>How often the prompt-lookup chains drafted beside the matrix's candidates were accepted.</summary>
    public LookupRecord Lookup { get; } = new();

    /// <summary>Depth on the prompt-lookup chain of node <paramref name="node"/> of the last <see cref="DraftBest"/> tree (-1: not on it).</summary>
    public int LookupDepth(int node) => _chosenLookup[node];

    /// <summary>The matrix file this state was loaded from, if any.</summary>
    public string? LoadedFrom { get; private set; }

    /// <summary>Loads the matrix from <paramref name="path"/> once per model, if the file exists (a warm start).</summary>
    public void WarmStart(string path)
    {
        if (LoadedFrom is not null || !File.Exists(path))
            return;
        Matrix.Load(path, ModelKey);
        LoadedFrom = path;
    }

    /// <summary>Writes the matrix to <paramref name="path"/> (atomically), keyed by the model's weights.</summary>
    public void SaveMatrix(string path) => Matrix.Save(path, ModelKey);

    private string ModelKey => _modelKey ??= AdjacencyMatrix.KeyOf(_model ?? throw new InvalidOperationException("A state without a model has no matrix file."));

    /// <summary>
    /// Estimated probability that the token after <paramref name="token"/> is candidate
    /// <paramref name="rank"/> of its row: the row's own record, smoothed towards all rows' record.
    /// </summary>
    public double Acceptance(int token, int rank)
    {
        if (!Matrix.IsWritten(token))
            return 0;
        var global = _rankCounts[rank] / _rankTotal;
        var at = token * (Width + 1);
        return (_rowCounts[at + rank] + RowWeight * global) / (_rowTotals[token] + RowWeight);
    }

    /// <summary>
    /// Learns from one verified node holding <paramref name="token"/>: scores its row's candidates against
    /// <paramref name="chosen"/> (the token the walk emitted after it; -1 where the walk did not pass:
    /// the argmax stands in) and overwrites the row with the top candidates of <paramref name="logits"/>.
    /// Returns the argmax.
    /// </summary>
    public int Observe(int token, ReadOnlySpan<float> logits, int chosen)
    {
        Span<int> before = stackalloc int[Width];
        Matrix.Row(token).CopyTo(before);
        var written = Matrix.IsWritten(token);
        var argMax = Matrix.Update(token, logits);
        if (written)
            RecordRank(token, before.IndexOf(chosen < 0 ? argMax : chosen));
        return argMax;
    }

    /// <summary>Records where the verified token after <paramref name="token"/> ranked in its row (-1: not there).</summary>
    public void RecordRank(int token, int rank)
    {
        var slot = rank < 0 ? Miss : rank;
        _rankCounts[slot]++;
        _rankTotal++;
        var at = token * (Width + 1);
        if (_rowTotals[token] >= RowMemory)
        {
            for (var r = 0; r <= Width; r++)
                _rowCounts[at + r] *= 0.5f;
            _rowTotals[token] *= 0.5f;
        }
        _rowCounts[at + slot]++;
        _rowTotals[token]++;
    }

    /// <summary>
    /// Drafts the tree that pays best below the root of <paramref name="tree"/>: candidates are chosen
    /// best-first by the probability of being reached and accepted (a node's is its parent's times its
    /// row's record for its rank), then the <see cref="DraftPlanner"/> keeps the first k that maximise
    /// tokens per cost (none: a plain step). Returns k; <paramref name="expected"/> and
    /// <paramref name="cost"/> are E(k) and C(k+1).
    /// <paramref name="lookup"/>, the tokens that followed the latest earlier occurrence of the last
    /// <paramref name="lookupNgram"/> tokens (prompt lookup), compete as one more chain of candidates, scored by
    /// <see cref="Lookup"/>'s record; where the matrix proposes the same token, the node is shared and the
    /// better of the two estimates counts. <paramref name="load"/>: tokens of other requests in the shared batch.
    /// </summary>
    public int DraftBest(DraftTree tree, int maxNodes, int maxLeaves, int maxDepth, VerificationCosts costs, out double expected, out double cost,
        ReadOnlySpan<int> lookup = default, int lookupNgram = 0, int load = 0)
    {
        ArgumentNullException.ThrowIfNull(tree);
        maxNodes = Math.Min(maxNodes, MaxDraft);
        var frontier = 0;
        var chosen = 0;
        var leaves = 1;
        _chosenHasChild[0] = false; // index 0: the root; chosen node i is index i + 1
        _chosenLookup[0] = 0;
        if (maxDepth >= 1)
            Expand(tree.Token(0), parent: 0, reach: 1, parentLookup: 0, lookup, lookupNgram, ref frontier);
        while (chosen < maxNodes)
        {
            var best = -1;
            for (var i = 0; i < frontier; i++)
            {
                var parent = _frontierParent[i];
                if ((best < 0 || _frontierReach[i] > _frontierReach[best]) && (!_chosenHasChild[parent] || leaves < maxLeaves))
                    best = i;
            }
            if (best < 0 || _frontierReach[best] < MinReach)
                break;

            var from = _frontierParent[best];
            if (_chosenHasChild[from])
                leaves++;
            _chosenHasChild[from] = true;
            _chosenParent[chosen] = from;
            _chosenToken[chosen] = _frontierToken[best];
            _chosenReach[chosen] = _frontierReach[best];
            _chosenDepth[chosen] = from == 0 ? 1 : _chosenDepth[from - 1] + 1;
            _chosenLookup[chosen + 1] = _frontierLookup[best];
            frontier--;
            _frontierParent[best] = _frontierParent[frontier];
            _frontierToken[best] = _frontierToken[frontier];
            _frontierReach[best] = _frontierReach[frontier];
            _frontierLookup[best] = _frontierLookup[frontier];
            chosen++;
            _chosenHasChild[chosen] = false;
            if (_chosenDepth[chosen - 1] < maxDepth)
                Expand(_chosenToken[chosen - 1], parent: chosen, _chosenReach[chosen - 1], _chosenLookup[chosen], lookup, lookupNgram, ref frontier);
        }

        var length = DraftPlanner.BestLength(_chosenReach.AsSpan(0, chosen), costs, out expected, out cost, load);
        for (var i = 0; i < length; i++)
            tree.Add(_chosenParent[i], _chosenToken[i]); // tree node i + 1 = chosen node i: the indices agree
        return length;
    }

    // Adds the children of a chosen node: its row's candidates and, where the node is on the lookup chain, the chain's next token.
    private void Expand(int token, int parent, double reach, int parentLookup, ReadOnlySpan<int> lookup, int lookupNgram, ref int frontier)
    {
        var next = parentLookup >= 0 && parentLookup < lookup.Length ? lookup[parentLookup] : -1;
        var nextAcceptance = next >= 0 ? Lookup.Acceptance(lookupNgram, parentLookup + 1) : 0;
        if (Matrix.IsWritten(token))
        {
            var row = Matrix.Row(token);
            for (var rank = 0; rank < Width; rank++)
            {
                var shared = row[rank] == next;
                Add(parent, row[rank], reach * (shared ? Math.Max(Acceptance(token, rank), nextAcceptance) : Acceptance(token, rank)), shared ? parentLookup + 1 : -1, ref frontier);
                if (shared)
                    next = -1;
            }
        }
        if (next >= 0)
            Add(parent, next, reach * nextAcceptance, parentLookup + 1, ref frontier);
    }

    private void Add(int parent, int token, double reach, int lookupDepth, ref int frontier)
    {
        _frontierParent[frontier] = parent;
        _frontierToken[frontier] = token;
        _frontierReach[frontier] = reach;
        _frontierLookup[frontier] = lookupDepth;
        frontier++;
    }

    /// <summary>
    /// E: the expected tokens a step with <paramref name="tree"/> emits, 1 (the verifier's own choice)
    /// plus the probability of reaching and accepting each node, from the rows' records.
    /// </summary>
    public double Expected(DraftTree tree)
    {
        ArgumentNullException.ThrowIfNull(tree);
        if (_reach.Length < tree.Count)
            _reach = new double[Math.Max(tree.Count, _reach.Length * 2)];
        _reach[0] = 1;
        var expected = 1.0;
        for (var n = 1; n < tree.Count; n++)
        {
            var parent = tree.Parent(n);
            var rank = Matrix.Row(tree.Token(parent)).IndexOf(tree.Token(n));
            _reach[n] = rank < 0 ? 0 : _reach[parent] * Acceptance(tree.Token(parent), rank);
            expected += _reach[n];
        }
        return expected;
    }
}
