using LLama.Native;

namespace AgentHost.Llama.Models;

/// <summary>
/// What decoding needs to know about a model's tokens, precomputed once at load so the per-token
/// hot path does table look-ups instead of native calls: each token's bytes and whether it ends
/// generation.
/// </summary>
public sealed class TokenVocabulary
{
    private readonly byte[][] _bytes;
    private readonly bool[] _endOfGeneration;

    internal TokenVocabulary(SafeLlamaModelHandle model, InputGuard guard)
    {
        var vocab = model.Vocab;
        Count = vocab.Count;
        Bos = vocab.BOS is { } bos ? (int)bos : -1;
        Eos = vocab.EOS is { } eos ? (int)eos : -1;
        AddBos = vocab.ShouldAddBOS;
        Guard = guard;

        _bytes = new byte[Count][];
        _endOfGeneration = new bool[Count];
        Span<byte> buffer = stackalloc byte[256];
        for (var token = 0; token < Count; token++)
        {
            var length = (int)model.TokenToSpan((LLamaToken)token, buffer);
            _bytes[token] = length <= buffer.Length ? buffer[..length].ToArray() : ReadLongPiece(model, token, length);
            _endOfGeneration[token] = ((LLamaToken)token).IsEndOfGeneration(vocab);
        }
    }

    /// <summary>Number of tokens.</summary>
    public int Count { get; }

    /// <summary>Beginning-of-sequence token, or -1.</summary>
    public int Bos { get; }

    /// <summary>End-of-sequence token, or -1.</summary>
    public int Eos { get; }

    /// <summary>Whether prompts start with <see cref="Bos"/> (from the model's metadata).</summary>
    public bool AddBos { get; }

    /// <summary>The guard that keeps untokenizable characters away from llama.cpp.</summary>
    public InputGuard Guard { get; }

    /// <summary>The UTF-8 bytes a token renders to (control tokens render to nothing).</summary>
    public ReadOnlySpan<byte> GetBytes(int token) => _bytes[token];

    /// <summary>Whether sampling <paramref name="token"/> ends generation (EOS, EOT and the like).</summary>
    public bool IsEndOfGeneration(int token) => _endOfGeneration[token];

    private static byte[] ReadLongPiece(SafeLlamaModelHandle model, int token, int length)
    {
        var bytes = new byte[length];
        model.TokenToSpan((LLamaToken)token, bytes);
        return bytes;
    }
}
