using AgentHost.Llama.Models;
using LLama.Native;

namespace AgentHost.Llama.Engine;

/// <summary>
/// One KV cache and its batch, shared by the sessions on it: a standalone session has one to itself, the engine
/// shares one between every request it runs (each request's sequences are ids of this context). This is the one
/// place that owns the KV-cache invariants: n_past and the tokens held per sequence are updated from what each
/// decode and each copy/remove did (<see cref="VerifyKvCache"/> checks them against llama.cpp).
/// All members must be called on the model's scheduler thread.
/// </summary>
internal sealed class DecodeContext : IDisposable
{
    private readonly IDecodeBackend _backend;
    private readonly int[] _past;
    private readonly int[][] _tokens;      // per sequence: the token held at each position (valid below _past)
    private readonly int[] _pendingPast;   // per sequence: highest position in the pending batch + 1

    public DecodeContext(LlamaModel model, IDecodeBackend backend)
    {
        Model = model;
        _backend = backend;
        ContextSize = backend.ContextSize;
        _past = new int[backend.SequenceCount];
        _tokens = new int[_past.Length][];
        for (var s = 0; s < _tokens.Length; s++)
            _tokens[s] = new int[ContextSize];
        _pendingPast = new int[_past.Length];
    }

    public LlamaModel Model { get; }

    public int ContextSize { get; }

    public int SequenceCount => _past.Length;

    public int BatchCapacity => _backend.BatchCapacity;

    public int BatchCount => _backend.BatchCount;

    public bool HasHiddenStates => _backend.HasHiddenStates;

    /// <summary>Decode calls made on this context.</summary>
    public int DecodeCalls { get; private set; }

    /// <summary>Tokens in the last decode (every request's together).</summary>
    public int LastBatchSize { get; private set; }

    public int GetPast(int sequence) => _past[sequence];

    public ReadOnlySpan<int> GetTokens(int sequence) => _tokens[sequence].AsSpan(0, _past[sequence]);

    public void ClearBatch()
    {
        _backend.ClearBatch();
        Array.Clear(_pendingPast);
    }

    public int AddToBatch(int token, int position, ReadOnlySpan<int> sequences, bool logits)
    {
        if (_backend.BatchCount == _backend.BatchCapacity)
            throw new InvalidOperationException($"The batch is full ({_backend.BatchCapacity} tokens, the context's BatchSize).");
        foreach (var sequence in sequences)
        {
            // Recorded now, counted once the decode succeeds and n_past covers the position.
            if ((uint)position < (uint)ContextSize)
                _tokens[sequence][position] = token;
            if (position + 1 > _pendingPast[sequence])
                _pendingPast[sequence] = position + 1;
        }
        return _backend.AddToBatch(token, position, sequences, logits);
    }

    /// <summary>Decodes the pending batch and updates n_past; the batch is kept until cleared so outputs can be read by index.</summary>
    public void Decode(CancellationToken cancellationToken = default)
    {
        Model.Scheduler.VerifyAccess();
        cancellationToken.ThrowIfCancellationRequested();
        if (_backend.BatchCount == 0)
            return;

        var result = _backend.Decode();
        DecodeCalls++;
        LastBatchSize = _backend.BatchCount;
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
        for (var s = 0; s < _past.Length; s++)
        {
            if (_pendingPast[s] > _past[s])
                _past[s] = _pendingPast[s];
        }
    }

    public ReadOnlySpan<float> GetLogits(int batchIndex) => _backend.GetLogits(batchIndex);

    public ReadOnlySpan<float> GetHiddenState(int batchIndex) => _backend.GetHiddenState(batchIndex);

    public void CopySequence(int source, int target, int p0, int p1)
    {
        Model.Scheduler.VerifyAccess();
        _backend.CopySequence(source, target, p0, p1);
        var copiedEnd = p1 < 0 ? _past[source] : Math.Min(p1, _past[source]);
        if (copiedEnd > p0)
        {
            Array.Copy(_tokens[source], p0, _tokens[target], p0, copiedEnd - p0);
            _past[target] = Math.Max(_past[target], copiedEnd);
        }
    }

    public void RemoveSequence(int sequence, int p0, int p1)
    {
        Model.Scheduler.VerifyAccess();
        _backend.RemoveSequence(sequence, p0, p1);
        if (p1 < 0 || p1 >= _past[sequence])
            _past[sequence] = Math.Min(_past[sequence], Math.Max(p0, 0));
    }

    /// <summary>Throws when llama.cpp's cache of <paramref name="sequence"/> is not exactly positions 0 .. past-1.</summary>
    public void VerifyKvCache(int sequence, int local)
    {
        Model.Scheduler.VerifyAccess();
        var (min, max) = _backend.Positions(sequence);
        var expectedMin = _past[sequence] == 0 ? -1 : 0;
        if (max != _past[sequence] - 1 || min != expectedMin)
            throw new InvalidOperationException($"KV cache of sequence {local} holds positions {min}..{max} but n_past is {_past[sequence]}.");
    }

    public void SetLoraAdapters(ReadOnlySpan<(LoraAdapter Adapter, float Scale)> adapters)
    {
        Model.Scheduler.VerifyAccess();
        _backend.SetLoraAdapters(adapters);
    }

    public void Dispose() => _backend.Dispose();
}
