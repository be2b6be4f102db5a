using System.Text;

namespace AgentHost.Extensions.AI.Jinja;

/// <summary>
/// A string value of the engine that knows, per character, whether it came from the conversation (content) or
/// from the template (markup). Operations keep the flags where they can map them and otherwise mark the whole
/// result content if any input character was content: content never becomes markup.
/// </summary>
internal sealed class JinjaString
{
    public static readonly JinjaString Empty = new(string.Empty, null);

    // null: every character is markup.
    private readonly bool[]? _content;

    private JinjaString(string text, bool[]? content)
    {
        Text = text;
        _content = content;
    }

    public string Text { get; }

    public int Length => Text.Length;

    public bool HasContent => _content is not null;

    public static JinjaString Markup(string text) => text.Length == 0 ? Empty : new(text, null);

    public static JinjaString Content(string text)
    {
        if (text.Length == 0)
            return Empty;
        var flags = new bool[text.Length];
        Array.Fill(flags, true);
        return new(text, flags);
    }

    /// <summary>A result derived from <paramref name="sources"/> whose characters cannot be mapped back.</summary>
    public static JinjaString Derived(string text, params ReadOnlySpan<JinjaString> sources)
    {
        foreach (var source in sources)
        {
            if (source.HasContent)
                return Content(text);
        }
        return Markup(text);
    }

    public static JinjaString Create(string text, bool[]? flags)
    {
        if (text.Length == 0)
            return Empty;
        return flags is null || Array.IndexOf(flags, true) < 0 ? new(text, null) : new(text, flags);
    }

    public bool IsContentAt(int index) => _content is not null && _content[index];

    public static JinjaString Concat(JinjaString a, JinjaString b)
    {
        if (a.Length == 0)
            return b;
        if (b.Length == 0)
            return a;
        var text = a.Text + b.Text;
        if (!a.HasContent && !b.HasContent)
            return new(text, null);
        var flags = new bool[text.Length];
        a.CopyFlags(flags, 0, 0, a.Length);
        b.CopyFlags(flags, a.Length, 0, b.Length);
        return new(text, flags);
    }

    public JinjaString Substring(int start, int length)
    {
        if (start == 0 && length == Length)
            return this;
        if (length == 0)
            return Empty;
        var text = Text.Substring(start, length);
        if (_content is null)
            return new(text, null);
        var flags = new bool[length];
        Array.Copy(_content, start, flags, 0, length);
        return new(text, flags);
    }

    /// <summary>Picks characters by index (slices with a step).</summary>
    public JinjaString Pick(IReadOnlyList<int> indices)
    {
        var text = new StringBuilder(indices.Count);
        var flags = _content is null ? null : new bool[indices.Count];
        for (var i = 0; i < indices.Count; i++)
        {
            text.Append(Text[indices[i]]);
            if (flags is not null)
                flags[i] = _content![indices[i]];
        }
        return new(text.ToString(), flags);
    }

    public JinjaString Trim(bool start, bool end)
    {
        var first = 0;
        var last = Length;
        if (start)
        {
            while (first < last && IsJsWhiteSpace(Text[first]))
                first++;
        }
        if (end)
        {
            while (last > first && IsJsWhiteSpace(Text[last - 1]))
                last--;
        }
        return Substring(first, last - first);
    }

    /// <summary>Whitespace as JavaScript's <c>trim</c> sees it (what the reference renderer uses).</summary>
    public static bool IsJsWhiteSpace(char c) => c is '\uFEFF' || char.IsWhiteSpace(c);

    internal void CopyFlags(bool[] target, int targetIndex, int start, int length)
    {
        if (_content is not null)
            Array.Copy(_content, start, target, targetIndex, length);
    }

    public override string ToString() => Text;
}

/// <summary>Accumulates output with its content flags.</summary>
internal sealed class JinjaStringBuilder
{
    private readonly StringBuilder _text = new();
    private readonly List<bool> _content = new();
    private bool _any;

    public int Length => _text.Length;

    public void Append(JinjaString value)
    {
        _text.Append(value.Text);
        for (var i = 0; i < value.Length; i++)
        {
            var isContent = value.IsContentAt(i);
            _any |= isContent;
            _content.Add(isContent);
        }
    }

    public JinjaString ToJinjaString() => JinjaString.Create(_text.ToString(), _any ? _content.ToArray() : null);

    /// <summary>The output as runs of (text, isContent).</summary>
    public List<(string Text, bool IsContent)> ToRuns()
    {
        var runs = new List<(string, bool)>();
        var start = 0;
        for (var i = 1; i <= _text.Length; i++)
        {
            if (i == _text.Length || _content[i] != _content[start])
            {
                runs.Add((_text.ToString(start, i - start), _content[start]));
                start = i;
            }
        }
        return runs;
    }

    public override string ToString() => _text.ToString();
}
