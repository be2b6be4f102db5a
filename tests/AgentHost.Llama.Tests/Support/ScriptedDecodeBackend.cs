using AgentHost.Llama.Engine;
using LLama.Native;

namespace AgentHost.Llama.Tests;

/// <summary>
/// A fake of llama.cpp behind the decode seam: it keeps a KV cache of cells shared by sequence-id sets, as llama.cpp's
/// unified cache does, and gives each output the logits a script computes from that sequence's tokens so far. Its
/// logits never depend on what else is in the batch, so the engine's bookkeeping (admission, eviction, cancellation,
/// speculative acceptance, trial selection) can be checked exactly, without numerics.
/// </summary>
internal sealed class ScriptedDecodeBackend(int vocabulary, int contextSize = 512, int sequences = 8, int batchCapacity = 64) : IDecodeBackend
{
    private sealed class Cell(int position, int token)
    {
        public int Position { get; } = position;
        public int Token { get; } = token;
        public HashSet<int> Sequences { get; } = [];
    }

    private readonly List<Cell> _cells = [];
    private readonly List<(int Token, int Position, int[] Sequences, bool Logits)> _batch = [];
    private readonly Dictionary<int, float[]> _outputs = [];

    /// <summary>The logits after a history (a sequence's tokens, oldest first); null: <see cref="Periodic"/>.</summary>
    public Func<IReadOnlyList<int>, float[]>? Script { get; init; }

    /// <summary>Makes the decode with this number (1-based) fail, as llama.cpp does when a compute fails.</summary>
    public int FailDecode { get; set; }

    /// <summary>Tokens decoded so far (every request's).</summary>
    public int DecodedTokens { get; private set; }

    /// <summary>Decodes run so far.</summary>
    public int Decodes { get; private set; }

    /// <summary>The most requests (distinct first sequences) one decode held.</summary>
    public int MostRequestsInOneBatch { get; private set; }

    /// <summary>The token at position 0 of each prompt, in the order the prompts were decoded.</summary>
    public List<int> PromptStarts { get; } = [];

    public int ContextSize { get; } = contextSize;

    public int BatchCapacity { get; } = batchCapacity;

    public int SequenceCount { get; } = sequences;

    public bool HasHiddenStates => false;

    public int BatchCount => _batch.Count;

    public int CellsInUse => _cells.Count;

    public void ClearBatch() => _batch.Clear();

    public int AddToBatch(int token, int position, ReadOnlySpan<int> sequences, bool logits)
    {
        if (_batch.Count == BatchCapacity)
            throw new InvalidOperationException("batch full");
        _batch.Add((token, position, sequences.ToArray(), logits));
        return _batch.Count - 1;
    }

    public DecodeResult Decode()
    {
        Decodes++;
        if (Decodes == FailDecode)
            return (DecodeResult)(-1);   // llama_decode's error code for a failed compute
        if (_cells.Count + _batch.Count > ContextSize)
            return DecodeResult.NoKvSlot;
        _outputs.Clear();
        MostRequestsInOneBatch = Math.Max(MostRequestsInOneBatch, _batch.Select(e => e.Sequences[0]).Distinct().Count());
        for (var i = 0; i < _batch.Count; i++)
        {
            var (token, position, sequences, logits) = _batch[i];
            var cell = new Cell(position, token);
            cell.Sequences.UnionWith(sequences);
            _cells.Add(cell);
            DecodedTokens++;
            if (position == 0)
                PromptStarts.Add(token);
            if (logits)
                _outputs[i] = Script?.Invoke(History(sequences[0], position)) ?? Periodic(History(sequences[0], position), vocabulary);
        }
        return DecodeResult.Ok;
    }

    private List<int> History(int sequence, int position)
    {
        var history = new int[position + 1];
        var seen = new bool[position + 1];
        foreach (var cell in _cells)
        {
            if (cell.Position <= position && cell.Sequences.Contains(sequence))
            {
                history[cell.Position] = cell.Token;
                seen[cell.Position] = true;
            }
        }
        if (seen.Contains(false))
            throw new InvalidOperationException($"sequence {sequence} has a hole below position {position}");
        return [.. history];
    }

    public ReadOnlySpan<float> GetLogits(int batchIndex)
        => _outputs.TryGetValue(batchIndex, out var logits) ? logits : throw new InvalidOperationException($"no logits at batch index {batchIndex}");

    public ReadOnlySpan<float> GetHiddenState(int batchIndex) => throw new NotSupportedException();

    public void CopySequence(int source, int target, int p0, int p1)
    {
        foreach (var cell in _cells)
        {
            if (cell.Sequences.Contains(source) && cell.Position >= p0 && (p1 < 0 || cell.Position < p1))
                cell.Sequences.Add(target);
        }
    }

    public void RemoveSequence(int sequence, int p0, int p1)
    {
        foreach (var cell in _cells)
        {
            if (cell.Position >= p0 && (p1 < 0 || cell.Position < p1))
            {
                if (sequence < 0)
                    cell.Sequences.Clear();
                else
                    cell.Sequences.Remove(sequence);
            }
        }
        _cells.RemoveAll(c => c.Sequences.Count == 0);
    }

    public (int Min, int Max) Positions(int sequence)
    {
        var held = _cells.Where(c => c.Sequences.Contains(sequence)).Select(c => c.Position).ToList();
        return held.Count == 0 ? (-1, -1) : (held.Min(), held.Max());
    }

    public void SetLoraAdapters(ReadOnlySpan<(LoraAdapter Adapter, float Scale)> adapters) => throw new NotSupportedException();

    public void Dispose()
    {
    }

    /// <summary>
    /// Tokens 10..59 in a cycle: each token is followed by the next, so drafts from earlier text are right. Every
    /// seventh position puts the next three tokens within 0.05 of each other (a high-entropy step that cautious
    /// decoding branches on).
    /// </summary>
    public static float[] Periodic(IReadOnlyList<int> history, int vocabulary)
    {
        var logits = new float[vocabulary];
        Array.Fill(logits, -10f);
        var last = history[^1];
        var next = 10 + (Math.Max(last - 10, -1) + 1) % 50;
        logits[next] = 5;
        if (history.Count % 7 == 0)
        {
            logits[10 + (next - 10 + 1) % 50] = 4.95f;
            logits[10 + (next - 10 + 2) % 50] = 4.9f;
        }
        return logits;
    }
}
