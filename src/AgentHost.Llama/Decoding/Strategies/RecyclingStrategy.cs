using System.Runtime.InteropServices;
using AgentHost.Llama.Decoding.Speculative;

namespace AgentHost.Llama.Decoding.Strategies;

/// <summary>
/// Token Recycling (arXiv 2408.08696): drafts come from an adjacency matrix of the top-8 next-token
/// candidates the verifier produced after each token, overwritten from every verified node's logits.
/// Lossless (see <see cref="SpeculativeStrategy"/>). With <c>auto</c> (the default) every step drafts
/// the tree that pays best: candidates best-first by their observed acceptance (per matrix row and
/// rank), as many as beat their verification cost C(b) learned from the steps already run; none when
/// no draft pays (a plain step); prompt lookup's continuation of the latest repeated n-gram competes in the same
/// search as one more chain of candidates. A named template drafts that tree every step.
/// </summary>
public sealed class RecyclingStrategy : SpeculativeStrategy
{
    /// <summary>Option key: template name, <c>auto</c>, or JSON paths.</summary>
    public const string TreeOption = "recycling_tree";

    /// <summary>Option key: matrix file for warm start (loaded if present; the caller saves it with <see cref="SaveMatrix"/>).</summary>
    public const string MatrixOption = "recycling_matrix";

    /// <summary>
    /// Option key: <c>auto</c> (default) or <c>paper</c>, the paper's code: the <c>2.2.2</c> tree every step (unless
    /// <see cref="TreeOption"/> names another) and its acceptance, the longest verified path over all paths
    /// (<see cref="DraftTree.LongestAcceptedPath"/>); greedy only, as the paper's code.
    /// </summary>
    public const string PresetOption = "recycling_preset";

    private readonly TreeTemplate? _fixed;
    private readonly bool _paper;
    private long _longestPathGain;   // tokens the longest-path walk accepted beyond the first-match walk, this request
    private readonly int[] _path = new int[64];
    private RecyclingState? _state;
    private int _lookupNgram;  // this step's prompt-lookup match length, 0 when none was offered

    /// <summary>Creates the strategy from its options.</summary>
    public RecyclingStrategy(StrategyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var preset = options.GetString(PresetOption, "auto");
        if (preset is not ("auto" or "paper"))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"{PresetOption} must be 'auto' or 'paper', not '{preset}'.");
        _paper = preset == "paper";
        var tree = options.GetString(TreeOption, _paper ? "2.2.2" : "auto");
        _fixed = tree == "auto" ? null : TreeTemplate.Parse(tree);
        MatrixFile = options.GetString(MatrixOption, "") is { Length: > 0 } file ? Path.GetFullPath(file) : null;
    }

    /// <inheritdoc />
    public override string Name => "recycling";

    /// <summary>The fixed template, or null for <c>auto</c>.</summary>
    public TreeTemplate? Template => _fixed;

    /// <inheritdoc />
    public override int SequencesWanted(int available) => _fixed?.LeafCount ?? base.SequencesWanted(available);

    /// <inheritdoc />
    public override int ScratchCells(int promptTokens, int maxTokens, int batchCapacity) => Math.Min(batchCapacity, _fixed?.Size ?? RecyclingState.MaxDraft + 1);

    /// <summary>The matrix file (warm start; saved by <see cref="SaveMatrix"/>), or null.</summary>
    public string? MatrixFile { get; }

    /// <summary>The per-model state (matrix, acceptance records) of the last request.</summary>
    public RecyclingState? State => _state;

    /// <summary>
    /// Writes the matrix to <see cref="MatrixFile"/>; false when there is none or no request ran yet. Every generation
    /// ends with it (the next run's warm start), so no host saves it itself; call it on the model's scheduler thread.
    /// </summary>
    public bool SaveMatrix()
    {
        if (MatrixFile is null || _state is null)
            return false;
        _state.SaveMatrix(MatrixFile);
        return true;
    }

    /// <inheritdoc />
    protected override void Prepare(SpeculativeContext context)
    {
        var session = context.Session;
        if (_paper && context.Request.Sampling is { Temperature: > 0 })
            throw new AgentHostException(ErrorKind.InvalidArgument, $"{PresetOption}=paper is greedy, as the paper's code (its longest-path acceptance is not lossless for sampling); use auto to sample.");
        _longestPathGain = 0;
        _state = session.Model.GetState(m => new RecyclingState(m));
        if (MatrixFile is not null)
            _state.WarmStart(MatrixFile);
        if (_fixed is not null && (_fixed.LeafCount > session.SequenceCount || _fixed.Size > session.BatchCapacity))
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                $"Tree template '{_fixed.Name}' has {_fixed.Size} nodes and {_fixed.LeafCount} leaves: it needs Sequences >= {_fixed.LeafCount} and BatchSize >= {_fixed.Size} (the model has {session.SequenceCount} and {session.BatchCapacity}).");
        }
    }

    /// <inheritdoc />
    protected override void Draft(SpeculativeContext context, DraftTree tree)
    {
        var state = _state!;
        tree.LongestAcceptedPath = _paper;
        if (_fixed is not null)
        {
            _fixed.Draft(tree, state.Matrix, context.MaxDepth);
            context.ExpectedTokens = state.Expected(tree);
            return;
        }
        _lookupNgram = 0;
        if (context.PlainStepDue)
        {
            context.ExpectedTokens = 1;
            return;
        }
        // Prompt lookup's continuation competes with the matrix's candidates (repeats in the context that the rows do not hold).
        var history = CollectionsMarshal.AsSpan(context.HistoryList);
        _lookupNgram = LookupRecord.FindMatch(history, RecyclingState.LookupNgram, out var start);
        var lookup = _lookupNgram == 0 ? default : history.Slice(start + _lookupNgram, Math.Min(history.Length - start - _lookupNgram, RecyclingState.MaxDraft));
        state.DraftBest(tree, context.MaxDraft, context.MaxLeaves, Math.Min(context.MaxDepth, _path.Length - 1), context.Costs, out var expected, out _, lookup, _lookupNgram, context.Load);
        context.ExpectedTokens = expected;
    }

    /// <inheritdoc />
    protected override void Observe(SpeculativeContext context, DraftTree tree)
    {
        _longestPathGain += tree.LongestPathGain;
        // The walked path by depth: its nodes are scored against the tokens really emitted after them.
        var depth = tree.Depth(context.LastNode);
        for (int node = context.LastNode, d = depth; node >= 0; node = tree.Parent(node), d--)
            _path[d] = node;

        if (_lookupNgram > 0)
        {
            // The lookup chain's record: how far it was drafted, and how far the walk followed it.
            var drafted = 0;
            for (var n = 1; n < tree.Count; n++)
                drafted = Math.Max(drafted, _state!.LookupDepth(n));
            var followed = 0;
            while (followed < depth && _state!.LookupDepth(_path[followed + 1]) == followed + 1)
                followed++;
            if (drafted > 0)
                _state!.Lookup.Record(_lookupNgram, drafted, followed);
        }

        // Recycle: every node's top-8, in BFS order (later writes win).
        var history = context.History;
        for (var n = 0; n < tree.Count; n++)
        {
            var d = tree.Depth(n);
            var walked = d <= depth && _path[d] == n && context.FirstEmitted + d < history.Count;
            _state!.Observe(tree.Token(n), context.Logits(n), walked ? history[context.FirstEmitted + d] : -1);
        }
    }

    /// <inheritdoc />
    protected override void AddResults(SpeculativeContext context, Dictionary<string, double> extra, Dictionary<string, object?> details)
    {
        SaveMatrix();
        details["template"] = _fixed?.Name ?? "auto";
        details["chosen_by"] = _fixed is null ? "auto" : "configuration";
        details["preset"] = _paper ? "paper" : "auto";
        details["accepted_path"] = _paper ? "longest" : "first-match";
        if (_paper)
            extra["longest_path_gain"] = _longestPathGain;
    }
}
