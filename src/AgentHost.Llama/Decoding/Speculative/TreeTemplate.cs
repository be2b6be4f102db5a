using System.Text.Json;

namespace AgentHost.Llama.Decoding.Speculative;

/// <summary>
/// The shape of a draft tree below its root, in BFS order. A node is a path of candidate ranks:
/// <c>[c0, c1]</c> is candidate c1 of the row of (candidate c0 of the root's row). Any prefix of a BFS
/// list is itself a valid tree, which is how the smaller named templates are cut from "2.2.2".
/// </summary>
public sealed class TreeTemplate
{
    /// <summary>Candidates kept per token in the adjacency matrix; a rank is in [0, Width).</summary>
    public const int Width = 8;

    private static readonly int[][] _paper =
    [
        [0], [1], [2], [3], [4], [5], [6], [7],
        [0, 0], [0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [0, 6], [0, 7], [1, 0], [1, 1], [1, 2], [1, 3], [2, 0], [2, 1], [2, 2], [3, 0], [3, 1], [4, 0], [5, 0], [6, 0], [7, 0],
        [0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 0, 3], [0, 0, 4], [0, 0, 5], [0, 0, 6], [0, 0, 7], [0, 1, 0], [0, 1, 1], [0, 1, 2], [0, 2, 0], [0, 2, 1], [0, 3, 0], [0, 4, 0], [0, 5, 0], [0, 6, 0], [0, 7, 0], [1, 0, 0], [1, 0, 1], [1, 1, 0], [2, 0, 0], [3, 0, 0], [4, 0, 0], [5, 0, 0],
        [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 2], [0, 0, 0, 3], [0, 0, 0, 4], [0, 0, 1, 0], [0, 0, 1, 1], [0, 0, 2, 0], [0, 0, 3, 0], [0, 0, 4, 0], [0, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [2, 0, 0, 0], [3, 0, 0, 0],
        [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 2], [0, 0, 0, 1, 0], [0, 0, 0, 2, 0], [0, 0, 1, 0, 0], [0, 1, 0, 0, 0], [1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0],
    ];

    private TreeTemplate(string name, int[][] paths)
    {
        Name = name;
        Paths = paths;
        var count = paths.Length + 1; // node 0 is the root
        Parent = new int[count];
        Rank = new int[count];
        Depth = new int[count];
        Parent[0] = -1;
        var index = new Dictionary<string, int>(StringComparer.Ordinal) { [""] = 0 };
        for (var i = 0; i < paths.Length; i++)
        {
            var path = paths[i];
            if (path.Length == 0 || path.Any(r => r is < 0 or >= Width))
                throw Invalid(name, $"node {i} must be a non-empty list of ranks from 0 to {Width - 1}");
            var key = string.Join(',', path);
            if (index.ContainsKey(key))
                throw Invalid(name, $"node [{key}] appears twice");
            if (!index.TryGetValue(string.Join(',', path[..^1]), out var parent))
                throw Invalid(name, $"node [{key}] comes before its parent (list nodes in BFS order)");
            index[key] = i + 1;
            Parent[i + 1] = parent;
            Rank[i + 1] = path[^1];
            Depth[i + 1] = path.Length;
        }
        MaxDepth = Depth.Max();
        var isParent = new bool[count];
        for (var n = 1; n < count; n++)
            isParent[Parent[n]] = true;
        LeafCount = isParent.Count(p => !p);
    }

    /// <summary>Template name (a built-in name, or <c>custom</c>).</summary>
    public string Name { get; }

    /// <summary>The node paths, BFS order, root excluded.</summary>
    public IReadOnlyList<int[]> Paths { get; }

    /// <summary>Nodes including the root (the tokens of one verification batch).</summary>
    public int Size => Parent.Length;

    /// <summary>Parent node of each node (-1 for the root).</summary>
    public int[] Parent { get; }

    /// <summary>Rank in the parent's candidate row of each node (0 for the root).</summary>
    public int[] Rank { get; }

    /// <summary>Depth of each node (0 for the root).</summary>
    public int[] Depth { get; }

    /// <summary>Deepest node.</summary>
    public int MaxDepth { get; }

    /// <summary>Leaves; each needs a sequence of its own during verification.</summary>
    public int LeafCount { get; }

    /// <summary>Names of the built-in templates.</summary>
    public static IReadOnlyList<string> BuiltInNames { get; } =
        ["none", "chain-1", "chain-2", "chain-3", "chain-4", "chain-6", "chain-8", "tree-4", "tree-6", "tree-10", "tree-16", "2.2.2:16", "2.2.2:32", "2.2.2"];

    /// <summary>
    /// A built-in template: <c>none</c> (the root alone: a plain step, which <c>auto</c> falls back to
    /// where no tree pays for itself), <c>2.2.2</c> (the paper's 80 nodes), <c>2.2.2:N</c> (its first N nodes),
    /// <c>chain-N</c> (N top-1 drafts in a row), <c>tree-N</c> (narrow deep trees for CPUs); or a JSON
    /// list of paths such as <c>[[0],[1],[0,0]]</c>.
    /// </summary>
    public static TreeTemplate Parse(string spec)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        spec = spec.Trim();
        if (spec.StartsWith('['))
        {
            int[][]? paths;
            try
            {
                paths = JsonSerializer.Deserialize<int[][]>(spec);
            }
            catch (JsonException ex)
            {
                throw Invalid("custom", ex.Message);
            }
            return paths is { Length: > 0 } ? new TreeTemplate("custom", paths) : throw Invalid("custom", "it has no nodes");
        }
        if (spec == "none")
            return new TreeTemplate(spec, []);
        if (spec == "2.2.2")
            return new TreeTemplate(spec, _paper);
        if (spec.StartsWith("2.2.2:", StringComparison.Ordinal) && int.TryParse(spec[6..], out var prefix) && prefix is >= 1 and <= 80)
            return new TreeTemplate(spec, _paper[..prefix]);
        if (spec.StartsWith("chain-", StringComparison.Ordinal) && int.TryParse(spec[6..], out var length) && length is >= 1 and <= 16)
            return new TreeTemplate(spec, Enumerable.Range(1, length).Select(d => new int[d]).ToArray());
        return spec switch
        {
            // Deep top-1 spines with a few second choices near the root: on a CPU each node costs, so
            // nodes go where acceptance is likeliest.
            "tree-4" => new TreeTemplate(spec, [[0], [1], [0, 0], [0, 0, 0]]),
            "tree-6" => new TreeTemplate(spec, [[0], [1], [0, 0], [1, 0], [0, 0, 0], [0, 0, 0, 0]]),
            "tree-10" => new TreeTemplate(spec, [[0], [1], [2], [0, 0], [0, 1], [1, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0, 0]]),
            "tree-16" => new TreeTemplate(spec, [[0], [1], [2], [0, 0], [0, 1], [1, 0], [2, 0], [0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]]),
            _ => throw new AgentHostException(ErrorKind.InvalidArgument,
                $"Unknown tree template '{spec}'. Use auto, one of {string.Join(", ", BuiltInNames)}, 2.2.2:N (N from 1 to 80), chain-N, or a JSON list of paths such as [[0],[1],[0,0]]."),
        };
    }

    /// <summary>
    /// Drafts below the root of <paramref name="tree"/> by BFS: node <c>[..., c]</c> takes candidate c of its
    /// parent's row. Nodes deeper than <paramref name="maxDepth"/> are left out (with their subtrees).
    /// </summary>
    public void Draft(DraftTree tree, AdjacencyMatrix matrix, int maxDepth)
    {
        ArgumentNullException.ThrowIfNull(tree);
        ArgumentNullException.ThrowIfNull(matrix);
        Span<int> nodeOf = Size <= 128 ? stackalloc int[Size] : new int[Size]; // template node -> draft node, -1 when cut
        nodeOf[0] = 0;
        for (var n = 1; n < Size; n++)
        {
            var parent = nodeOf[Parent[n]];
            nodeOf[n] = parent < 0 || Depth[n] > maxDepth ? -1 : tree.Add(parent, matrix.Row(tree.Token(parent))[Rank[n]]);
        }
    }

    private static AgentHostException Invalid(string name, string why) => new(ErrorKind.InvalidArgument, $"Tree template '{name}' is invalid: {why}.");
}
