using System.Runtime.InteropServices;
using AgentHost.Llama.Decoding.Speculative;

namespace AgentHost.Llama.Decoding.Strategies;

/// <summary>
/// Prompt lookup decoding (llama.cpp <c>lookup</c>, PLD): find the most recent earlier occurrence of
/// the last n tokens (n from <c>lookup_ngram</c> down to 1) in prompt + output and draft the tokens that
/// followed it as one chain; verified exactly like token recycling, so it is the peer measured in the
/// same engine. The chain is cut where its acceptance so far (per match length and depth) no longer
/// pays for the verification cost C(b), down to a plain step.
/// </summary>
public sealed class LookupStrategy : SpeculativeStrategy
{
    /// <summary>Option key: longest n-gram matched.</summary>
    public const string NgramOption = "lookup_ngram";

    /// <summary>Option key: most tokens drafted.</summary>
    public const string DraftOption = "lookup_draft";

    private readonly int _ngram;
    private readonly int _draft;
    private readonly double[] _acceptance;
    private LookupRecord? _record;
    private int _matched;      // this step's match length, 0 when nothing was drafted

    /// <summary>Creates the strategy from its options.</summary>
    public LookupStrategy(StrategyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _ngram = options.GetInt(NgramOption, 3, min: 1, max: LookupRecord.MaxNgram);
        _draft = options.GetInt(DraftOption, 3, min: 1, max: LookupRecord.MaxDepth);
        _acceptance = new double[_draft];
    }

    /// <inheritdoc />
    public override string Name => "lookup";

    /// <inheritdoc />
    public override int SequencesWanted(int available) => 1;   // its drafts are chains: one leaf

    /// <inheritdoc />
    public override int ScratchCells(int promptTokens, int maxTokens, int batchCapacity) => Math.Min(batchCapacity, _draft + 1);

    /// <inheritdoc />
    protected override void Prepare(SpeculativeContext context) => _record = context.Session.Model.GetState(_ => new LookupRecord());

    /// <inheritdoc />
    protected override void Draft(SpeculativeContext context, DraftTree tree)
    {
        _matched = 0;
        context.ExpectedTokens = 1;
        if (context.PlainStepDue)
            return;
        var history = CollectionsMarshal.AsSpan(context.HistoryList);
        var limit = Math.Min(Math.Min(_draft, context.MaxDepth), context.MaxDraft);
        var n = LookupRecord.FindMatch(history, _ngram, out var start);
        if (n == 0 || limit <= 0)
            return;
        var available = Math.Min(limit, history.Length - start - n);
        var acceptance = _acceptance.AsSpan(0, available);
        _record!.Chain(n, acceptance);
        var length = DraftPlanner.BestLength(acceptance, context.Costs, out var expected, out _, context.Load);
        var node = 0;
        for (var i = 0; i < length; i++)
            node = tree.Add(node, history[start + n + i]);
        _matched = length > 0 ? n : 0;
        context.ExpectedTokens = expected;
    }

    /// <inheritdoc />
    protected override void Observe(SpeculativeContext context, DraftTree tree)
    {
        if (_matched > 0)
            _record!.Record(_matched, tree.Count - 1, tree.Depth(context.LastNode));
    }
}
