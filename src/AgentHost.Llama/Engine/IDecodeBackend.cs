using LLama.Native;

namespace AgentHost.Llama.Engine;

/// <summary>
/// The decode seam: everything the engine asks of llama.cpp, and nothing more. Tokens go into one batch with
/// positions and sequence-id sets, one decode runs the batch, and logits / hidden states are read by batch index;
/// sequences are copied and removed by position range. <see cref="LlamaDecodeBackend"/> is llama.cpp; tests script
/// a fake whose logits they choose, to test admission, eviction, cancellation and acceptance without numerics.
/// All members are called on the model's scheduler thread.
/// </summary>
internal interface IDecodeBackend : IDisposable
{
    /// <summary>KV cells shared by all sequences.</summary>
    int ContextSize { get; }

    /// <summary>Most tokens one decode holds.</summary>
    int BatchCapacity { get; }

    /// <summary>Sequence ids run from 0 to SequenceCount - 1.</summary>
    int SequenceCount { get; }

    /// <summary>Whether decodes also return final hidden states.</summary>
    bool HasHiddenStates { get; }

    /// <summary>Tokens in the pending batch.</summary>
    int BatchCount { get; }

    /// <summary>Empties the pending batch.</summary>
    void ClearBatch();

    /// <summary>Appends a token to the pending batch; returns its batch index.</summary>
    int AddToBatch(int token, int position, ReadOnlySpan<int> sequences, bool logits);

    /// <summary>Decodes the pending batch (kept until cleared, so outputs can be read by batch index).</summary>
    DecodeResult Decode();

    /// <summary>Logits of the output at <paramref name="batchIndex"/> of the last decode.</summary>
    ReadOnlySpan<float> GetLogits(int batchIndex);

    /// <summary>Final hidden state of the output at <paramref name="batchIndex"/> of the last decode.</summary>
    ReadOnlySpan<float> GetHiddenState(int batchIndex);

    /// <summary>Adds <paramref name="target"/> to the cells of <paramref name="source"/> at positions [p0, p1) (p1 &lt; 0: to the end).</summary>
    void CopySequence(int source, int target, int p0, int p1);

    /// <summary>Removes positions [p0, p1) of <paramref name="sequence"/> (-1: of every sequence; p1 &lt; 0: to the end).</summary>
    void RemoveSequence(int sequence, int p0, int p1);

    /// <summary>Lowest and highest position <paramref name="sequence"/> holds (-1, -1 when empty).</summary>
    (int Min, int Max) Positions(int sequence);

    /// <summary>Applies LoRA adapters with their scales (empty removes them).</summary>
    void SetLoraAdapters(ReadOnlySpan<(LoraAdapter Adapter, float Scale)> adapters);
}
