using AgentHost.Llama.Decoding.Speculative;

namespace AgentHost.Llama.Decoding;

/// <summary>One event of a strategy's own work, at <see cref="Position"/>: the index in the generated tokens where it begins.</summary>
/// <param name="Position">Generated tokens before the event (its first token's index in <see cref="GenerationResult.Tokens"/>).</param>
public abstract record DecodingEvent(int Position);

/// <summary>
/// One verification step of a speculative strategy (recycling, lookup): the draft tokens the verifier accepted (in
/// order, the path walked), the drafted tokens it rejected (the rest of the tree, in node order) and the tokens the
/// step emitted (the accepted drafts, then the verifier's own next token unless generation stopped).
/// </summary>
public sealed record DraftEvent(int Position, int[] Accepted, int[] Rejected, int[] Emitted) : DecodingEvent(Position);

/// <summary>
/// One branching step of cautious decoding: the entropy that called for it, every trial's tokens and perplexity, the
/// winner (lowest perplexity) and how many of its tokens were kept (fewer when a stop condition hit inside it).
/// </summary>
public sealed record BranchEvent(int Position, double Entropy, int[][] Trials, double[] Perplexities, int Winner, int Kept) : DecodingEvent(Position);

/// <summary>A tool token fired at <see cref="DecodingEvent.Position"/>: the tool, its arguments and its result (or why it backed off).</summary>
public sealed record ToolTokenEvent(int Position, string Tool, string Arguments, string? Result, string? Error) : DecodingEvent(Position);

/// <summary>A grammar began to constrain the output at <see cref="DecodingEvent.Position"/> (a lazy grammar's trigger, or the start); it holds to the end.</summary>
public sealed record GrammarEvent(int Position) : DecodingEvent(Position);

/// <summary>
/// The opt-in per-request record of a strategy's events (<see cref="GenerationRequest.Trace"/>): strategies add to it on
/// the model's thread as the events happen; a streaming reader takes the new ones as it goes. A request without one
/// costs nothing. Thread-safe.
/// </summary>
public sealed class DecodingTrace
{
    private readonly List<DecodingEvent> _events = [];
    private int _taken;
    private bool _grammarOn;

    /// <summary>Every event so far, in order.</summary>
    public IReadOnlyList<DecodingEvent> Events
    {
        get
        {
            lock (_events)
                return _events.ToArray();
        }
    }

    /// <summary>Records one event.</summary>
    public void Add(DecodingEvent decodingEvent)
    {
        ArgumentNullException.ThrowIfNull(decodingEvent);
        lock (_events)
            _events.Add(decodingEvent);
    }

    /// <summary>The events recorded since the last call, or null when there are none.</summary>
    public DecodingEvent[]? TakeNew()
    {
        lock (_events)
        {
            if (_taken == _events.Count)
                return null;
            var taken = _events.GetRange(_taken, _events.Count - _taken).ToArray();
            _taken = _events.Count;
            return taken;
        }
    }

    /// <summary>Called before each grammar-constrained pick; records a <see cref="GrammarEvent"/> the first time the grammar is on.</summary>
    public void Grammar(int position, bool triggered)
    {
        if (!triggered || _grammarOn)
            return;
        _grammarOn = true;
        Add(new GrammarEvent(position));
    }

    /// <summary>Records a speculative step: <paramref name="tree"/> walked to <paramref name="lastNode"/>, emitting <c>history[firstEmitted..]</c>.</summary>
    internal void Draft(DraftTree tree, int lastNode, List<int> history, int firstEmitted, int promptLength)
    {
        var onPath = new bool[tree.Count];
        for (var n = lastNode; n > 0; n = tree.Parent(n))
            onPath[n] = true;
        var accepted = new int[tree.Depth(lastNode)];
        var rejected = new List<int>();
        for (var n = 1; n < tree.Count; n++)
        {
            if (onPath[n])
                accepted[tree.Depth(n) - 1] = tree.Token(n);
            else
                rejected.Add(tree.Token(n));
        }
        Add(new DraftEvent(firstEmitted - promptLength, accepted, [.. rejected], history.GetRange(firstEmitted, history.Count - firstEmitted).ToArray()));
    }
}
