using System.Globalization;
using System.Text;

namespace AgentHost.Llama.Models;

/// <summary>
/// Keeps text a vocabulary cannot encode away from llama.cpp. A SentencePiece vocabulary without
/// byte-fallback tokens makes llama.cpp throw <c>std::out_of_range</c> for any character it lacks,
/// which aborts the whole process (SIGABRT); .NET cannot catch that. Such a vocabulary is detected
/// from the GGUF metadata at load, and every text is checked here before it is tokenized.
/// </summary>
public sealed class InputGuard
{
    private const int ByteTokenType = 6;          // llama_token_type LLAMA_TOKEN_TYPE_BYTE
    private const string SpmSpace = "\u2581";     // SentencePiece's escaped space

    // Typographic characters and the ASCII stand-ins tried before falling back to a space.
    private static readonly Dictionary<char, string> _lookalikes = new()
    {
        ['\u2018'] = "'", ['\u2019'] = "'", ['\u201C'] = "\"", ['\u201D'] = "\"",
        ['\u2013'] = "-", ['\u2014'] = "-", ['\u2026'] = "...", ['\u00A0'] = " ", ['\t'] = " ",
    };

    private readonly HashSet<int>? _encodable;    // null: every character is safe
    private readonly UnsupportedCharacterPolicy _policy;

    private InputGuard(HashSet<int>? encodable, UnsupportedCharacterPolicy policy)
    {
        _encodable = encodable;
        _policy = policy;
    }

    /// <summary>A guard that lets everything through (byte-fallback or byte-level vocabularies).</summary>
    public static InputGuard None { get; } = new(null, UnsupportedCharacterPolicy.Replace);

    /// <summary>Whether this vocabulary can fail on some characters (no byte fallback).</summary>
    public bool IsActive => _encodable is not null;

    /// <summary>
    /// Builds the guard for a vocabulary. Only a SentencePiece (<c>llama</c>) tokenizer without tokens of
    /// type BYTE is hazardous; its safe characters are those that are single tokens themselves.
    /// </summary>
    public static InputGuard ForVocabulary(string? tokenizerModel, string[]? tokens, int[]? tokenTypes, UnsupportedCharacterPolicy policy)
    {
        if (!string.Equals(tokenizerModel, "llama", StringComparison.Ordinal) || tokens is null)
            return None;
        if (tokenTypes is not null && Array.IndexOf(tokenTypes, ByteTokenType) >= 0)
            return None;

        var encodable = new HashSet<int>();
        foreach (var token in tokens)
        {
            if (token == SpmSpace)
                encodable.Add(' ');
            else if (Rune.DecodeFromUtf16(token, out var rune, out var used) == System.Buffers.OperationStatus.Done && used == token.Length)
                encodable.Add(rune.Value);
        }
        return new InputGuard(encodable, policy);
    }

    /// <summary>Whether <paramref name="rune"/> can be tokenized safely.</summary>
    public bool CanEncode(Rune rune) => _encodable is null || _encodable.Contains(rune.Value);

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
        if (_encodable is null)
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
