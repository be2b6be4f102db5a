using System.Globalization;

namespace AgentHost.Llama.Grammar;

/// <summary>
/// A managed pre-pass over GBNF that follows llama.cpp's grammar parser: it reports the syntax errors
/// llama.cpp would (in its words), rules used but never defined, a missing root rule, and every bound of
/// <see cref="GrammarLimits"/> (length, nesting, rules and elements after repetitions are expanded).
/// llama.cpp then only sees grammars it parses in bounded time and memory, and its own error output (to
/// stderr, outside the native log) need not be captured. Not recursive beyond <see cref="GrammarLimits.MaxNesting"/>.
/// </summary>
internal sealed class GbnfCheck
{
    /// <summary>llama.cpp refuses a repetition count above this (<c>MAX_REPETITION_THRESHOLD</c>).</summary>
    private const int MaxRepetitions = JsonGrammarOptions.MaxRepetitions;

    private readonly string _text;
    private readonly string _root;
    private readonly CancellationToken _cancellationToken;
    private readonly HashSet<string> _defined = new(StringComparer.Ordinal);
    private readonly List<string> _used = [];
    private readonly HashSet<string> _usedSet = new(StringComparer.Ordinal);
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);   // rule names defined or used
    private long _generated;                                                 // rules llama.cpp makes for groups and repetitions
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    private readonly List<List<int>> _starts = [];   // per rule (named or group): each alternative's first item (rule id, or -1: a terminal)
    private int _rule;                                // the rule being parsed
    private int _pos;
    private int _depth;
    private long _rules;
    private long _elements;

    private GbnfCheck(string text, string root, CancellationToken cancellationToken)
    {
        _text = text;
        _root = root;
        _cancellationToken = cancellationToken;
    }

    /// <summary>Throws an <see cref="AgentHostException"/> for the first problem of <paramref name="gbnf"/>.</summary>
    public static void Run(string gbnf, string root, CancellationToken cancellationToken)
    {
        if (gbnf.Length > GrammarLimits.MaxGrammarLength)
            throw GrammarLimits.Exceeded(string.Create(CultureInfo.InvariantCulture, $"The grammar's length ({gbnf.Length:N0} characters)"), nameof(GrammarLimits.MaxGrammarLength), GrammarLimits.MaxGrammarLength);
        new GbnfCheck(gbnf, root, cancellationToken).Check();
    }

    private void Check()
    {
        var nul = _text.IndexOf('\0', StringComparison.Ordinal);
        if (nul >= 0)
            throw Syntax($"NUL character at offset {nul}");
        SkipSpace(newlineOk: true);
        while (_pos < _text.Length)
        {
            _cancellationToken.ThrowIfCancellationRequested();
            Rule();
        }
        foreach (var name in _used)
        {
            if (!_defined.Contains(name))
                throw Syntax($"Undefined rule identifier '{name}'");
        }
        if (!_defined.Contains(_root))
            throw Syntax($"grammar does not contain a '{_root}' symbol");
        CheckParseStacks();
    }

    // llama.cpp keeps one parse stack per way the text can continue: a rule whose alternatives start with
    // rules whose alternatives start with rules ... multiplies them (r0 ::= r1 "a" | r1 "b", r1 ::= r2 "a" |
    // r2 "b" ...: 2^n stacks; 16 levels took a minute). Counts the ways each rule can start, without recursion.
    private void CheckParseStacks()
    {
        var ways = new long[_starts.Count];
        var state = new byte[_starts.Count];   // 0: not seen, 1: in progress (a cycle counts once), 2: done
        var cursor = new int[_starts.Count];
        var pending = new Stack<int>();
        for (var start = 0; start < _starts.Count; start++)
        {
            if (state[start] != 0)
                continue;
            state[start] = 1;
            pending.Push(start);
            while (pending.Count > 0)
            {
                var rule = pending.Peek();
                var starts = _starts[rule];
                while (cursor[rule] < starts.Count && (starts[cursor[rule]] < 0 || state[starts[cursor[rule]]] != 0))
                    cursor[rule]++;
                if (cursor[rule] < starts.Count)
                {
                    var next = starts[cursor[rule]];
                    state[next] = 1;
                    pending.Push(next);
                    continue;
                }
                _cancellationToken.ThrowIfCancellationRequested();
                var total = 0L;
                foreach (var first in starts)
                    total += first >= 0 && state[first] == 2 ? ways[first] : 1;
                if (total > GrammarLimits.MaxParseStacks)
                    throw GrammarLimits.Exceeded("The number of ways the grammar's alternatives can start (each a parse stack in llama.cpp)", nameof(GrammarLimits.MaxParseStacks), GrammarLimits.MaxParseStacks);
                ways[rule] = total;
                state[rule] = 2;
                pending.Pop();
            }
        }
    }

    private int Id(string name)
    {
        if (!_ids.TryGetValue(name, out var id))
        {
            id = _starts.Count;
            _ids[name] = id;
            _starts.Add([]);
        }
        return id;
    }

    private int NewGroup()
    {
        _starts.Add([]);
        return _starts.Count - 1;
    }

    private void Rule()
    {
        var name = Name();
        SkipSpace(newlineOk: false);
        if (string.CompareOrdinal(_text, _pos, "::=", 0, 3) != 0)
            throw Syntax("expecting ::= at " + Here());
        _pos += 3;
        SkipSpace(newlineOk: true);
        _defined.Add(name);
        _names.Add(name);
        AddRules(1);
        _rule = Id(name);
        Alternates(nested: false);
        if (_pos < _text.Length)
        {
            if (_text[_pos] == '\r')
                _pos += _pos + 1 < _text.Length && _text[_pos + 1] == '\n' ? 2 : 1;
            else if (_text[_pos] == '\n')
                _pos++;
            else
                throw Syntax("expecting newline or end at " + Here());
        }
        SkipSpace(newlineOk: true);
    }

    private void Alternates(bool nested)
    {
        Sequence(nested);
        while (_pos < _text.Length && _text[_pos] == '|')
        {
            _pos++;
            SkipSpace(newlineOk: true);
            Sequence(nested);
        }
    }

    private void Sequence(bool nested)
    {
        var starts = _starts[_rule];
        var alternative = starts.Count;   // where this alternative's first item goes
        starts.Add(-1);
        var items = 0;
        var last = -1L;          // elements of the item a repetition applies to (-1: none yet)
        var lastRules = 1L;      // rules that item stands for (llama.cpp's n_prev_rules)
        while (_pos < _text.Length)
        {
            var c = _text[_pos];
            if (c == '"')
            {
                _pos++;
                last = 0;
                lastRules = 1;
                while (_pos < _text.Length && _text[_pos] != '"')
                {
                    Char();
                    last++;
                }
                if (_pos >= _text.Length)
                    throw Syntax("unexpected end of input");
                _pos++;
                AddElements(last);
            }
            else if (c == '[')
            {
                _pos++;
                if (_pos < _text.Length && _text[_pos] == '^')
                    _pos++;
                last = 1;
                lastRules = 1;
                while (_pos >= _text.Length || _text[_pos] != ']')
                {
                    if (_pos >= _text.Length)
                        throw Syntax("unexpected end of input");
                    Char();
                    last++;
                    if (_pos + 1 < _text.Length && _text[_pos] == '-' && _text[_pos + 1] != ']')
                    {
                        _pos++;
                        Char();
                        last++;
                    }
                    else if (_pos + 1 == _text.Length && _text[_pos] == '-')
                    {
                        throw Syntax("unexpected end of input");
                    }
                }
                _pos++;
                AddElements(last);
            }
            else if (IsWordChar(c))
            {
                var name = Name();
                if (_usedSet.Add(name))
                    _used.Add(name);
                _names.Add(name);
                if (items == 0)
                    starts[alternative] = Id(name);
                last = 1;
                lastRules = 1;
                AddElements(1);
                items++;
                SkipSpace(nested);
                continue;
            }
            else if (c == '(')
            {
                if (++_depth > GrammarLimits.MaxNesting)
                    throw GrammarLimits.Exceeded("The grammar's nesting of parentheses", nameof(GrammarLimits.MaxNesting), GrammarLimits.MaxNesting);
                _pos++;
                SkipSpace(newlineOk: true);
                var before = Symbols;
                _generated++;
                AddRules(1);
                var outer = _rule;
                _rule = NewGroup();
                if (items == 0)
                    starts[alternative] = _rule;
                Alternates(nested: true);
                _rule = outer;
                if (_pos >= _text.Length || _text[_pos] != ')')
                    throw Syntax("expecting ')' at " + Here());
                _pos++;
                _depth--;
                last = 1;
                lastRules = Math.Max(1, Symbols - before);
                AddElements(1);
            }
            else if (c == '.')
            {
                _pos++;
                last = 1;
                lastRules = 1;
                AddElements(1);
            }
            else if (c is '<' or '!' && (c == '<' || (_pos + 1 < _text.Length && _text[_pos + 1] == '<')))
            {
                // A token reference, <[id]> or <name>, and its negation !<...>.
                var end = _text.IndexOf('>', _pos);
                if (end < 0)
                    throw Syntax("expecting '>' at " + Here());
                _pos = end + 1;
                last = 1;
                lastRules = 1;
                AddElements(1);
            }
            else if (c is '*' or '+' or '?')
            {
                if (last < 0)
                    throw Syntax($"expecting preceding item to {c} at " + Here());
                _pos++;
                last = Repeat(last, lastRules, c == '+' ? 1 : 0, c == '?' ? 1 : null);
                if (items == 1 && c != '+')
                    starts.Add(-1);   // or skipped: one more way to start (approximately)
                items--;
            }
            else if (c == '{')
            {
                if (last < 0)
                    throw Syntax("expecting preceding item to {...} at " + Here());
                _pos++;
                SkipSpace(nested);
                var min = Count();
                SkipSpace(nested);
                long? max = min;
                if (_pos < _text.Length && _text[_pos] == ',')
                {
                    _pos++;
                    SkipSpace(nested);
                    max = _pos < _text.Length && char.IsAsciiDigit(_text[_pos]) ? Count() : null;
                    SkipSpace(nested);
                }
                else if (_pos >= _text.Length || _text[_pos] != '}')
                {
                    throw Syntax("expecting ',' at " + Here());
                }
                if (_pos >= _text.Length || _text[_pos] != '}')
                    throw Syntax("expecting '}' at " + Here());
                _pos++;
                if (max < min)
                    throw Syntax(string.Create(CultureInfo.InvariantCulture, $"repetition {{{min},{max}}} has its minimum above its maximum"));
                last = Repeat(last, lastRules, min, max);
                if (items == 1 && min == 0)
                    starts.Add(-1);
                items--;
            }
            else
            {
                break;
            }
            items++;
            SkipSpace(nested);
        }
    }

    private long Symbols => _names.Count + _generated;

    // llama.cpp writes x{m,n} as m copies of x and n-m nested optional rules holding x (x* as one recursive rule),
    // and refuses it when the rules x stands for times the count reach its threshold.
    private long Repeat(long item, long itemRules, long min, long? max)
    {
        var total = max is > 0 ? max.Value : Math.Max(min, 1);
        if (itemRules * total >= MaxRepetitions)
            throw Syntax("number of rules that are going to be repeated multiplied by the new repetition exceeds sane defaults, please reduce the number of repetitions or rule complexity");
        var copies = max ?? min + 1;
        var rules = max is { } m ? m - min : 1;
        _generated += rules;
        AddRules(rules);
        AddElements((item * copies) + (3 * rules) - item);
        return item * copies;
    }

    private long Count()
    {
        if (_pos >= _text.Length || !char.IsAsciiDigit(_text[_pos]))
            throw Syntax("expecting an int at " + Here());
        var value = 0L;
        while (_pos < _text.Length && char.IsAsciiDigit(_text[_pos]))
        {
            value = Math.Min((value * 10) + (_text[_pos] - '0'), MaxRepetitions + 1L);
            _pos++;
        }
        if (value > MaxRepetitions)
            throw Syntax("number of repetitions exceeds sane defaults, please reduce the number of repetitions");
        return value;
    }

    private void Char()
    {
        if (_text[_pos] != '\\')
        {
            _pos += char.IsHighSurrogate(_text[_pos]) && _pos + 1 < _text.Length ? 2 : 1;
            return;
        }
        if (_pos + 1 >= _text.Length)
            throw Syntax("unexpected end of input");
        var hex = _text[_pos + 1] switch { 'x' => 2, 'u' => 4, 'U' => 8, _ => 0 };
        if (hex == 0)
        {
            if (_text[_pos + 1] is not ('"' or '[' or ']' or '\\' or 'n' or 'r' or 't'))
                throw Syntax("unknown escape at " + Here());
            _pos += 2;
            return;
        }
        _pos += 2;
        for (var i = 0; i < hex; i++, _pos++)
        {
            if (_pos >= _text.Length || !char.IsAsciiHexDigit(_text[_pos]))
                throw Syntax($"expecting {hex} hex chars at " + Here());
        }
    }

    private string Name()
    {
        var start = _pos;
        while (_pos < _text.Length && IsWordChar(_text[_pos]))
            _pos++;
        if (_pos == start)
            throw Syntax("expecting name at " + Here());
        return _text[start.._pos];
    }

    private void SkipSpace(bool newlineOk)
    {
        while (_pos < _text.Length)
        {
            var c = _text[_pos];
            if (c == '#')
            {
                while (_pos < _text.Length && _text[_pos] is not ('\r' or '\n'))
                    _pos++;
            }
            else if (c is ' ' or '\t' || (newlineOk && c is '\r' or '\n'))
            {
                _pos++;
            }
            else
            {
                return;
            }
        }
    }

    private void AddRules(long count)
    {
        _rules += count;
        if (_rules > GrammarLimits.MaxRules)
            throw GrammarLimits.Exceeded("The grammar's number of rules (counting those llama.cpp makes for groups and repetitions)", nameof(GrammarLimits.MaxRules), GrammarLimits.MaxRules);
    }

    private void AddElements(long count)
    {
        _elements += count;
        if (_elements > GrammarLimits.MaxElements)
            throw GrammarLimits.Exceeded("The grammar's size once its repetitions are expanded", nameof(GrammarLimits.MaxElements), GrammarLimits.MaxElements);
    }

    private static bool IsWordChar(char c) => char.IsAsciiLetterOrDigit(c) || c == '-';

    private string Here()
    {
        var excerpt = _text.AsSpan(_pos, Math.Min(40, _text.Length - _pos)).ToString().ReplaceLineEndings(" ");
        return excerpt.Length == 0 ? "end of input" : excerpt;
    }

    private AgentHostException Syntax(string reason)
        => new(ErrorKind.InvalidArgument, $"llama.cpp cannot use the grammar (root rule '{_root}'): {reason}");
}
