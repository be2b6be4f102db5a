using AgentHost.Llama.Models;

namespace AgentHost.Extensions.AI.Chat;

/// <summary>
/// The texts of a model's control, user-defined and unknown tokens (the ones llama.cpp's special-token parsing
/// matches), for finding them in a format's markup. Longest match first, as llama.cpp does.
/// </summary>
internal sealed class SpecialTokens
{
    // llama_token_type: 2 unknown, 3 control, 4 user defined.
    private const int Unknown = 2, Control = 3, UserDefined = 4;

    private readonly Dictionary<char, (string Text, int Token, bool Control)[]> _byFirstChar;

    private SpecialTokens(Dictionary<char, (string Text, int Token, bool Control)[]> byFirstChar) => _byFirstChar = byFirstChar;

    public static SpecialTokens ForModel(LlamaModel model)
    {
        var texts = model.File.GetStringArray("tokenizer.ggml.tokens");
        var types = model.File.GetInt32Array("tokenizer.ggml.token_type");
        var lists = new Dictionary<char, List<(string Text, int Token, bool Control)>>();
        if (texts is not null && types is not null)
        {
            for (var id = 0; id < Math.Min(texts.Length, types.Length); id++)
            {
                if (types[id] is not (Unknown or Control or UserDefined) || texts[id].Length == 0)
                    continue;
                if (!lists.TryGetValue(texts[id][0], out var list))
                    lists[texts[id][0]] = list = [];
                list.Add((texts[id], id, types[id] is Control or Unknown));
            }
        }

        var byFirstChar = new Dictionary<char, (string Text, int Token, bool Control)[]>();
        foreach (var (first, list) in lists)
            byFirstChar[first] = [.. list.OrderByDescending(entry => entry.Text.Length)];
        return new SpecialTokens(byFirstChar);
    }

    /// <summary>Whether a special token's text starts at <paramref name="index"/> of <paramref name="text"/>.</summary>
    /// <param name="text">The text.</param>
    /// <param name="index">Where to look.</param>
    /// <param name="token">The token found.</param>
    /// <param name="length">Its text's length.</param>
    /// <param name="controlOnly">Match only control and unknown tokens: the ones llama.cpp matches only with special-token
    /// parsing on (it matches user-defined tokens, such as Gemma's newline runs, in any text).</param>
    public bool TryMatch(string text, int index, out int token, out int length, bool controlOnly = false)
    {
        if (_byFirstChar.TryGetValue(text[index], out var candidates))
        {
            foreach (var (candidate, id, control) in candidates)
            {
                if (controlOnly && !control)
                    continue;
                if (string.CompareOrdinal(text, index, candidate, 0, candidate.Length) == 0 && index + candidate.Length <= text.Length)
                {
                    token = id;
                    length = candidate.Length;
                    return true;
                }
            }
        }
        token = -1;
        length = 0;
        return false;
    }

    /// <summary>The token whose whole text is <paramref name="text"/>, if any.</summary>
    public int? Find(string text) =>
        text.Length > 0 && TryMatch(text, 0, out var token, out var length) && length == text.Length ? token : null;
}
