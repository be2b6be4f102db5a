using System.Globalization;
using System.Text;

namespace AgentHost.Llama.Models;

/// <summary>
/// Keeps text a vocabulary cannot encode away from llama.cpp. A SentencePiece vocabulary encodes a character it
/// has no piece for through byte-fallback tokens (<c>&lt;0xNN&gt;</c>); when the token for one of the character's
/// UTF-8 bytes is missing, llama.cpp throws <c>std::out_of_range</c>, which aborts the whole process (SIGABRT) and
/// .NET cannot catch. The guard computes at load which characters the vocabulary really covers (its single-character
/// pieces, and every character whose bytes all have a byte token) and checks every text before it is tokenized.
/// </summary>
public sealed class InputGuard
{
    private const string SpmSpace = "\u2581";     // SentencePiece's escaped space

    // Typographic characters and the ASCII stand-ins tried before falling back to a space.
    private static readonly Dictionary<char, string> _lookalikes = new()
    {
        ['\u2018'] = "'", ['\u2019'] = "'", ['\u201C'] = "\"", ['\u201D'] = "\"",
        ['\u2013'] = "-", ['\u2014'] = "-", ['\u2026'] = "...", ['\u00A0'] = " ", ['\t'] = " ",
    };

    private readonly HashSet<int>? _pieces;       // null: every character is safe
    private readonly bool[] _bytes;               // bytes with a byte-fallback token
    private readonly UnsupportedCharacterPolicy _policy;

    private InputGuard(HashSet<int>? pieces, bool[] bytes, UnsupportedCharacterPolicy policy)
    {
        _pieces = pieces;
        _bytes = bytes;
        _policy = policy;
    }

    /// <summary>A guard that lets everything through (full byte fallback, or a tokenizer that never aborts).</summary>
    public static InputGuard None { get; } = new(null, [], UnsupportedCharacterPolicy.Replace);

    /// <summary>Whether this vocabulary can fail on some characters (byte fallback missing for at least one byte).</summary>
    public bool IsActive => _pieces is not null;

    /// <summary>
    /// Builds the guard for a vocabulary. SentencePiece (<c>llama</c>) and Unigram (<c>t5</c>) tokenizers fall back
    /// to byte tokens and abort when one is missing; the guard is inactive only when all 256 byte tokens exist.
    /// Other tokenizers (byte-level BPE, WordPiece) skip or map unknown text and never abort.
    /// </summary>
    /// <param name="tokenizerModel"><c>tokenizer.ggml.model</c>.</param>
    /// <param name="tokens"><c>tokenizer.ggml.tokens</c>.</param>
    /// <param name="policy">What to do with a character the vocabulary cannot encode.</param>
    public static InputGuard ForVocabulary(string? tokenizerModel, string[]? tokens, UnsupportedCharacterPolicy policy)
    {
        if (tokenizerModel is not ("llama" or "t5") || tokens is null)
            return None;

        var pieces = new HashSet<int>();
        var bytes = new bool[256];
        foreach (var token in tokens)
        {
            if (token == SpmSpace)
                pieces.Add(' ');
            else if (TryParseByteToken(token, out var value))
                bytes[value] = true;
            else if (Rune.DecodeFromUtf16(token, out var rune, out var used) == System.Buffers.OperationStatus.Done && used == token.Length)
                pieces.Add(rune.Value);
        }
        // llama.cpp falls back from <0xNN> to the one-character piece of an ASCII byte (a space is escaped before that).
        for (var b = 0; b < 0x80; b++)
        {
            if (b != ' ')
                bytes[b] |= pieces.Contains(b);
        }
        return Array.TrueForAll(bytes, covered => covered) ? None : new InputGuard(pieces, bytes, policy);
    }

    /// <summary>Whether <paramref name="rune"/> can be tokenized safely: it is a piece, or each of its UTF-8 bytes has a byte token.</summary>
    public bool CanEncode(Rune rune)
    {
        if (_pieces is null || _pieces.Contains(rune.Value))
            return true;
        // SentencePiece tokenizes a space as U+2581, so that is the character whose bytes must be covered.
        var symbol = rune.Value == ' ' ? new Rune(0x2581) : rune;
        Span<byte> utf8 = stackalloc byte[4];
        var length = symbol.EncodeToUtf8(utf8);
        foreach (var b in utf8[..length])
        {
            if (!_bytes[b])
                return false;
        }
        return true;
    }

    // "<0xNN>" with upper-case hex digits, as llama.cpp looks it up.
    private static bool TryParseByteToken(string token, out int value)
    {
        value = 0;
        if (token.Length != 6 || !token.StartsWith("<0x", StringComparison.Ordinal) || token[5] != '>')
            return false;
        foreach (var c in token.AsSpan(3, 2))
        {
            var digit = c is >= '0' and <= '9' ? c - '0' : c is >= 'A' and <= 'F' ? c - 'A' + 10 : -1;
            if (digit < 0)
                return false;
            value = value * 16 + digit;
        }
        return true;
    }

    /// <summary>
    /// Returns text that is safe to tokenize: unchanged when it already is; otherwise, per policy,
    /// with each unsupported character replaced, or an <see cref="AgentHostException"/> naming it.
    /// </summary>
    /// <param name="text">The user's text.</param>
    /// <param name="replaced">How many characters were replaced.</param>
    public string Sanitize(string text, out int replaced)
    {
        ArgumentNullException.ThrowIfNull(text);
        replaced = 0;
        if (_pieces is null)
            return text;

        StringBuilder? builder = null;
        var index = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            if (!CanEncode(rune))
            {
                if (_policy == UnsupportedCharacterPolicy.Reject)
                {
                    throw new AgentHostException(ErrorKind.UnsupportedInput,
                        $"The model's vocabulary cannot encode the character '{Printable(rune)}' (U+{rune.Value:X4}) at position {index}; remove it, or set UnsupportedCharacters to Replace.");
                }
                builder ??= new StringBuilder(text.Length).Append(text, 0, index);
                builder.Append(Replacement(rune));
                replaced++;
            }
            else
            {
                builder?.Append(rune.ToString());
            }
            index += rune.Utf16SequenceLength;
        }
        return builder?.ToString() ?? text;
    }

    private string Replacement(Rune rune)
    {
        if (rune.IsBmp && _lookalikes.TryGetValue((char)rune.Value, out var lookalike) && lookalike.EnumerateRunes().All(CanEncode))
            return lookalike;

        // An accented letter becomes its base letter when the vocabulary has it (é -> e).
        var decomposed = rune.ToString().Normalize(NormalizationForm.FormD);
        if (Rune.DecodeFromUtf16(decomposed, out var baseRune, out _) == System.Buffers.OperationStatus.Done
            && baseRune != rune && CanEncode(baseRune) && Rune.GetUnicodeCategory(baseRune) != UnicodeCategory.NonSpacingMark)
            return baseRune.ToString();

        return CanEncode(new Rune(' ')) ? " " : string.Empty;
    }

    private static string Printable(Rune rune) => Rune.IsControl(rune) ? $"\\u{rune.Value:X4}" : rune.ToString();
}
