using System.Buffers.Binary;
using System.Security.Cryptography;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Decoding.Speculative;

/// <summary>
/// Token recycling's memory: for every token, the top-<see cref="TreeTemplate.Width"/> next-token
/// candidates the model produced after it the last time it was verified. One per loaded model, kept
/// across requests (never reset), zero-initialised. Only the model's scheduler thread touches it.
/// </summary>
public sealed class AdjacencyMatrix
{
    private const int Width = TreeTemplate.Width;
    private const uint FileMagic = 0x4D525441; // "ATRM"

    private readonly int[] _rows;
    private readonly float[] _topValues = new float[Width];

    /// <summary>Creates a zero matrix for <paramref name="vocabularySize"/> tokens.</summary>
    public AdjacencyMatrix(int vocabularySize)
    {
        VocabularySize = vocabularySize;
        _rows = new int[vocabularySize * Width];
    }

    /// <summary>Rows (tokens).</summary>
    public int VocabularySize { get; }

    /// <summary>The candidates after <paramref name="token"/>, most likely first.</summary>
    public ReadOnlySpan<int> Row(int token) => _rows.AsSpan(token * Width, Width);

    /// <summary>Whether the row of <paramref name="token"/> holds candidates (a zero row has never been written).</summary>
    public bool IsWritten(int token) => _rows[token * Width] != _rows[token * Width + 1];

    /// <summary>Sets a row by hand (tests, warm start).</summary>
    public void SetRow(int token, ReadOnlySpan<int> candidates) => candidates[..Width].CopyTo(_rows.AsSpan(token * Width, Width));

    /// <summary>
    /// Overwrites the row of <paramref name="token"/> with the top candidates of <paramref name="logits"/>
    /// (one pass, partial selection) and returns the best one, the argmax.
    /// </summary>
    public int Update(int token, ReadOnlySpan<float> logits)
    {
        var row = _rows.AsSpan(token * Width, Width);
        TopK(logits, row, _topValues);
        return row[0];
    }

    /// <summary>
    /// The indices of the <paramref name="ids"/>.Length largest logits, in descending order (the lowest
    /// index first on ties, like an argmax).
    /// </summary>
    public static void TopK(ReadOnlySpan<float> logits, Span<int> ids, Span<float> values)
    {
        var k = ids.Length;
        var filled = 0;
        for (var i = 0; i < logits.Length; i++)
        {
            var v = logits[i];
            if (filled == k && v <= values[k - 1])
                continue;
            var at = filled < k ? filled++ : k - 1;
            while (at > 0 && values[at - 1] < v)
            {
                values[at] = values[at - 1];
                ids[at] = ids[at - 1];
                at--;
            }
            values[at] = v;
            ids[at] = i;
        }
    }

    /// <summary>Writes the matrix to <paramref name="path"/>, keyed by <paramref name="modelKey"/> (see <see cref="KeyOf"/>).</summary>
    public void Save(string path, string modelKey)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
            Directory.CreateDirectory(directory);
        var temporary = path + $".{Environment.ProcessId}.tmp";
        using (var stream = File.Create(temporary))
        using (var writer = new BinaryWriter(stream))
        {
            writer.Write(FileMagic);
            writer.Write(modelKey);
            writer.Write(VocabularySize);
            writer.Write(Width);
            var bytes = new byte[_rows.Length * sizeof(int)];
            for (var i = 0; i < _rows.Length; i++)
                BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(i * sizeof(int)), _rows[i]);
            writer.Write(bytes);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>
    /// Loads a matrix saved for the same model; a file for another model or vocabulary is refused with a
    /// clear error rather than silently degrading every draft.
    /// </summary>
    public void Load(string path, string modelKey)
    {
        try
        {
            using var stream = File.OpenRead(path);
            using var reader = new BinaryReader(stream);
            if (reader.ReadUInt32() != FileMagic)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"'{path}' is not a token-recycling matrix file.");
            var key = reader.ReadString();
            if (key != modelKey)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"The recycling matrix '{path}' was saved for another model (key {key}, this model {modelKey}).");
            if (reader.ReadInt32() != VocabularySize || reader.ReadInt32() != Width)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"The recycling matrix '{path}' has another shape than this model's vocabulary.");
            var bytes = reader.ReadBytes(_rows.Length * sizeof(int));
            if (bytes.Length != _rows.Length * sizeof(int))
                throw new AgentHostException(ErrorKind.InvalidArgument, $"The recycling matrix '{path}' is truncated.");
            for (var i = 0; i < _rows.Length; i++)
            {
                var value = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(i * sizeof(int)));
                _rows[i] = (uint)value < (uint)VocabularySize ? value : 0;
            }
        }
        catch (IOException ex)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"The recycling matrix '{path}' cannot be read: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// A key for the model's weights: SHA-256 of the GGUF header (metadata and tensor table) and the
    /// file length. Cheap for any model size; a matrix is only a hint (drafts are verified), so a
    /// collision could cost speed, never correctness.
    /// </summary>
    public static string KeyOf(LlamaModel model)
    {
        using var stream = File.OpenRead(model.Path);
        var header = new byte[Math.Min(model.File.DataOffset, stream.Length)];
        stream.ReadExactly(header);
        var hash = SHA256.HashData(header);
        return $"{Convert.ToHexStringLower(hash)}-{stream.Length}";
    }
}
