using AgentHost.Llama.Decoding.Speculative;
using AgentHost.Llama.Engine;

namespace AgentHost.Llama.Decoding.Strategies;

/// <summary>
/// Token Recycling (arXiv 2408.08696): drafts come from an adjacency matrix of the top-8 next-token
/// candidates the verifier produced after each token, drafted along a tree template by BFS and
/// overwritten from every verified node's logits. Lossless (see <see cref="SpeculativeStrategy"/>).
/// With <c>auto</c> the template is chosen per model from the measured verification cost C(b) and
/// the observed candidate ranks, maximising expected tokens per forward over C(tree).
/// </summary>
public sealed class RecyclingStrategy : SpeculativeStrategy
{
    /// <summary>Option key: template name, <c>auto</c>, or JSON paths.</summary>
    public const string TreeOption = "recycling_tree";

    /// <summary>Option key: matrix file for warm start (loaded if present, saved after each request).</summary>
    public const string MatrixOption = "recycling_matrix";

    private const int RechooseEvery = 32;

    private readonly TreeTemplate? _fixed;
    private readonly string? _matrixFile;
    private RecyclingState _state = null!;
    private TreeTemplate _template = null!;
    private int _forwards;
    private int _templateSwitches;

    /// <summary>Creates the strategy from its options.</summary>
    public RecyclingStrategy(StrategyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var tree = options.GetString(TreeOption, "auto");
        _fixed = tree == "auto" ? null : TreeTemplate.Parse(tree);
        _matrixFile = options.GetString(MatrixOption, "") is { Length: > 0 } file ? Path.GetFullPath(file) : null;
    }

    /// <inheritdoc />
    public override string Name => "recycling";

    /// <summary>The template of the last request.</summary>
    public TreeTemplate? Template => _template;

    /// <summary>The per-model state (matrix, costs, rank statistics) of the last request.</summary>
    public RecyclingState? State => _state;

    /// <inheritdoc />
    protected override void Prepare(InferenceSession session, GenerationRequest request)
    {
        var model = session.Model;
        _state = model.GetState(m => new RecyclingState(m));
        if (_matrixFile is not null && _state.LoadedFrom is null && File.Exists(_matrixFile))
        {
            _state.Matrix.Load(_matrixFile, AdjacencyMatrix.KeyOf(model));
            _state.LoadedFrom = _matrixFile;
        }

        _forwards = 0;
        _templateSwitches = 0;
        if (_fixed is not null)
        {
            _template = _fixed;
            if (_template.LeafCount > session.SequenceCount || _template.Size > session.BatchCapacity)
            {
                throw new AgentHostException(ErrorKind.InvalidArgument,
                    $"Tree template '{_template.Name}' has {_template.Size} nodes and {_template.LeafCount} leaves: it needs Sequences >= {_template.LeafCount} and BatchSize >= {_template.Size} (the model has {session.SequenceCount} and {session.BatchCapacity}).");
            }
            return;
        }

        if (!_state.HasCosts)
            _state.MeasureCosts(session, Candidates(session));
        _template = _state.AutoChoice ?? Choose(session);
    }

    /// <inheritdoc />
    protected override void Draft(DraftTree tree, IReadOnlyList<int> history, int maxDepth)
    {
        if (_fixed is null && _forwards > 0 && _forwards % RechooseEvery == 0)
        {
            var choice = Choose(Session);
            if (choice != _template)
                _templateSwitches++;
            _template = choice;
        }

        _template.Draft(tree, _state.Matrix, maxDepth);
    }

    /// <inheritdoc />
    protected override void Observe(DraftTree tree, IReadOnlyList<int> history, int firstEmitted, int lastNode, InferenceSession session, ReadOnlySpan<int> batchIndex)
    {
        _forwards++;
        var matrix = _state.Matrix;

        // Where each verified choice ranked in the row its node drafted from (before the rows change).
        var depth = tree.Depth(lastNode);
        for (var d = 0; d <= depth; d++)
        {
            var node = lastNode;
            for (var up = depth; up > d; up--)
                node = tree.Parent(node);
            _state.RecordRank(matrix.Row(tree.Token(node)).IndexOf(history[firstEmitted + d]));
        }

        // Recycle: every node's top-8, in BFS order (later writes win).
        for (var n = 0; n < tree.Count; n++)
            matrix.Update(tree.Token(n), session.GetLogits(batchIndex[n]));
    }

    /// <inheritdoc />
    protected override void AddResults(Dictionary<string, double> extra, Dictionary<string, object?> details)
    {
        extra["template_switches"] = _templateSwitches;
        details["template"] = _template.Name;
        details["chosen_by"] = _fixed is null ? "auto" : "configuration";
        details["tree_nodes"] = _template.Size;
        details["expected_mat"] = Math.Round(_state.ExpectedMat(_template), 3);
        details["c_tree"] = _state.HasCosts ? Math.Round(_state.Cost(_template), 3) : null;
        if (_matrixFile is not null)
            _state.Matrix.Save(_matrixFile, AdjacencyMatrix.KeyOf(Session.Model));
    }

    private TreeTemplate Choose(InferenceSession session)
    {
        TreeTemplate? best = null;
        var bestScore = double.MinValue;
        foreach (var template in Candidates(session))
        {
            var cost = _state.Cost(template);
            if (double.IsNaN(cost))
                continue;
            var score = _state.ExpectedMat(template) / Math.Max(cost, 1.0);
            if (score > bestScore)
            {
                bestScore = score;
                best = template;
            }
        }
        _state.AutoChoice = best ?? TreeTemplate.Parse("chain-1");
        return _state.AutoChoice;
    }

    private static IEnumerable<TreeTemplate> Candidates(InferenceSession session)
        => _builtIns.Where(t => t.LeafCount <= session.SequenceCount && t.Size <= session.BatchCapacity);

    private static readonly TreeTemplate[] _builtIns = TreeTemplate.BuiltInNames.Select(TreeTemplate.Parse).ToArray();
}
