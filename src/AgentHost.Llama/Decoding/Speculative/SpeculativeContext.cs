using AgentHost.Llama.Engine;

namespace AgentHost.Llama.Decoding.Speculative;

/// <summary>
/// One request as the speculative hooks see it: the session, the request, the tokens so far and the
/// per-step numbers. Created by <see cref="SpeculativeStrategy"/> per request; hooks read it (and
/// report their prediction for the step) instead of holding state of their own.
/// </summary>
public sealed class SpeculativeContext
{
    private int[] _batchIndex = new int[16];

    internal SpeculativeContext(InferenceSession session, GenerationRequest request, VerificationCosts costs)
    {
        Session = session;
        Request = request;
        Costs = costs;
    }

    /// <summary>The session (sequence 0 holds the prompt and the accepted tokens).</summary>
    public InferenceSession Session { get; }

    /// <summary>The request.</summary>
    public GenerationRequest Request { get; }

    /// <summary>The model's learned verification costs C(b).</summary>
    public VerificationCosts Costs { get; }

    /// <summary>Prompt and emitted tokens so far; while drafting, the last one is the root.</summary>
    public IReadOnlyList<int> History => HistoryList;

    internal List<int> HistoryList { get; } = [];

    /// <summary>Deepest draft node the context has room for (this step).</summary>
    public int MaxDepth { get; internal set; }

    /// <summary>Most draft tokens (nodes below the root) the session can verify in one batch.</summary>
    public int MaxDraft => Session.BatchCapacity - 1;

    /// <summary>Most leaves (sequences) a draft may have.</summary>
    public int MaxLeaves => Session.SequenceCount;

    /// <summary>
    /// Tokens of other requests in the last shared decode (0 on a standalone session): the load the draft's cost is
    /// weighed against (<see cref="DraftPlanner"/>).
    /// </summary>
    public int Load { get; internal set; }

    /// <summary>Whether a plain step is due to keep C(1) measured (draft nothing when it is and nothing is forced).</summary>
    public bool PlainStepDue => Costs.PlainStepDue;

    /// <summary>Where this step's emitted tokens start in <see cref="History"/> (after the walk).</summary>
    public int FirstEmitted { get; internal set; }

    /// <summary>The deepest node the walk reached (after the walk).</summary>
    public int LastNode { get; internal set; }

    /// <summary>Set by the draft hook: the tokens it expects the step to emit (E), NaN if it has no estimate.</summary>
    public double ExpectedTokens { get; set; } = double.NaN;

    /// <summary>Verifier logits of draft node <paramref name="node"/> (after the decode).</summary>
    public ReadOnlySpan<float> Logits(int node) => Session.GetLogits(_batchIndex[node]);

    internal int[] BatchIndex(int nodes)
    {
        if (_batchIndex.Length < nodes)
            _batchIndex = new int[Math.Max(nodes, _batchIndex.Length * 2)];
        return _batchIndex;
    }
}
