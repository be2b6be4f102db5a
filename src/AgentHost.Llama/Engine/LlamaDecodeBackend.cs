using AgentHost.Llama.Models;
using LLama;
using LLama.Native;

namespace AgentHost.Llama.Engine;

/// <summary>The decode seam on llama.cpp: one context and one native batch.</summary>
internal sealed class LlamaDecodeBackend : IDecodeBackend
{
    private readonly LLamaContext _context;
    private readonly SafeLLamaContextHandle _handle;
    private readonly NativeBatch _batch;

    public LlamaDecodeBackend(LlamaModel model, bool hiddenStates)
    {
        HasHiddenStates = hiddenStates || model.Settings.HiddenStates;
        var parameters = HasHiddenStates ? model.Parameters with { Embeddings = true, PoolingType = LLamaPoolingType.None } : model.Parameters;
        _context = model.Weights.CreateContext(parameters);
        _handle = _context.NativeHandle;
        // The configured size, even where llama.cpp rounds its allocation up (it pads to a multiple of 256).
        ContextSize = Math.Min((int)_handle.ContextSize, model.ContextSize);
        SequenceCount = model.Settings.Sequences;
        BatchCapacity = (int)_handle.BatchSize;
        _batch = new NativeBatch(BatchCapacity, SequenceCount);
    }

    public int ContextSize { get; }

    public int BatchCapacity { get; }

    public int SequenceCount { get; }

    public bool HasHiddenStates { get; }

    public int BatchCount => _batch.Count;

    public void ClearBatch() => _batch.Clear();

    public int AddToBatch(int token, int position, ReadOnlySpan<int> sequences, bool logits) => _batch.Add(token, position, sequences, logits);

    public DecodeResult Decode() => _batch.Decode(_handle);

    public ReadOnlySpan<float> GetLogits(int batchIndex) => _handle.GetLogitsIth(batchIndex);

    public ReadOnlySpan<float> GetHiddenState(int batchIndex) => _handle.GetEmbeddingsIth(batchIndex);

    public void CopySequence(int source, int target, int p0, int p1) => _handle.MemorySequenceCopy((LLamaSeqId)source, (LLamaSeqId)target, p0, p1);

    public void RemoveSequence(int sequence, int p0, int p1) => _handle.MemorySequenceRemove((LLamaSeqId)sequence, p0, p1);

    public (int Min, int Max) Positions(int sequence)
        => (_handle.MemorySequenceMinPosition((LLamaSeqId)sequence).Value, _handle.MemorySequenceMaxPosition((LLamaSeqId)sequence).Value);

    public void SetLoraAdapters(ReadOnlySpan<(LoraAdapter Adapter, float Scale)> adapters) => _handle.SetLoraAdapters(adapters.ToArray());

    public void Dispose()
    {
        _context.Dispose();
        _batch.Dispose();
    }
}
