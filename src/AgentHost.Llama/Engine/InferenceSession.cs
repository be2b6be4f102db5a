using System.Threading.Tasks.Sources;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Models;
using LLama.Native;

namespace AgentHost.Llama.Engine;

/// <summary>
/// A decoding session: sequences of a llama.cpp context with the primitives every strategy is built from (batches of
/// tokens with explicit positions, sequence-id sets and logits flags; logits and hidden states per batch index;
/// sequence copy/keep/remove; n_past per sequence). A session from <see cref="LlamaModel.CreateSessionAsync(bool, CancellationToken)"/>
/// owns its context and decodes at once. A session the engine gives a request is a slot of the engine's shared
/// context: its sequence ids are the request's own (0 is the request's, the rest scratch), its tokens join one
/// batch with every other request's, and <see cref="DecodeAsync"/> returns once that shared decode ran. Strategies
/// are written once against this type and run either way. All members must be called on the model's scheduler thread.
/// </summary>
public sealed class InferenceSession : IDisposable, IValueTaskSource
{
    private readonly DecodeContext _shared;
    private readonly int[] _ids;                 // local sequence id -> the shared context's
    private readonly ISessionHost? _host;        // the engine, or null for a standalone session
    private readonly int[] _mapped;              // scratch for mapping sequence-id sets
    private ManualResetValueTaskSourceCore<bool> _wait;
    private int _decodeCalls;
    private long _sharedBatchRequests;   // requests in the shared decodes this session took part in, summed

    internal InferenceSession(LlamaModel model, bool hiddenStates)
        : this(new DecodeContext(model, new LlamaDecodeBackend(model, hiddenStates)), null, null, 0)
    {
    }

    internal InferenceSession(DecodeContext shared, ISessionHost? host, int[]? sequences, int contextSize)
    {
        _shared = shared;
        _host = host;
        _ids = sequences ?? Enumerable.Range(0, shared.SequenceCount).ToArray();
        _mapped = new int[_ids.Length];
        ContextSize = contextSize > 0 ? contextSize : shared.ContextSize;
        _wait.RunContinuationsAsynchronously = false;   // resumed inline on the scheduler thread, in the engine's step
    }

    /// <summary>The model this session decodes with.</summary>
    public LlamaModel Model => _shared.Model;

    /// <summary>
    /// Most positions this session may use (its context: the whole context of a standalone session, a request's
    /// reservation in the engine), even where llama.cpp rounds its allocation up.
    /// </summary>
    public int ContextSize { get; }

    /// <summary>Number of sequences (ids 0 .. SequenceCount-1).</summary>
    public int SequenceCount => _ids.Length;

    /// <summary>Most tokens one decode may hold.</summary>
    public int BatchCapacity => _shared.BatchCapacity;

    /// <summary>Tokens the pending batch has room for (shared with other requests in the engine).</summary>
    public int BatchRoom => _shared.BatchCapacity - _shared.BatchCount;

    /// <summary>Tokens in the pending batch (every request's, in the engine).</summary>
    public int BatchCount => _shared.BatchCount;

    /// <summary>Decodes this session took part in.</summary>
    public int DecodeCalls => _host is null ? _shared.DecodeCalls : _decodeCalls;

    /// <summary>Tokens of every request in the last decode this session took part in (its own alone when standalone).</summary>
    public int LastBatchSize => _shared.LastBatchSize;

    /// <summary>Mean number of requests in the decodes this session took part in (1: it always decoded alone).</summary>
    public double MeanBatchRequests => _host is null || _decodeCalls == 0 ? 1 : (double)_sharedBatchRequests / _decodeCalls;

    /// <summary>Whether this session shares its decodes with other requests (an engine slot).</summary>
    public bool IsShared => _host is not null;

    /// <summary>Number of positions held for <paramref name="sequence"/> (its next position).</summary>
    public int GetPast(int sequence) => _shared.GetPast(Global(sequence));

    /// <summary>The tokens <paramref name="sequence"/> holds, by position (what its KV cache was computed from).</summary>
    public ReadOnlySpan<int> GetTokens(int sequence) => _shared.GetTokens(Global(sequence));

    /// <summary>Starts a new batch. In the engine the batch is shared and started by the engine: this does nothing.</summary>
    public void ClearBatch()
    {
        if (_host is null)
            _shared.ClearBatch();
    }

    /// <summary>Adds a token of one sequence to the pending batch; returns its batch index.</summary>
    public int AddToBatch(int token, int position, int sequence, bool logits)
    {
        _mapped[0] = Global(sequence);
        return _shared.AddToBatch(token, position, _mapped.AsSpan(0, 1), logits);
    }

    /// <summary>Adds a token shared by several sequences (tree attention, shared prefixes); returns its batch index.</summary>
    public int AddToBatch(int token, int position, ReadOnlySpan<int> sequences, bool logits)
    {
        if (sequences.IsEmpty)
            throw new ArgumentException("A token needs at least one sequence.", nameof(sequences));
        if (sequences.Length > _ids.Length)
            throw new ArgumentException($"A token can belong to at most {_ids.Length} sequences.", nameof(sequences));
        for (var i = 0; i < sequences.Length; i++)
            _mapped[i] = Global(sequences[i]);
        return _shared.AddToBatch(token, position, _mapped.AsSpan(0, sequences.Length), logits);
    }

    /// <summary>
    /// Decodes the pending batch now (a standalone session). Every sequence's past becomes at least the highest
    /// position it received plus one; outputs are read by batch index until the next decode.
    /// </summary>
    /// <exception cref="InvalidOperationException">An engine slot: its decodes are shared, use <see cref="DecodeAsync"/>.</exception>
    public void Decode(CancellationToken cancellationToken = default)
    {
        if (_host is not null)
            throw new InvalidOperationException("This session is a slot of the engine's shared batch: decode with DecodeAsync.");
        _shared.Decode(cancellationToken);
    }

    /// <summary>
    /// Decodes what this session added: at once when standalone; in the engine, with every other request's tokens in
    /// the next shared decode (returns once it ran; its outputs are then read by batch index).
    /// </summary>
    public ValueTask DecodeAsync(CancellationToken cancellationToken = default)
    {
        if (_host is null)
        {
            _shared.Decode(cancellationToken);
            return ValueTask.CompletedTask;
        }
        cancellationToken.ThrowIfCancellationRequested();
        _decodeCalls++;
        _host.AwaitDecode(this);
        return new ValueTask(this, _wait.Version);
    }

    /// <summary>
    /// Waits until the pending batch has room for <paramref name="tokens"/> tokens that must be decoded together (a
    /// draft tree): at once when standalone or when it has; else until the engine starts the next batch.
    /// </summary>
    public ValueTask WaitForRoomAsync(int tokens)
    {
        if (tokens > BatchCapacity)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"{tokens} tokens do not fit one batch of {BatchCapacity} (BatchSize).");
        if (_host is null || tokens <= BatchRoom)
            return ValueTask.CompletedTask;
        _host.AwaitRoom(this);
        return new ValueTask(this, _wait.Version);
    }

    /// <summary>
    /// Waits for work outside decoding (a tool) that may itself use this model. A standalone session runs the model's
    /// other queued work meanwhile (<see cref="ModelScheduler.WaitFor{T}"/>); an engine slot steps aside, and the other
    /// requests keep decoding until the work is done.
    /// </summary>
    public async ValueTask<T> WaitForAsync<T>(Func<Task<T>> start, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(start);
        if (_host is null)
            return Model.Scheduler.WaitFor(start, cancellationToken);
        var task = Model.Scheduler.StartOutsideWork(start);
        if (!task.IsCompleted)
        {
            _host.AwaitOutside(this, task);
            await new ValueTask(this, _wait.Version);
        }
        cancellationToken.ThrowIfCancellationRequested();
        return await task.ConfigureAwait(false);   // completed: no thread hop
    }

    /// <summary>
    /// Decodes <paramref name="tokens"/> into <paramref name="sequence"/> from its current past, requesting logits for
    /// the last token only. Returns that token's batch index. Standalone sessions only (see <see cref="PrefillAsync(ReadOnlyMemory{int}, int, CancellationToken)"/>).
    /// </summary>
    public int Prefill(ReadOnlySpan<int> tokens, int sequence, CancellationToken cancellationToken = default)
    {
        if (_host is not null)
            throw new InvalidOperationException("This session is a slot of the engine's shared batch: prefill with PrefillAsync.");
        return PrefillAsync(tokens.ToArray(), sequence, 1, null, cancellationToken).GetAwaiter().GetResult();
    }

    /// <summary>As <see cref="Prefill(ReadOnlySpan{int}, int, CancellationToken)"/>, in the engine's shared batches too.</summary>
    public ValueTask<int> PrefillAsync(ReadOnlyMemory<int> tokens, int sequence, CancellationToken cancellationToken = default)
        => PrefillAsync(tokens, sequence, 1, null, cancellationToken);

    /// <summary>
    /// Decodes <paramref name="tokens"/> into <paramref name="sequence"/> in chunks (as many as each batch has room for),
    /// requesting outputs (logits, hidden states) for the last <paramref name="outputs"/> tokens; after each decode
    /// <paramref name="onOutput"/> gets the batch index of each of that decode's outputs, in text order (read them
    /// before the next decode). Returns the batch index of the last token.
    /// </summary>
    public async ValueTask<int> PrefillAsync(ReadOnlyMemory<int> tokens, int sequence, int outputs, Action<int>? onOutput, CancellationToken cancellationToken = default)
    {
        if (tokens.IsEmpty)
            throw new ArgumentException("Nothing to prefill.", nameof(tokens));
        ArgumentOutOfRangeException.ThrowIfLessThan(outputs, 1);
        var start = GetPast(sequence);
        if (start + tokens.Length > ContextSize)
            throw new AgentHostException(ErrorKind.ContextOverflow, $"The input is {tokens.Length} tokens but only {ContextSize - start} of the context's {ContextSize} are free.");

        var lastIndex = -1;
        var outputIndexes = onOutput is null ? null : new List<int>();
        for (var fed = 0; fed < tokens.Length;)
        {
            ClearBatch();
            var end = Math.Min(tokens.Length, fed + BatchRoom);
            outputIndexes?.Clear();
            for (; fed < end; fed++)
            {
                var output = fed >= tokens.Length - outputs;
                var index = AddToBatch(tokens.Span[fed], start + fed, sequence, output);
                if (output)
                    outputIndexes?.Add(index);
                if (fed == tokens.Length - 1)
                    lastIndex = index;
            }
            await DecodeAsync(cancellationToken).ConfigureAwait(false);
            if (outputIndexes is not null)
            {
                foreach (var index in outputIndexes)
                    onOutput!(index);
            }
        }
        return lastIndex;
    }

    /// <summary>Logits (vocabulary size) of the token at <paramref name="batchIndex"/> of the last decode; valid until the next decode.</summary>
    public ReadOnlySpan<float> GetLogits(int batchIndex) => _shared.GetLogits(batchIndex);

    /// <summary>Whether decodes also return final hidden states (<see cref="ModelSettings.HiddenStates"/>, or a session created for them).</summary>
    public bool HasHiddenStates => _shared.HasHiddenStates;

    /// <summary>Final hidden state of the token at <paramref name="batchIndex"/>; needs <see cref="HasHiddenStates"/>.</summary>
    public ReadOnlySpan<float> GetHiddenState(int batchIndex)
    {
        if (!HasHiddenStates)
            throw new InvalidOperationException($"Model {Model.Name} was loaded without HiddenStates and this session was not created for them.");
        return _shared.GetHiddenState(batchIndex);
    }

    /// <summary>Copies positions [p0, p1) of <paramref name="source"/> into <paramref name="target"/> (p1 = -1: to the end).</summary>
    public void CopySequence(int source, int target, int p0 = 0, int p1 = -1) => _shared.CopySequence(Global(source), Global(target), p0, p1);

    /// <summary>Removes positions [p0, p1) of <paramref name="sequence"/> (p1 = -1: to the end).</summary>
    public void RemoveSequence(int sequence, int p0 = 0, int p1 = -1) => _shared.RemoveSequence(Global(sequence), p0, p1);

    /// <summary>Removes positions <paramref name="p0"/> and later from every sequence of this session.</summary>
    public void TruncateAll(int p0)
    {
        foreach (var id in _ids)
            _shared.RemoveSequence(id, p0, -1);
    }

    /// <summary>Keeps only <paramref name="sequence"/>; every other sequence of this session is emptied.</summary>
    public void KeepSequence(int sequence)
    {
        Global(sequence);
        for (var s = 0; s < _ids.Length; s++)
        {
            if (s != sequence)
                _shared.RemoveSequence(_ids[s], 0, -1);
        }
    }

    /// <summary>Empties every sequence of this session.</summary>
    public void Reset()
    {
        foreach (var id in _ids)
            _shared.RemoveSequence(id, 0, -1);
        ClearBatch();
    }

    /// <summary>
    /// Checks that the KV cache holds exactly what n_past says: for every sequence of this session, positions
    /// 0 .. past-1 (or nothing when past is 0). Throws <see cref="InvalidOperationException"/> describing the first
    /// mismatch. Cheap (two native calls per sequence); strategies call it in tests.
    /// </summary>
    public void VerifyKvCache()
    {
        for (var s = 0; s < _ids.Length; s++)
            _shared.VerifyKvCache(_ids[s], s);
    }

    /// <summary>Applies LoRA adapters (each with its scale) to this session's context, replacing any set before; empty removes them.</summary>
    public void SetLoraAdapters(ReadOnlySpan<(LoraAdapter Adapter, float Scale)> adapters)
    {
        if (_host is not null)
            throw new InvalidOperationException("LoRA adapters apply to a whole context; the engine's is shared by every request.");
        _shared.SetLoraAdapters(adapters);
    }

    /// <summary>Runs <paramref name="strategy"/> on this session, on the model's scheduler thread.</summary>
    public Task<GenerationResult> GenerateAsync(IDecodingStrategy strategy, GenerationRequest request, CancellationToken cancellationToken = default)
        => RunStrategyAsync(strategy, request, null, cancellationToken);

    /// <summary>
    /// Runs <paramref name="strategy"/> on this session and streams its text as it is generated; the last update
    /// carries the result. Stopping the enumeration early cancels the generation.
    /// </summary>
    public IAsyncEnumerable<GenerationUpdate> GenerateStreamingAsync(IDecodingStrategy strategy, GenerationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        request = request.ForRun();
        return GenerationStream.Run((onText, token) => RunStrategyAsync(strategy, request, onText, token), request.MaxTokens, cancellationToken, request.Recorder);
    }

    private Task<GenerationResult> RunStrategyAsync(IDecodingStrategy strategy, GenerationRequest request, Action<string>? onText, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        ArgumentNullException.ThrowIfNull(request);
        RequireStandalone();
        request = request.ForRun();
        return Model.Scheduler.RunAsync(() => Generate(strategy, request, onText, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// Runs <paramref name="strategy"/> to the end on this standalone session, on the scheduler thread (inside
    /// <see cref="RunAsync{T}"/>): every decode runs at once, so the strategy never waits.
    /// </summary>
    public GenerationResult Generate(IDecodingStrategy strategy, GenerationRequest request, Action<string>? onText, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        RequireStandalone();
        Model.Scheduler.VerifyAccess();
        var generation = strategy.GenerateAsync(this, request, onText, cancellationToken);
        // A standalone session completes every await at once, except a tool that calls back into the model, which the
        // scheduler runs while it waits (WaitForAsync): either way the generation is complete here.
        return generation.IsCompleted ? generation.Result : generation.AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Runs <paramref name="work"/> with this session on the model's scheduler thread (for custom loops and checks).</summary>
    public Task<T> RunAsync<T>(Func<InferenceSession, T> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        RequireStandalone();
        return Model.Scheduler.RunAsync(() => work(this), cancellationToken);
    }

    /// <summary>Frees the context (a standalone session; an engine slot's context is the engine's).</summary>
    public void Dispose()
    {
        if (_host is null)
            _shared.Dispose();
    }

    /// <summary>Whether the engine gave up on this session's request (a failed step): it must not decode again.</summary>
    internal bool IsAbandoned { get; private set; }

    /// <summary>Called by the engine when it fails this session's request; a strategy still waiting for a tool unwinds when it returns.</summary>
    internal void Abandon() => IsAbandoned = true;

    /// <summary>Called by the engine after a shared decode this session took part in.</summary>
    internal void NoteSharedDecode(int requests) => _sharedBatchRequests += requests;

    /// <summary>Called by the engine: the decode (or room, or outside work) this session waited for is there.</summary>
    internal void Resume(Exception? error)
    {
        if (error is null)
            _wait.SetResult(true);
        else
            _wait.SetException(error);
    }

    void IValueTaskSource.GetResult(short token)
    {
        try
        {
            _wait.GetResult(token);
        }
        finally
        {
            _wait.Reset();
        }
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _wait.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _wait.OnCompleted(continuation, state, token, flags & ~(ValueTaskSourceOnCompletedFlags.FlowExecutionContext | ValueTaskSourceOnCompletedFlags.UseSchedulingContext));

    private void RequireStandalone()
    {
        if (_host is not null)
            throw new InvalidOperationException("This session is a slot of the engine; the engine runs its request.");
    }

    private int Global(int sequence)
    {
        if ((uint)sequence >= (uint)_ids.Length)
            throw new ArgumentOutOfRangeException(nameof(sequence), sequence, $"Sequence ids run from 0 to {_ids.Length - 1} (ModelSettings.Sequences).");
        return _ids[sequence];
    }
}

/// <summary>What an engine slot waits for: the engine resumes the session (<see cref="InferenceSession.Resume"/>) on its thread.</summary>
internal interface ISessionHost
{
    /// <summary>The session added its tokens and waits for the next shared decode.</summary>
    void AwaitDecode(InferenceSession session);

    /// <summary>The session waits for an empty batch (its tokens must be decoded together).</summary>
    void AwaitRoom(InferenceSession session);

    /// <summary>The session waits for outside work; resume it on the scheduler thread once the task completes.</summary>
    void AwaitOutside(InferenceSession session, Task work);
}
