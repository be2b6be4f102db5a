using System.Text;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Decoding;

/// <summary>
/// Collects accepted tokens and applies the stop conditions every strategy shares: end-of-generation
/// tokens, max tokens, and stop strings that may span tokens. Streams text UTF-8-safely: a multi-byte
/// character split across tokens is emitted once complete, and text that could be the start of a stop
/// string is held back until it is known not to be one.
/// </summary>
public sealed class GenerationOutput
{
    private readonly TokenVocabulary _vocabulary;
    private readonly IReadOnlyList<int> _stopTokens;
    private readonly int _maxTokens;
    private readonly IReadOnlyList<string> _stop;
    private readonly int _longestStop;
    private readonly Action<string>? _onText;
    private readonly Decoder _utf8 = Encoding.UTF8.GetDecoder();
    private readonly List<int> _tokens = [];
    private char[] _text = new char[256];   // decoded text; a plain array keeps indexing O(1)
    private int _length;
    private int _emitted;

    /// <summary>Creates the output of one generation.</summary>
    /// <param name="vocabulary">The model's token tables.</param>
    /// <param name="maxTokens">Most tokens to accept.</param>
    /// <param name="stop">Stop strings.</param>
    /// <param name="onText">Receives each piece of text as soon as it is safe to show.</param>
    /// <param name="stopTokens">Tokens that end generation like EOG does (e.g. a chat format's end-of-turn control token).</param>
    public GenerationOutput(TokenVocabulary vocabulary, int maxTokens, IReadOnlyList<string> stop, Action<string>? onText, IReadOnlyList<int>? stopTokens = null)
    {
        _vocabulary = vocabulary;
        _stopTokens = stopTokens ?? [];
        _maxTokens = maxTokens;
        _stop = stop;
        _onText = onText;
        foreach (var s in stop)
            _longestStop = Math.Max(_longestStop, s.Length);
    }

    /// <summary>Whether <paramref name="token"/> ends generation without joining the output (EOG or a stop token).</summary>
    internal bool IsEnd(int token) => _vocabulary.IsEndOfGeneration(token) || (_stopTokens.Count > 0 && _stopTokens.Contains(token));

    /// <summary>Accepted tokens.</summary>
    public IReadOnlyList<int> Tokens => _tokens;

    /// <summary>Why generation stopped, once it has.</summary>
    public StopReason? StopReason { get; private set; }

    /// <summary>Whether a stop condition was met.</summary>
    public bool IsStopped => StopReason is not null;

    /// <summary>
    /// Accepts one token. Returns true when generation must stop (EOG, max tokens or a stop string);
    /// an EOG token is not added to the output.
    /// </summary>
    public bool Accept(int token)
    {
        if (IsStopped)
            throw new InvalidOperationException("Generation has already stopped.");
        if (_vocabulary.IsEndOfGeneration(token) || (_stopTokens.Count > 0 && _stopTokens.Contains(token)))
        {
            StopReason = Decoding.StopReason.EndOfGeneration;
            return true;
        }

        _tokens.Add(token);
        var before = _length;
        AppendBytes(_vocabulary.GetBytes(token));

        if (_stop.Count > 0 && FindStop(before) is var stopAt and >= 0)
        {
            _length = stopAt;
            StopReason = Decoding.StopReason.StopString;
            Emit(_length);
            return true;
        }
        if (_tokens.Count >= _maxTokens)
        {
            StopReason = Decoding.StopReason.MaxTokens;
            return true;
        }
        Emit(_length - HeldBack());
        return false;
    }

    /// <summary>Clears the output for a new generation with the same settings (reused buffers: no allocation).</summary>
    public void Reset()
    {
        _tokens.Clear();
        _utf8.Reset();
        _length = 0;
        _emitted = 0;
        StopReason = null;
    }

    /// <summary>Marks the output as stopped for a reason found by the strategy (e.g. a full context).</summary>
    public void StopFor(StopReason reason) => StopReason ??= reason;

    /// <summary>Flushes what is still held back and returns the final text.</summary>
    public string Complete()
    {
        if (StopReason != Decoding.StopReason.StopString)
        {
            // Bytes of an unfinished character at the very end become U+FFFD, as any UTF-8 decoder would.
            AppendChars([], flush: true);
        }
        Emit(_length);
        return new string(_text, 0, _length);
    }

    private void AppendBytes(ReadOnlySpan<byte> bytes)
    {
        if (!bytes.IsEmpty)
            AppendChars(bytes, flush: false);
    }

    private void AppendChars(ReadOnlySpan<byte> bytes, bool flush)
    {
        var needed = _length + _utf8.GetCharCount(bytes, flush);
        if (needed > _text.Length)
            Array.Resize(ref _text, Math.Max(needed, _text.Length * 2));
        _length += _utf8.GetChars(bytes, _text.AsSpan(_length), flush);
    }

    // Earliest stop string that ends in the text added since `before`, or -1.
    private int FindStop(int before)
    {
        var best = -1;
        foreach (var stop in _stop)
        {
            var from = Math.Max(0, before - stop.Length + 1);
            var at = IndexOf(stop, from);
            if (at >= 0 && (best < 0 || at < best))
                best = at;
        }
        return best;
    }

    private int IndexOf(string value, int from)
    {
        var at = _text.AsSpan(from, _length - from).IndexOf(value, StringComparison.Ordinal);
        return at < 0 ? -1 : from + at;
    }

    // Length of the longest text suffix that is a proper prefix of some stop string.
    private int HeldBack()
    {
        var max = Math.Min(_longestStop - 1, _length - _emitted);
        for (var length = max; length > 0; length--)
        {
            foreach (var stop in _stop)
            {
                if (length < stop.Length && _text.AsSpan(0, _length).EndsWith(stop.AsSpan(0, length), StringComparison.Ordinal))
                    return length;
            }
        }
        return 0;
    }

    private void Emit(int upTo)
    {
        // Never split a surrogate pair between two pieces.
        if (upTo > _emitted && upTo < _length && char.IsHighSurrogate(_text[upTo - 1]))
            upTo--;
        if (upTo <= _emitted)
            return;
        _onText?.Invoke(new string(_text, _emitted, upTo - _emitted));
        _emitted = upTo;
    }
}
