using AgentHost.Llama.Decoding;
using AgentHost.Llama.Models;
using LLama;
using LLama.Native;

namespace AgentHost.Llama.Engine;

/// <summary>
/// One llama.cpp context and its KV cache, with the primitives every decoding strategy is built from:
/// batches of tokens with explicit positions, sequence-id sets and logits flags; logits and hidden
/// states per batch index; sequence copy/keep/remove; and the n_past bookkeeping of every sequence.
/// This class is the one place that owns the KV-cache invariants (<see cref="VerifyKvCache"/>).
/// All members must be called on the model's scheduler thread.
/// </summary>
public sealed class InferenceSession : IDisposable
{
    private readonly LLamaContext _context;
    private readonly SafeLLamaContextHandle _handle;
    private readonly NativeBatch _batch;
    private readonly int[] _past;
    private readonly int[][] _tokens;      // per sequence: the token held at each position (valid below _past)
    private readonly int[] _pendingPast;   // per sequence: highest position in the pending batch + 1
    private readonly int[] _oneSequence = new int[1];

    internal InferenceSession(LlamaModel model, bool hiddenStates)
    {
        model.Scheduler.VerifyAccess();
        Model = model;
        HasHiddenStates = hiddenStates || model.Settings.HiddenStates;
        var parameters = HasHiddenStates ? model.Parameters with { Embeddings = true, PoolingType = LLamaPoolingType.None } : model.Parameters;
        _context = model.Weights.CreateContext(parameters);
        _handle = _context.NativeHandle;
        ContextSize = Math.Min((int)_handle.ContextSize, model.ContextSize);
        _past = new int[model.Settings.Sequences];
        _tokens = new int[_past.Length][];
        for (var s = 0; s < _tokens.Length; s++)
            _tokens[s] = new int[ContextSize];
        _batch = new NativeBatch((int)_handle.BatchSize, _past.Length);
        _pendingPast = new int[_past.Length];
    }

    /// <summary>The model this session decodes with.</summary>
    public LlamaModel Model { get; }

    /// <summary>
    /// Context size in tokens (shared by all sequences): the configured size, even where llama.cpp
    /// rounds its allocation up (it pads to a multiple of 256).
    /// </summary>
    public int ContextSize { get; }

    /// <summary>Number of sequences (ids 0 .. SequenceCount-1).</summary>
    public int SequenceCount => _past.Length;

    /// <summary>Most tokens one <see cref="Decode"/> call may hold.</summary>
    public int BatchCapacity => (int)_handle.BatchSize;

    /// <summary>Tokens currently in the pending batch.</summary>
    public int BatchCount => _batch.Count;

    /// <summary>Decode calls made by this session so far.</summary>
    public int DecodeCalls { get; private set; }

    /// <summary>Number of positions held for <paramref name="sequence"/> (its next position).</summary>
    public int GetPast(int sequence) => _past[sequence];

    /// <summary>The tokens <paramref name="sequence"/> holds, by position (what its KV cache was computed from).</summary>
    public ReadOnlySpan<int> GetTokens(int sequence) => _tokens[CheckSequence(sequence)].AsSpan(0, _past[sequence]);

    /// <summary>Empties the pending batch.</summary>
    public void ClearBatch()
    {
        _batch.Clear();
        Array.Clear(_pendingPast);
    }

    /// <summary>Adds a token of one sequence to the pending batch; returns its batch index.</summary>
    public int AddToBatch(int token, int position, int sequence, bool logits)
    {
        _oneSequence[0] = CheckSequence(sequence);
        NotePending(sequence, position, token);
        return _batch.Add(token, position, _oneSequence, logits);
    }

    /// <summary>Adds a token shared by several sequences (tree attention, shared prefixes); returns its batch index.</summary>
    public int AddToBatch(int token, int position, ReadOnlySpan<int> sequences, bool logits)
    {
        if (sequences.IsEmpty)
            throw new ArgumentException("A token needs at least one sequence.", nameof(sequences));
        foreach (var sequence in sequences)
        {
            CheckSequence(sequence);
            NotePending(sequence, position, token);
        }
        return _batch.Add(token, position, sequences, logits);
    }

    /// <summary>
    /// Decodes the pending batch and updates n_past: every sequence's past becomes at least the highest
    /// position it received plus one. The batch is kept until the next <see cref="ClearBatch"/> so that
    /// logits can be read by batch index.
    /// </summary>
    public void Decode(CancellationToken cancellationToken = default)
    {
        Model.Scheduler.VerifyAccess();
        cancellationToken.ThrowIfCancellationRequested();
        if (_batch.Count == 0)
            return;

        var result = _batch.Decode(_handle);
        DecodeCalls++;
        switch (result)
        {
            case DecodeResult.Ok:
                break;
            case DecodeResult.NoKvSlot:
                throw new AgentHostException(ErrorKind.ContextOverflow, $"The context of {ContextSize} tokens is full; use a shorter input or a larger ContextSize.");
            case DecodeResult.ComputeAborted:
                throw new OperationCanceledException(cancellationToken);
            default:
                throw new InvalidOperationException($"llama_decode failed: {result}.");
        }
        UpdatePast();
    }

    /// <summary>
    /// Decodes <paramref name="tokens"/> into <paramref name="sequence"/> from its current past, in chunks
    /// of the batch size, requesting logits for the last token only. Returns that token's batch index.
    /// </summary>
    public int Prefill(ReadOnlySpan<int> tokens, int sequence, CancellationToken cancellationToken = default)
        => Prefill(tokens, sequence, 1, null, cancellationToken);

    /// <summary>
    /// Like <see cref="Prefill(ReadOnlySpan{int}, int, CancellationToken)"/>, requesting outputs (logits, hidden states)
    /// for the last <paramref name="outputs"/> tokens; after each chunk's decode <paramref name="onOutput"/> gets the batch
    /// index of each of that chunk's outputs, in text order (read them before the next decode).
    /// </summary>
    public int Prefill(ReadOnlySpan<int> tokens, int sequence, int outputs, Action<int>? onOutput, CancellationToken cancellationToken = default)
    {
        if (tokens.IsEmpty)
            throw new ArgumentException("Nothing to prefill.", nameof(tokens));
        ArgumentOutOfRangeException.ThrowIfLessThan(outputs, 1);
        if (_past[sequence] + tokens.Length > ContextSize)
            throw new AgentHostException(ErrorKind.ContextOverflow, $"The input is {tokens.Length} tokens but only {ContextSize - _past[sequence]} of the context's {ContextSize} are free.");

        var lastIndex = -1;
        for (var start = 0; start < tokens.Length; start += BatchCapacity)
        {
            var chunk = tokens.Slice(start, Math.Min(BatchCapacity, tokens.Length - start));
            ClearBatch();
            var position = _past[sequence];
            var firstOutput = -1;
            for (var i = 0; i < chunk.Length; i++)
            {
                var output = start + i >= tokens.Length - outputs;
                var index = AddToBatch(chunk[i], position + i, sequence, output);
                if (output && firstOutput < 0)
                    firstOutput = index;
                if (start + i == tokens.Length - 1)
                    lastIndex = index;
            }
            Decode(cancellationToken);
            if (onOutput is not null && firstOutput >= 0)
            {
                for (var index = firstOutput; index < chunk.Length; index++)
                    onOutput(index);
            }
        }
        return lastIndex;
    }

    /// <summary>Logits (vocabulary size) of the token at <paramref name="batchIndex"/> of the last decode; valid until the next decode.</summary>
    public ReadOnlySpan<float> GetLogits(int batchIndex) => _handle.GetLogitsIth(batchIndex);

    /// <summary>Whether decodes also return final hidden states (<see cref="ModelSettings.HiddenStates"/>, or a session created for them).</summary>
    public bool HasHiddenStates { get; }

    /// <summary>Final hidden state of the token at <paramref name="batchIndex"/>; needs <see cref="HasHiddenStates"/>.</summary>
    public ReadOnlySpan<float> GetHiddenState(int batchIndex)
    {
        if (!HasHiddenStates)
            throw new InvalidOperationException($"Model {Model.Name} was loaded without HiddenStates and this session was not created for them.");
        return _handle.GetEmbeddingsIth(batchIndex);
    }

    /// <summary>Copies positions [p0, p1) of <paramref name="source"/> into <paramref name="target"/> (p1 = -1: to the end).</summary>
    public void CopySequence(int source, int target, int p0 = 0, int p1 = -1)
    {
        Model.Scheduler.VerifyAccess();
        _handle.MemorySequenceCopy((LLamaSeqId)CheckSequence(source), (LLamaSeqId)CheckSequence(target), p0, p1);
        var copiedEnd = p1 < 0 ? _past[source] : Math.Min(p1, _past[source]);
        if (copiedEnd > p0)
        {
            Array.Copy(_tokens[source], p0, _tokens[target], p0, copiedEnd - p0);
            _past[target] = Math.Max(_past[target], copiedEnd);
        }
    }

    /// <summary>Removes positions [p0, p1) of <paramref name="sequence"/> (p1 = -1: to the end).</summary>
    public void RemoveSequence(int sequence, int p0 = 0, int p1 = -1)
    {
        Model.Scheduler.VerifyAccess();
        _handle.MemorySequenceRemove((LLamaSeqId)CheckSequence(sequence), p0, p1);
        if (p1 < 0 || p1 >= _past[sequence])
            _past[sequence] = Math.Min(_past[sequence], Math.Max(p0, 0));
    }

    /// <summary>Removes positions <paramref name="p0"/> and later from every sequence.</summary>
    public void TruncateAll(int p0)
    {
        Model.Scheduler.VerifyAccess();
        _handle.MemorySequenceRemove((LLamaSeqId)(-1), p0, -1);
        for (var s = 0; s < _past.Length; s++)
            _past[s] = Math.Min(_past[s], Math.Max(p0, 0));
    }

    /// <summary>Keeps only <paramref name="sequence"/>; every other sequence is removed.</summary>
    public void KeepSequence(int sequence)
    {
        Model.Scheduler.VerifyAccess();
        _handle.MemorySequenceKeep((LLamaSeqId)CheckSequence(sequence));
        for (var s = 0; s < _past.Length; s++)
        {
            if (s != sequence)
                _past[s] = 0;
        }
    }

    /// <summary>Empties the whole KV cache.</summary>
    public void Reset()
    {
        Model.Scheduler.VerifyAccess();
        _handle.MemoryClear(true);
        Array.Clear(_past);
        ClearBatch();
    }

    /// <summary>
    /// Checks that the KV cache holds exactly what n_past says: for every sequence, positions
    /// 0 .. past-1 (or nothing when past is 0). Throws <see cref="InvalidOperationException"/> describing
    /// the first mismatch. Cheap (two native calls per sequence); strategies call it in tests.
    /// </summary>
    public void VerifyKvCache()
    {
        Model.Scheduler.VerifyAccess();
        for (var s = 0; s < _past.Length; s++)
        {
            var id = (LLamaSeqId)s;
            int min = _handle.MemorySequenceMinPosition(id).Value;
            int max = _handle.MemorySequenceMaxPosition(id).Value;
            var expectedMin = _past[s] == 0 ? -1 : 0;
            if (max != _past[s] - 1 || min != expectedMin)
                throw new InvalidOperationException($"KV cache of sequence {s} holds positions {min}..{max} but n_past is {_past[s]}.");
        }
    }

    private void NotePending(int sequence, int position, int token)
    {
        // Recorded now, counted once the decode succeeds and n_past covers the position.
        if ((uint)position < (uint)ContextSize)
            _tokens[sequence][position] = token;
        if (position + 1 > _pendingPast[sequence])
            _pendingPast[sequence] = position + 1;
    }

    private void UpdatePast()
    {
        for (var s = 0; s < _past.Length; s++)
        {
            if (_pendingPast[s] > _past[s])
                _past[s] = _pendingPast[s];
        }
    }

    private int CheckSequence(int sequence)
    {
        if ((uint)sequence >= (uint)_past.Length)
            throw new ArgumentOutOfRangeException(nameof(sequence), sequence, $"Sequence ids run from 0 to {_past.Length - 1} (ModelSettings.Sequences).");
        return sequence;
    }

    /// <summary>Applies LoRA adapters (each with its scale) to this context, replacing any set before; empty removes them.</summary>
    public void SetLoraAdapters(ReadOnlySpan<(LoraAdapter Adapter, float Scale)> adapters)
    {
        Model.Scheduler.VerifyAccess();
        var copy = adapters.ToArray();
        _handle.SetLoraAdapters(copy);
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
        request = request.ForRun();
        return Model.Scheduler.RunAsync(() => strategy.Generate(this, request, onText, cancellationToken), cancellationToken);
    }

    /// <summary>Runs <paramref name="work"/> with this session on the model's scheduler thread (for custom loops and checks).</summary>
    public Task<T> RunAsync<T>(Func<InferenceSession, T> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        return Model.Scheduler.RunAsync(() => work(this), cancellationToken);
    }

    /// <summary>Frees the context.</summary>
    public void Dispose()
    {
        _context.Dispose();
        _batch.Dispose();
    }
}
