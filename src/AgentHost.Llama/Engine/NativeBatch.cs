using System.Runtime.InteropServices;
using LLama.Native;

namespace AgentHost.Llama.Engine;

/// <summary>
/// A llama_batch in native memory, allocated once per session and reused for every decode.
/// LLamaSharp's <see cref="LLamaBatch"/> pins each of its arrays (one per token slot) on every
/// decode; at one token per decode that bookkeeping is a measurable part of the step, so the hot
/// path writes straight into these buffers and calls llama_decode itself.
/// </summary>
internal sealed unsafe class NativeBatch : IDisposable
{
    private static readonly delegate* unmanaged[Cdecl]<IntPtr, LLamaNativeBatch, int> _decode = ResolveDecode();

    private readonly int _capacity;
    private readonly int _maxSequences;
    private LLamaNativeBatch _batch;
    private LLamaSeqId* _sequenceIds;   // _capacity rows of _maxSequences ids; _batch.seq_id points at the rows

    public NativeBatch(int capacity, int maxSequences)
    {
        _capacity = capacity;
        _maxSequences = maxSequences;
        _batch.tokens = (LLamaToken*)NativeMemory.Alloc((nuint)capacity, (nuint)sizeof(LLamaToken));
        _batch.pos = (LLamaPos*)NativeMemory.Alloc((nuint)capacity, (nuint)sizeof(LLamaPos));
        _batch.n_seq_id = (int*)NativeMemory.Alloc((nuint)capacity, sizeof(int));
        _batch.logits = (byte*)NativeMemory.Alloc((nuint)capacity);
        _batch.seq_id = (LLamaSeqId**)NativeMemory.Alloc((nuint)capacity, (nuint)sizeof(LLamaSeqId*));
        _sequenceIds = (LLamaSeqId*)NativeMemory.Alloc((nuint)(capacity * maxSequences), (nuint)sizeof(LLamaSeqId));
        for (var i = 0; i < capacity; i++)
            _batch.seq_id[i] = _sequenceIds + i * maxSequences;
    }

    public int Count => _batch.n_tokens;

    public int Capacity => _capacity;

    public void Clear() => _batch.n_tokens = 0;

    /// <summary>Appends a token; returns its index in the batch.</summary>
    public int Add(int token, int position, ReadOnlySpan<int> sequences, bool logits)
    {
        var index = _batch.n_tokens;
        if (index == _capacity)
            throw new InvalidOperationException($"The batch is full ({_capacity} tokens, the context's BatchSize).");
        if (sequences.Length > _maxSequences)
            throw new ArgumentException($"A token can belong to at most {_maxSequences} sequences.", nameof(sequences));

        _batch.tokens[index] = (LLamaToken)token;
        _batch.pos[index] = position;
        _batch.n_seq_id[index] = sequences.Length;
        var row = _batch.seq_id[index];
        for (var i = 0; i < sequences.Length; i++)
            row[i] = (LLamaSeqId)sequences[i];
        _batch.logits[index] = logits ? (byte)1 : (byte)0;
        _batch.n_tokens = index + 1;
        return index;
    }

    /// <summary>Runs llama_decode on <paramref name="context"/> with this batch.</summary>
    public DecodeResult Decode(SafeLLamaContextHandle context)
    {
        var added = false;
        context.DangerousAddRef(ref added);
        try
        {
            return (DecodeResult)_decode(context.DangerousGetHandle(), _batch);
        }
        finally
        {
            if (added)
                context.DangerousRelease();
        }
    }

    public void Dispose()
    {
        if (_batch.tokens is null)
            return;
        NativeMemory.Free(_batch.tokens);
        NativeMemory.Free(_batch.pos);
        NativeMemory.Free(_batch.n_seq_id);
        NativeMemory.Free(_batch.logits);
        NativeMemory.Free(_batch.seq_id);
        NativeMemory.Free(_sequenceIds);
        _batch = default;
        _sequenceIds = null;
    }

    // The llama library LLamaSharp has loaded (its resolver picks the backend build), not another copy.
    private static delegate* unmanaged[Cdecl]<IntPtr, LLamaNativeBatch, int> ResolveDecode()
    {
        var library = NativeLibrary.Load("llama", typeof(NativeApi).Assembly, null);
        return (delegate* unmanaged[Cdecl]<IntPtr, LLamaNativeBatch, int>)NativeLibrary.GetExport(library, "llama_decode");
    }
}
