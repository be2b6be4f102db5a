namespace AgentHost.Llama.Decoding.Speculative;

/// <summary>
/// One step's draft: a root (the last accepted token, not yet decoded) and candidate continuations,
/// in BFS order so parents precede children. For verification each leaf gets a sequence id 0..L-1 and
/// each node carries the ids of the leaves below it: a node then attends to the prefix, its
/// ancestors and itself only, which is tree attention expressed with llama.cpp's sequence sets.
/// The first leaf is sequence 0, which already holds the prefix, so a chain needs no copies at all.
/// Buffers are sized once and reused every step.
/// </summary>
public sealed class DraftTree
{
    private int[] _tokens = new int[16];
    private int[] _parents = new int[16];
    private int[] _depths = new int[16];
    private int[] _firstChild = new int[16];
    private int[] _nextSibling = new int[16];
    private int[] _leafOf = new int[16];          // the first leaf id below each node
    private int[] _sets = [];                     // node n's leaf ids: _sets[n * _setStride ..]
    private int[] _setCounts = new int[16];
    private int[] _choices = new int[16];         // the verifier's choice per node (longest-path walk)
    private bool[] _accepted = new bool[16];      // node reached by verified choices only (longest-path walk)
    private int _setStride;

    /// <summary>Nodes, the root included.</summary>
    public int Count { get; private set; }

    /// <summary>Leaves (sequence ids 0..LeafCount-1).</summary>
    public int LeafCount { get; private set; }

    /// <summary>Deepest node's depth.</summary>
    public int MaxDepth { get; private set; }

    /// <summary>
    /// Walk by the paper's rule (Token Recycling's verification): of all root-to-leaf paths, the one with the most
    /// leading verified tokens, the first in leaf (BFS) order on a tie, instead of descending the first matching
    /// child. The two differ only where siblings repeat a token. Needs a verifier whose <see cref="IDraftVerifier.Choose"/>
    /// is a pure function of the node (greedy): every node's choice is read before the walk. Set by the drafter for
    /// the step (<see cref="Reset"/> clears it).
    /// </summary>
    public bool LongestAcceptedPath { get; set; }

    /// <summary>After a longest-path walk: how many more tokens it accepted than descending the first matching child would have.</summary>
    public int LongestPathGain { get; private set; }

    /// <summary>Token of node <paramref name="node"/>.</summary>
    public int Token(int node) => _tokens[node];

    /// <summary>Parent of a node (-1 for the root).</summary>
    public int Parent(int node) => _parents[node];

    /// <summary>Depth of a node (0 for the root).</summary>
    public int Depth(int node) => _depths[node];

    /// <summary>Sequence ids of the leaves below a node (what it is decoded into).</summary>
    public ReadOnlySpan<int> Sequences(int node) => _sets.AsSpan(node * _setStride, _setCounts[node]);

    /// <summary>One leaf sequence below the node (where its path's cache lives after the decode).</summary>
    public int LeafBelow(int node) => _leafOf[node];

    /// <summary>The first child of <paramref name="node"/> holding <paramref name="token"/>, or -1.</summary>
    public int FindChild(int node, int token)
    {
        for (var child = _firstChild[node]; child >= 0; child = _nextSibling[child])
        {
            if (_tokens[child] == token)
                return child;
        }
        return -1;
    }

    /// <summary>
    /// The lossless walk: from the root, emit the verifier's choice at the node and descend while a child
    /// holds it; the first choice no child holds (or a stop) ends the walk and, unless generation stopped,
    /// roots the next draft. Returns the deepest node walked; every emitted token is the verifier's own.
    /// </summary>
    public int Walk<TVerifier>(ref TVerifier verifier, out int last, out bool stopped) where TVerifier : IDraftVerifier
    {
        LongestPathGain = 0;
        if (LongestAcceptedPath)
            return WalkLongest(ref verifier, out last, out stopped);
        var node = 0;
        while (true)
        {
            last = verifier.Choose(node);
            stopped = verifier.Emit(node, last);
            var child = stopped ? -1 : FindChild(node, last);
            if (child < 0)
                return node;
            node = child;
        }
    }

    // The paper's acceptance: every node's choice first, then the deepest node reached by verified choices only (the
    // first leaf's on a tie: leaf ids follow BFS order, LeafBelow is a node's first leaf), then the same emissions as
    // Walk along the root-to-node path. Every emitted token is still the verifier's own choice at its parent.
    private int WalkLongest<TVerifier>(ref TVerifier verifier, out int last, out bool stopped) where TVerifier : IDraftVerifier
    {
        var best = 0;
        for (var n = 0; n < Count; n++)
        {
            _choices[n] = verifier.Choose(n);
            _accepted[n] = n == 0 || (_accepted[_parents[n]] && _tokens[n] == _choices[_parents[n]]);
            if (_accepted[n] && (_depths[n] > _depths[best] || (_depths[n] == _depths[best] && _leafOf[n] < _leafOf[best])))
                best = n;
        }
        var firstMatch = 0;
        for (var child = FindChild(0, _choices[0]); child >= 0; child = FindChild(child, _choices[child]))
            firstMatch = child;
        LongestPathGain = _depths[best] - _depths[firstMatch];

        var depth = _depths[best];
        Span<int> path = depth < 64 ? stackalloc int[depth + 1] : new int[depth + 1];
        for (int n = best, d = depth; n >= 0; n = _parents[n], d--)
            path[d] = n;
        foreach (var node in path)
        {
            last = _choices[node];
            stopped = verifier.Emit(node, last);
            if (stopped || node == best)
                return node;
        }
        throw new InvalidOperationException("unreachable: the path ends at its last node");
    }

    /// <summary>Starts a new draft with <paramref name="root"/>.</summary>
    public void Reset(int root)
    {
        LongestAcceptedPath = false;
        Count = 0;
        Append(root, -1);
    }

    /// <summary>Adds a node under <paramref name="parent"/> (which must already exist); returns its index.</summary>
    public int Add(int parent, int token)
    {
        if ((uint)parent >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(parent));
        return Append(token, parent);
    }

    /// <summary>Numbers the leaves and computes every node's leaf set; call after the last <see cref="Add"/>.</summary>
    public void Complete()
    {
        LeafCount = 0;
        MaxDepth = 0;
        for (var n = 0; n < Count; n++)
        {
            if (_firstChild[n] < 0)
                LeafCount++;
            MaxDepth = Math.Max(MaxDepth, _depths[n]);
        }
        _setStride = LeafCount;
        if (_sets.Length < Count * _setStride)
            _sets = new int[Math.Max(Count * _setStride, _sets.Length * 2)];
        Array.Clear(_setCounts, 0, Count);

        var leaf = -1;
        for (var n = 0; n < Count; n++)
        {
            if (_firstChild[n] >= 0)
                continue;
            leaf++;
            for (var a = n; a >= 0; a = _parents[a])
            {
                if (_setCounts[a] == 0)
                    _leafOf[a] = leaf;
                _sets[a * _setStride + _setCounts[a]++] = leaf;
            }
        }
    }

    private int Append(int token, int parent)
    {
        if (Count == _tokens.Length)
            Grow();
        var n = Count++;
        _tokens[n] = token;
        _parents[n] = parent;
        _depths[n] = parent < 0 ? 0 : _depths[parent] + 1;
        _firstChild[n] = -1;
        _nextSibling[n] = -1;
        if (parent >= 0)
        {
            // Keep children in insertion (BFS) order: append at the end of the sibling list.
            if (_firstChild[parent] < 0)
            {
                _firstChild[parent] = n;
            }
            else
            {
                var last = _firstChild[parent];
                while (_nextSibling[last] >= 0)
                    last = _nextSibling[last];
                _nextSibling[last] = n;
            }
        }
        return n;
    }

    private void Grow()
    {
        var size = _tokens.Length * 2;
        Array.Resize(ref _tokens, size);
        Array.Resize(ref _parents, size);
        Array.Resize(ref _depths, size);
        Array.Resize(ref _firstChild, size);
        Array.Resize(ref _nextSibling, size);
        Array.Resize(ref _leafOf, size);
        Array.Resize(ref _setCounts, size);
        Array.Resize(ref _choices, size);
        Array.Resize(ref _accepted, size);
    }
}
