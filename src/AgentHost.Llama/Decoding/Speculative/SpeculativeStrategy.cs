using System.Diagnostics;
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
/// the whole tree in one batch (tree attention through sequence-id sets), then walk it from the root
/// (<see cref="DraftTree.Walk"/>): at each node choose the next token exactly as plain decoding would
/// from that node's logits (argmax, or a draw from the sampler chain: "sample, then match"); descend
/// while a child holds the chosen token; the first unmatched choice is the bonus token that roots the
/// next tree. Every emitted token is the verifier's own choice, so greedy output equals plain greedy
/// and sampled output has the plain sampling distribution. Subclasses only draft (and may learn from
/// the logits); an empty draft is a plain step. Every step is timed into the model's
/// <see cref="VerificationCosts"/>, which is how drafts learn what they cost.
/// An instance reuses its buffers between requests: use it for one request at a time.
/// </summary>
public abstract class SpeculativeStrategy : IDecodingStrategy
{
    private readonly DraftTree _tree = new();

    /// <inheritdoc />
    public abstract string Name { get; }

    /// <summary>Called on the scheduler thread after every step (tests check invariants here).</summary>
    public Action<InferenceSession, SpeculativeStep>? StepObserver { get; set; }

    /// <inheritdoc />
    public virtual int SequencesWanted(int available) => Math.Min(available, DefaultLeaves);

    /// <inheritdoc />
    public virtual int ScratchCells(int promptTokens, int maxTokens, int batchCapacity) => batchCapacity;   // one tree at a time

    /// <summary>Sequences (most draft leaves) a request asks the engine for when its strategy does not fix the tree.</summary>
    public const int DefaultLeaves = 8;

    /// <inheritdoc />
    public async ValueTask<GenerationResult> GenerateAsync(InferenceSession session, GenerationRequest request, Action<string>? onText, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(request);
        GrammarConstraint.Refuse(request.Grammar, Name);
        request.RefuseTokenLevelFields(Name);
        var context = new SpeculativeContext(session, request, session.Model.GetState(_ => new VerificationCosts()));
        Prepare(context);
        var run = await GenerationRun.StartAsync(session, request, onText, cancellationToken).ConfigureAwait(false);
        var sampler = request.Sampling is { Temperature: > 0 } sampling ? new TokenSampler(sampling, session.Model.Vocabulary.Count) : null;
        var history = context.HistoryList;
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
            var started = Stopwatch.GetTimestamp();
            var past = session.GetPast(0);

            // 1. Draft, never past the end of the context.
            _tree.Reset(root);
            context.MaxDepth = session.ContextSize - past - 1;
            context.ExpectedTokens = double.NaN;
            Draft(context, _tree);
            _tree.Complete();
            if (_tree.LeafCount > session.SequenceCount || _tree.Count > session.BatchCapacity)
                throw new AgentHostException(ErrorKind.InvalidArgument,
                    $"A draft of {_tree.Count} tokens and {_tree.LeafCount} leaves needs Sequences >= {_tree.LeafCount} and BatchSize >= {_tree.Count}; the model has {session.SequenceCount} and {session.BatchCapacity}.");

            // 2. Verify the whole tree in one decode (in the engine, in one shared batch with the other requests).
            await session.WaitForRoomAsync(_tree.Count).ConfigureAwait(false);
            for (var leaf = 1; leaf < _tree.LeafCount; leaf++)
                session.CopySequence(0, leaf);
            var batchIndex = context.BatchIndex(_tree.Count);
            session.ClearBatch();
            for (var n = 0; n < _tree.Count; n++)
                batchIndex[n] = session.AddToBatch(_tree.Token(n), past + _tree.Depth(n), _tree.Sequences(n), logits: true);
            await session.DecodeAsync(cancellationToken).ConfigureAwait(false);

            // 3. Walk: choose as plain decoding would at each node, descend while a child matches.
            context.FirstEmitted = history.Count;
            var verifier = new Verifier(session, sampler, run, _tree, batchIndex, history, past);
            var node = _tree.Walk(ref verifier, out root, out stopped);
            context.LastNode = node;
            stats.Record(_tree.Count, _tree.Depth(node), history.Count - context.FirstEmitted, context.ExpectedTokens, context.Costs.Cost(_tree.Count));

            request.Trace?.Draft(_tree, node, history, context.FirstEmitted, run.PromptTokens.Length);
            Observe(context, _tree);
            if (StepObserver is not null)
                StepObserver(session, Trace(session, history, context.FirstEmitted, node, batchIndex));

            // 4. Keep what was accepted: the walked nodes end up in sequence 0, everything else goes.
            if (_tree.Count > 1)
            {
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
            }
            if (StepObserver is not null)
                session.VerifyKvCache();
            // C(b) is the cost of a decode of b tokens: in the engine b counts every request's tokens in the shared decode.
            context.Load = session.LastBatchSize - _tree.Count;
            context.Costs.Record(session.LastBatchSize, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }

        var extra = stats.ToDictionary();
        var details = new Dictionary<string, object?> { ["mat"] = stats.Mat };
        AddResults(context, extra, details);
        return run.Finish(Name, sampler?.Seed, extra, details);
    }

    /// <summary>
    /// Fills <paramref name="tree"/> (already holding the root, <c>History[^1]</c>) with drafts no deeper
    /// than <see cref="SpeculativeContext.MaxDepth"/>, or leaves it alone for a plain step; sets
    /// <see cref="SpeculativeContext.ExpectedTokens"/>.
    /// </summary>
    protected abstract void Draft(SpeculativeContext context, DraftTree tree);

    /// <summary>Called once per request before the prompt is decoded (checks, per-model state).</summary>
    protected virtual void Prepare(SpeculativeContext context)
    {
    }

    /// <summary>
    /// Sees every node's verifier logits (<see cref="SpeculativeContext.Logits"/>) after the walk and
    /// before the next decode (token recycling learns its matrix here). <c>History</c> from
    /// <see cref="SpeculativeContext.FirstEmitted"/> on holds this step's emitted tokens;
    /// <see cref="SpeculativeContext.LastNode"/> is the deepest node walked.
    /// </summary>
    protected virtual void Observe(SpeculativeContext context, DraftTree tree)
    {
    }

    /// <summary>
    /// Adds strategy-specific counters (additive over requests, as <c>bench</c> sums them) and
    /// details (derived values such as the template used) to the result.
    /// </summary>
    protected virtual void AddResults(SpeculativeContext context, Dictionary<string, double> extra, Dictionary<string, object?> details)
    {
    }

    private SpeculativeStep Trace(InferenceSession session, List<int> history, int firstEmitted, int lastNode, int[] batchIndex)
    {
        var tokens = new int[_tree.Count];
        var parents = new int[_tree.Count];
        var argMax = new int[_tree.Count];
        for (var n = 0; n < _tree.Count; n++)
        {
            tokens[n] = _tree.Token(n);
            parents[n] = _tree.Parent(n);
            argMax[n] = TokenSampler.ArgMax(session.GetLogits(batchIndex[n]));
        }
        var path = new List<int>();
        for (var n = lastNode; n >= 0; n = _tree.Parent(n))
            path.Insert(0, n);
        return new SpeculativeStep(tokens, parents, argMax, [.. path], history.Skip(firstEmitted).ToArray());
    }

    /// <summary>The engine's verifier: plain decoding's choice from each node's logits, emitted into the run.</summary>
    private readonly struct Verifier(InferenceSession session, TokenSampler? sampler, GenerationRun run, DraftTree tree, int[] batchIndex, List<int> history, int past) : IDraftVerifier
    {
        public int Choose(int node)
        {
            var logits = session.GetLogits(batchIndex[node]);
            return sampler is null ? TokenSampler.ArgMax(logits) : sampler.Sample(logits);
        }

        public bool Emit(int node, int token)
        {
            history.Add(token);
            if (run.Output.Accept(token))
                return true;
            if (past + tree.Depth(node) + 1 < session.ContextSize)
                return false;
            run.Output.StopFor(StopReason.ContextFull);
            return true;
        }
    }

    private sealed class SpeculativeStats
    {
        private readonly List<int> _depthReached = [];   // steps whose walk reached depth d (index d-1)

        private int _forwards;
        private int _plainSteps;
        private long _draftedTokens;
        private long _acceptedDrafts;
        private long _emittedTokens;
        private double _expectedTokens;
        private double _cost;

        public void Record(int nodes, int depth, int emitted, double expected, double cost)
        {
            _forwards++;
            if (nodes == 1)
                _plainSteps++;
            _draftedTokens += nodes - 1;
            _acceptedDrafts += depth;
            _emittedTokens += emitted;
            _expectedTokens += double.IsNaN(expected) ? 1 : expected;
            _cost += cost;
            for (var d = 1; d <= depth; d++)
            {
                if (_depthReached.Count < d)
                    _depthReached.Add(0);
                _depthReached[d - 1]++;
            }
        }

        public double Mat => _forwards == 0 ? 0 : Math.Round((double)_emittedTokens / _forwards, 4);

        public Dictionary<string, double> ToDictionary()
        {
            var extra = new Dictionary<string, double>
            {
                ["forwards"] = _forwards,
                ["plain_steps"] = _plainSteps,
                ["tree_emitted_tokens"] = _emittedTokens,
                ["drafted_tokens"] = _draftedTokens,
                ["accepted_drafts"] = _acceptedDrafts,
                // Sums over steps of the prediction the draft was chosen by (E) and of the C(b) it was costed at.
                ["expected_tokens"] = Math.Round(_expectedTokens, 3),
                ["verification_cost"] = Math.Round(_cost, 3),
            };
            for (var d = 0; d < _depthReached.Count; d++)
                extra[$"accepted_at_depth_{d + 1}"] = _depthReached[d];
            return extra;
        }
    }
}
