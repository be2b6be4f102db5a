using AgentHost.Llama.Engine;
using AgentHost.Llama.Grammar;

namespace AgentHost.Llama.Decoding.Speculative;

/// <summary>What one verification step did, for tests and diagnostics (<see cref="SpeculativeStrategy.StepObserver"/>).</summary>
/// <param name="Tokens">Draft tokens by node (node 0 is the root).</param>
/// <param name="Parents">Parent of each node (-1 for the root).</param>
/// <param name="ArgMax">The argmax of each node's verifier logits.</param>
/// <param name="Path">The nodes walked, root first.</param>
/// <param name="Emitted">Tokens emitted by the step, in order.</param>
public sealed record SpeculativeStep(int[] Tokens, int[] Parents, int[] ArgMax, int[] Path, int[] Emitted);

/// <summary>
/// Lossless speculative decoding on one verifier: draft a tree from the last accepted token, decode
/// the whole tree in one batch (tree attention through sequence-id sets), then walk it from the root:
/// at each node choose the next token exactly as plain decoding would from that node's logits
/// (argmax, or a draw from the sampler chain: "sample, then match"); descend while a child holds the
/// chosen token; the first unmatched choice is the bonus token that roots the next tree. Every
/// emitted token is the verifier's own choice, so greedy output equals plain greedy and sampled
/// output has the plain sampling distribution. Subclasses only draft (and may learn from the logits).
/// An instance reuses its buffers between requests: use it for one request at a time.
/// </summary>
public abstract class SpeculativeStrategy : IDecodingStrategy
{
    private readonly DraftTree _tree = new();
    private int[] _batchIndex = new int[16];

    /// <inheritdoc />
    public abstract string Name { get; }

    /// <summary>The session of the request in progress (set for the duration of <see cref="Generate"/>).</summary>
    protected InferenceSession Session { get; private set; } = null!;

    /// <summary>Called on the scheduler thread after every step (tests check invariants here).</summary>
    public Action<InferenceSession, SpeculativeStep>? StepObserver { get; set; }

    /// <inheritdoc />
    public GenerationResult Generate(InferenceSession session, GenerationRequest request, Action<string>? onText, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        GrammarConstraint.Refuse(request.Grammar, Name);
        Session = session;
        Prepare(session, request);
        var run = GenerationRun.Start(session, request, onText, cancellationToken);
        var sampler = request.Sampling is { Temperature: > 0 } sampling ? new TokenSampler(sampling, session.Model.Vocabulary.Count) : null;
        var history = new List<int>(run.PromptTokens.Length + request.MaxTokens);
        history.AddRange(run.PromptTokens);
        foreach (var token in run.PromptTokens)
            sampler?.Accept(token);

        var stats = new SpeculativeStats();
        var first = sampler is null ? TokenSampler.ArgMax(session.GetLogits(run.LogitsIndex)) : sampler.Sample(session.GetLogits(run.LogitsIndex));
        history.Add(first);
        var root = first;
        var stopped = run.Accept(first);

        while (!stopped)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var past = session.GetPast(0);

            // 1. Draft, never past the end of the context.
            _tree.Reset(root);
            Draft(_tree, history, maxDepth: session.ContextSize - past - 1);
            _tree.Complete();
            if (_tree.LeafCount > session.SequenceCount || _tree.Count > session.BatchCapacity)
                throw new AgentHostException(ErrorKind.InvalidArgument,
                    $"A draft of {_tree.Count} tokens and {_tree.LeafCount} leaves needs Sequences >= {_tree.LeafCount} and BatchSize >= {_tree.Count}; the model has {session.SequenceCount} and {session.BatchCapacity}.");

            // 2. Verify the whole tree in one decode.
            for (var leaf = 1; leaf < _tree.LeafCount; leaf++)
                session.CopySequence(0, leaf);
            if (_batchIndex.Length < _tree.Count)
                _batchIndex = new int[Math.Max(_tree.Count, _batchIndex.Length * 2)];
            session.ClearBatch();
            for (var n = 0; n < _tree.Count; n++)
                _batchIndex[n] = session.AddToBatch(_tree.Token(n), past + _tree.Depth(n), _tree.Sequences(n), logits: true);
            session.Decode(cancellationToken);
            stats.Forwards++;
            stats.DraftedTokens += _tree.Count - 1;

            // 3. Walk: choose as plain decoding would at each node, descend while a child matches.
            var node = 0;
            var emittedAtStart = history.Count;
            while (true)
            {
                var logits = session.GetLogits(_batchIndex[node]);
                var choice = sampler is null ? TokenSampler.ArgMax(logits) : sampler.Sample(logits);
                history.Add(choice);
                stopped = run.Output.Accept(choice);
                if (!stopped && past + _tree.Depth(node) + 1 >= session.ContextSize)
                {
                    run.Output.StopFor(StopReason.ContextFull);
                    stopped = true;
                }
                var child = stopped ? -1 : _tree.FindChild(node, choice);
                if (child < 0)
                {
                    root = choice;
                    break;
                }
                node = child;
            }
            var emitted = history.Count - emittedAtStart;
            stats.Record(_tree.Depth(node), emitted);

            Observe(_tree, history, emittedAtStart, node, session, _batchIndex);
            if (StepObserver is not null)
                StepObserver(session, Trace(session, history, emittedAtStart, node));

            // 4. Keep what was accepted: the walked nodes end up in sequence 0, everything else goes.
            var newPast = past + _tree.Depth(node) + 1;
            var leafSequence = _tree.LeafBelow(node);
            if (leafSequence != 0)
            {
                session.RemoveSequence(0, past);
                session.CopySequence(leafSequence, 0, past, newPast);
            }
            session.TruncateAll(newPast);
            for (var leaf = 1; leaf < _tree.LeafCount; leaf++)
                session.RemoveSequence(leaf);
            if (StepObserver is not null)
                session.VerifyKvCache();
        }

        var extra = stats.ToDictionary();
        var details = new Dictionary<string, object?> { ["mat"] = stats.Mat };
        AddResults(extra, details);
        return run.Finish(Name, sampler?.Seed, extra, details);
    }

    /// <summary>Fills <paramref name="tree"/> (already holding the root) with drafts no deeper than <paramref name="maxDepth"/>.</summary>
    /// <param name="tree">The draft to fill.</param>
    /// <param name="history">Prompt and emitted tokens so far; the last one is the root.</param>
    /// <param name="maxDepth">Deepest node the context has room for.</param>
    protected abstract void Draft(DraftTree tree, IReadOnlyList<int> history, int maxDepth);

    /// <summary>Called once per request before the prompt is decoded (checks, one-time measurements).</summary>
    protected virtual void Prepare(InferenceSession session, GenerationRequest request)
    {
    }

    /// <summary>
    /// Sees every node's verifier logits after the walk and before the next decode (token recycling
    /// learns its matrix here). <paramref name="history"/> from <paramref name="firstEmitted"/> on holds
    /// this step's emitted tokens; <paramref name="lastNode"/> is the deepest node walked.
    /// </summary>
    protected virtual void Observe(DraftTree tree, IReadOnlyList<int> history, int firstEmitted, int lastNode, InferenceSession session, ReadOnlySpan<int> batchIndex)
    {
    }

    /// <summary>
    /// Adds strategy-specific counters (additive over requests, as <c>bench</c> sums them) and
    /// details (derived values such as the template used) to the result.
    /// </summary>
    protected virtual void AddResults(Dictionary<string, double> extra, Dictionary<string, object?> details)
    {
    }

    private SpeculativeStep Trace(InferenceSession session, List<int> history, int firstEmitted, int lastNode)
    {
        var tokens = new int[_tree.Count];
        var parents = new int[_tree.Count];
        var argMax = new int[_tree.Count];
        for (var n = 0; n < _tree.Count; n++)
        {
            tokens[n] = _tree.Token(n);
            parents[n] = _tree.Parent(n);
            argMax[n] = TokenSampler.ArgMax(session.GetLogits(_batchIndex[n]));
        }
        var path = new List<int>();
        for (var n = lastNode; n >= 0; n = _tree.Parent(n))
            path.Insert(0, n);
        return new SpeculativeStep(tokens, parents, argMax, [.. path], history.Skip(firstEmitted).ToArray());
    }

    private sealed class SpeculativeStats
    {
        private readonly List<int> _depthReached = [];   // steps whose walk reached depth d (index d-1)

        public int Forwards { get; set; }

        public long DraftedTokens { get; set; }

        public long AcceptedDrafts { get; private set; }

        public long EmittedTokens { get; private set; }

        public void Record(int depth, int emitted)
        {
            AcceptedDrafts += depth;
            EmittedTokens += emitted;
            for (var d = 1; d <= depth; d++)
            {
                if (_depthReached.Count < d)
                    _depthReached.Add(0);
                _depthReached[d - 1]++;
            }
        }

        public double Mat => Forwards == 0 ? 0 : Math.Round((double)EmittedTokens / Forwards, 4);

        public Dictionary<string, double> ToDictionary()
        {
            var extra = new Dictionary<string, double>
            {
                ["forwards"] = Forwards,
                ["tree_emitted_tokens"] = EmittedTokens,
                ["drafted_tokens"] = DraftedTokens,
                ["accepted_drafts"] = AcceptedDrafts,
            };
            for (var d = 0; d < _depthReached.Count; d++)
                extra[$"accepted_at_depth_{d + 1}"] = _depthReached[d];
            return extra;
        }
    }
}
