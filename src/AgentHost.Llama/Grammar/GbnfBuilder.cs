using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace AgentHost.Llama.Grammar;

/// <summary>
/// Builds a GBNF grammar from named rules: JSON-schema values (<see cref="AddJsonSchema"/>), tool calls
/// (<see cref="AddToolCall"/>) and rules of your own, then a root that combines them (<see cref="Build"/>).
/// Rule names are made unique, so several schemas can share one grammar (e.g. an alternation of tool
/// calls). Shared JSON rules (<c>ws</c>, <c>string</c>, <c>number</c> ...) are emitted once, when used.
/// </summary>
public sealed class GbnfBuilder
{
    private static readonly JsonSerializerOptions _compactJson = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, MaxDepth = 1024 };
    private static readonly string[] _primitives = ["ws", "char", "string", "integer", "number", "boolean", "null", "value", "object", "array"];

    private readonly List<string> _order = [];                  // rule names in definition order
    private readonly Dictionary<string, string?> _rules = [];   // name -> body (null: reserved, not yet defined)
    private readonly List<string> _ignored = [];
    private long _length;       // characters of the rule bodies so far
    private int _schemaNodes;   // sub-schemas and enum values converted so far

    /// <summary>Creates a builder; <paramref name="options"/> bound the JSON values it generates.</summary>
    public GbnfBuilder(JsonGrammarOptions? options = null)
    {
        Options = options ?? new JsonGrammarOptions();
        Options.Validate();
    }

    /// <summary>The bounds of generated JSON values.</summary>
    public JsonGrammarOptions Options { get; }

    /// <summary>Schema keywords left out because <see cref="JsonGrammarOptions.IgnoreUnsupported"/> is set ("keyword at #/path").</summary>
    public IReadOnlyList<string> IgnoredKeywords => _ignored;

    /// <summary>The name of the bounded-whitespace rule (<see cref="JsonGrammarOptions.MaxWhitespace"/>), for composing roots.</summary>
    public string Whitespace => Primitive("ws");

    /// <summary>Adds a rule; returns its name (<paramref name="name"/>, made a valid, unused rule name).</summary>
    public string AddRule(string name, string body)
    {
        ArgumentNullException.ThrowIfNull(body);
        var unique = Reserve(name);
        Define(unique, body);
        return unique;
    }

    /// <summary>
    /// Adds rules for JSON values valid against <paramref name="schema"/>; returns the rule's name.
    /// <c>$ref</c>s resolve within <paramref name="schema"/>. Keywords that cannot be expressed are an
    /// <see cref="AgentHostException"/> listing them all, unless <see cref="JsonGrammarOptions.IgnoreUnsupported"/>;
    /// so is a schema no value satisfies, and one beyond <see cref="GrammarLimits"/> (all schemas added together).
    /// </summary>
    public string AddJsonSchema(JsonElement schema, string name = "schema", CancellationToken cancellationToken = default)
        => new JsonSchemaConverter(this, schema, cancellationToken).Convert(name);

    /// <summary>
    /// Adds a rule for one tool call as a JSON object
    /// <c>{"name": "NAME", "arguments": {...}}</c> whose arguments follow <paramref name="parameters"/>.
    /// </summary>
    public string AddToolCall(string functionName, JsonElement parameters, string nameKey = "name", string argumentsKey = "arguments", CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(functionName);
        var arguments = AddJsonSchema(parameters, functionName + "-arguments", cancellationToken);
        var ws = Primitive("ws");
        var body = $"\"{{\" {ws} {JsonLiteral(nameKey)} {ws} \":\" {ws} {JsonLiteral(functionName)} {ws} \",\" {ws} {JsonLiteral(argumentsKey)} {ws} \":\" {ws} {arguments} {ws} \"}}\"";
        return AddRule(functionName + "-call", body);
    }

    /// <summary>The grammar text: <paramref name="rootName"/> ::= <paramref name="rootBody"/>, then every rule added.</summary>
    public string Build(string rootBody, string rootName = "root")
    {
        ArgumentException.ThrowIfNullOrEmpty(rootBody);
        var root = Reserve(rootName);
        if (root != rootName)
            throw new ArgumentException($"The root name '{rootName}' is already used by a rule or is not a rule name.", nameof(rootName));
        Define(root, rootBody);
        var text = new StringBuilder();
        text.Append(root).Append(" ::= ").Append(rootBody).Append('\n');
        foreach (var name in _order)
        {
            if (name == root)
                continue;
            var body = _rules[name] ?? throw new InvalidOperationException($"Rule '{name}' was reserved but never defined.");
            text.Append(name).Append(" ::= ").Append(body).Append('\n');
        }
        _order.Remove(root);
        _rules.Remove(root);
        return text.ToString();
    }

    /// <summary>A constraint with the grammar of <see cref="Build"/>; lazy when <paramref name="triggerWords"/> are given (add trigger tokens with <c>with</c>).</summary>
    public GrammarConstraint ToConstraint(string rootBody, IReadOnlyList<string>? triggerWords = null)
        => new() { Gbnf = Build(rootBody), TriggerWords = triggerWords ?? [] };

    /// <summary>A GBNF string literal matching exactly <paramref name="text"/>.</summary>
    public static string Literal(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var literal = new StringBuilder(text.Length + 2).Append('"');
        foreach (var c in text)
        {
            switch (c)
            {
                case '"': literal.Append("\\\""); break;
                case '\\': literal.Append("\\\\"); break;
                case '\n': literal.Append("\\n"); break;
                case '\r': literal.Append("\\r"); break;
                case '\t': literal.Append("\\t"); break;
                case < ' ': literal.Append("\\x").Append(((int)c).ToString("X2", CultureInfo.InvariantCulture)); break;
                default: literal.Append(c); break;
            }
        }
        return literal.Append('"').ToString();
    }

    /// <summary>A GBNF literal matching <paramref name="value"/> written as compact JSON.</summary>
    public static string JsonLiteral(string value) => Literal(JsonSerializer.Serialize(value, _compactJson));

    /// <summary>Whether <paramref name="name"/> is a GBNF rule name (letters, digits and '-').</summary>
    public static bool IsRuleName(string name)
    {
        if (string.IsNullOrEmpty(name))
            return false;
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '-'))
                return false;
        }
        return true;
    }

    internal static string CompactJson(JsonElement value) => JsonSerializer.Serialize(value, _compactJson);

    internal void Ignore(IEnumerable<string> keywords) => _ignored.AddRange(keywords);

    /// <summary>Reserves a unique rule name derived from <paramref name="hint"/> (defined later with <see cref="Define"/>).</summary>
    internal string Reserve(string hint)
    {
        var name = Sanitize(hint);
        var unique = name;
        for (var n = 2; _rules.ContainsKey(unique) || Array.IndexOf(_primitives, unique) >= 0; n++)
            unique = $"{name}-{n}";
        _rules[unique] = null;
        _order.Add(unique);
        return unique;
    }

    internal void Define(string name, string body)
    {
        _length += name.Length + body.Length + 6;
        if (_length > GrammarLimits.MaxGrammarLength)
            throw GrammarLimits.Exceeded("The grammar generated from the JSON schema", nameof(GrammarLimits.MaxGrammarLength), GrammarLimits.MaxGrammarLength);
        _rules[name] = body;
    }

    /// <summary>Counts sub-schemas (and enum values) converted; refuses more than <see cref="GrammarLimits.MaxSchemaNodes"/>.</summary>
    internal void CountSchemaNodes(int count)
    {
        _schemaNodes += count;
        if (_schemaNodes > GrammarLimits.MaxSchemaNodes)
            throw GrammarLimits.Exceeded("The JSON schema's number of sub-schemas and enum values", nameof(GrammarLimits.MaxSchemaNodes), GrammarLimits.MaxSchemaNodes);
    }

    /// <summary>The name of a shared JSON rule, emitted on first use.</summary>
    internal string Primitive(string name)
    {
        if (_rules.ContainsKey(name))
            return name;
        _rules[name] = null;
        _order.Add(name);
        Define(name, PrimitiveBody(name));
        return name;
    }

    /// <summary>A string rule of <paramref name="min"/> to <paramref name="max"/> characters (null: the default bound).</summary>
    internal string StringRule(int min, int? max)
    {
        max = Cap(max, Options.MaxStringLength, min);
        if (min == 0 && max == Options.MaxStringLength)
            return Primitive("string");
        var name = $"string-{min}-{(max is { } m ? m.ToString(CultureInfo.InvariantCulture) : "n")}";
        if (_rules.ContainsKey(name))
            return name;
        return AddRule(name, $"\"\\\"\" {Repeat(Primitive("char"), min, max)} \"\\\"\"");
    }

    /// <summary>
    /// A rule for the integers from <paramref name="min"/> to <paramref name="max"/> (null: unbounded, then
    /// at most <see cref="JsonGrammarOptions.MaxDigits"/> digits), written without leading zeros.
    /// </summary>
    internal string IntegerRule(long? min, long? max)
    {
        if (min is null && max is null)
            return Primitive("integer");
        var name = $"integer-{Bound(min)}-to-{Bound(max)}";
        if (_rules.ContainsKey(name))
            return name;
        var alternatives = new List<string>();
        if (min is null || min < 0)
        {
            // Negative values: "-" and a magnitude from -(max, at most -1) up to -min.
            var magnitudeMin = max is { } hi && hi < 0 ? -hi : 1;
            if (min is not { } lo || -lo >= magnitudeMin)
                alternatives.Add($"\"-\" {Magnitudes(magnitudeMin, min is { } l ? -l : null)}");
        }
        if (max is null || max >= 0)
            alternatives.Add(Magnitudes(Math.Max(min ?? 0, 0), max));
        return AddRule(name, string.Join(" | ", alternatives));

        static string Bound(long? value) => value switch { null => "n", < 0 => "m" + (-value.Value).ToString(CultureInfo.InvariantCulture), _ => value.Value.ToString(CultureInfo.InvariantCulture) };
    }

    // Decimal numerals of low..high (high null: up to MaxDigits digits), one alternative per digit count.
    private string Magnitudes(long low, long? high)
    {
        var lowDigits = Digits(low);
        var highDigits = high is { } h ? Digits(h) : Math.Max(Options.MaxDigits, lowDigits);
        var alternatives = new List<string>();
        for (var length = lowDigits; length <= highDigits; length++)
        {
            var from = Math.Max(low, length == 1 ? 0 : Pow10(length - 1));
            var to = Pow10(length) - 1;
            if (high is { } hi && hi < to)
                to = hi;
            if (from <= to)
                alternatives.Add(SameLength(from.ToString(CultureInfo.InvariantCulture), to.ToString(CultureInfo.InvariantCulture)));
        }
        return alternatives.Count == 1 ? alternatives[0] : "(" + string.Join(" | ", alternatives) + ")";

        static int Digits(long value) => value.ToString(CultureInfo.InvariantCulture).Length;
        static long Pow10(int exponent)
        {
            var result = 1L;
            for (var i = 0; i < exponent; i++)
                result *= 10;
            return result;
        }
    }

    // Numerals from x to y, both of the same length, digit by digit.
    private static string SameLength(string x, string y)
    {
        if (x == y)
            return Literal(x);
        if (x.Length == 1)
            return $"[{x}-{y}]";
        var rest = x.Length - 1;
        if (x[0] == y[0])
            return $"\"{x[0]}\" {SameLength(x[1..], y[1..])}";
        var anyRest = rest == 1 ? "[0-9]" : $"[0-9]{{{rest}}}";
        if (x.AsSpan(1).IndexOfAnyExcept('0') < 0 && y.AsSpan(1).IndexOfAnyExcept('9') < 0)
            return $"[{x[0]}-{y[0]}] {anyRest}";
        var parts = new List<string> { $"\"{x[0]}\" {SameLength(x[1..], new string('9', rest))}" };
        if (y[0] - x[0] > 1)
            parts.Add($"[{(char)(x[0] + 1)}-{(char)(y[0] - 1)}] {anyRest}");
        parts.Add($"\"{y[0]}\" {SameLength(new string('0', rest), y[1..])}");
        return "(" + string.Join(" | ", parts) + ")";
    }

    /// <summary>The string formats <see cref="FormatRule"/> knows.</summary>
    internal static readonly string[] Formats = ["date", "time", "date-time", "uuid"];

    /// <summary>
    /// A rule for a JSON string in a format (RFC 3339 date, time with offset, date-time; UUID), or null
    /// for a format it does not know. Days run to 28 in February (29 needs leap years), 30 or 31 elsewhere.
    /// </summary>
    internal string? FormatRule(string format)
    {
        var name = "format-" + format;
        if (_rules.ContainsKey(name))
            return name;
        const string Date = "[1-9] [0-9]{3} \"-\" ((\"0\" [13578] | \"1\" [02]) \"-\" (\"0\" [1-9] | [12] [0-9] | \"3\" [01]) | (\"0\" [469] | \"11\") \"-\" (\"0\" [1-9] | [12] [0-9] | \"30\") | \"02-\" (\"0\" [1-9] | \"1\" [0-9] | \"2\" [0-8]))";
        const string Time = "([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{1,6})? (\"Z\" | [+-] ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9])";
        var body = format switch
        {
            "date" => Date,
            "time" => Time,
            "date-time" => $"{Date} \"T\" {Time}",
            "uuid" => "[0-9a-f]{8} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{12}",
            _ => null,
        };
        return body is null ? null : AddRule(name, $"\"\\\"\" {body} \"\\\"\"");
    }

    /// <summary>An array rule of <paramref name="min"/> to <paramref name="max"/> items matching <paramref name="item"/>.</summary>
    internal string ArrayBody(string item, int min, int? max)
    {
        max = Cap(max, Options.MaxArrayItems, min);
        var ws = Primitive("ws");
        if (max == 0)
            return $"\"[\" {ws} \"]\"";
        var more = Repeat($"(\",\" {ws} {item} {ws})", Math.Max(min - 1, 0), max - 1);
        var items = $"{item} {ws}{(more.Length == 0 ? "" : " " + more)}";
        return min == 0 ? $"\"[\" {ws} ({items})? \"]\"" : $"\"[\" {ws} {items} \"]\"";
    }

    /// <summary><paramref name="item"/> repeated <paramref name="min"/> to <paramref name="max"/> times (null: unbounded).</summary>
    internal static string Repeat(string item, int min, int? max) => (min, max) switch
    {
        (0, null) => item + "*",
        (1, null) => item + "+",
        (_, null) => $"{item}{{{min},}}",
        (0, 0) => "",
        (0, 1) => item + "?",
        var (lo, hi) when lo == hi => $"{item}{{{lo}}}",
        var (lo, hi) => $"{item}{{{lo},{hi}}}",
    };

    // The schema's bound, lowered to the option's, but never below the minimum the schema requires.
    private static int? Cap(int? schemaMax, int? optionMax, int min)
    {
        var max = schemaMax is { } s ? (optionMax is { } o ? Math.Min(s, o) : s) : optionMax;
        return max is { } m ? Math.Max(m, min) : null;
    }

    private string PrimitiveBody(string name)
    {
        var digits = Options.MaxDigits;
        switch (name)
        {
            case "ws":
                return Options.MaxWhitespace == 0 ? "\"\"" : Repeat("[ \\t\\n]", 0, Options.MaxWhitespace);
            case "char":
                return "[^\"\\\\\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4})";
            case "string":
                return $"\"\\\"\" {Repeat(Primitive("char"), 0, Options.MaxStringLength)} \"\\\"\"";
            case "integer":
                return $"\"-\"? (\"0\" | [1-9] {Repeat("[0-9]", 0, digits - 1)})";
            case "number":
                return $"{Primitive("integer")} (\".\" {Repeat("[0-9]", 1, digits)})? ([eE] [-+]? {Repeat("[0-9]", 1, Math.Min(digits, 2))})?";
            case "boolean":
                return "\"true\" | \"false\"";
            case "null":
                return "\"null\"";
            case "value":
                return $"{Primitive("object")} | {Primitive("array")} | {Primitive("string")} | {Primitive("number")} | {Primitive("boolean")} | {Primitive("null")}";
            case "object":
                {
                    var ws = Primitive("ws");
                    var member = $"{Primitive("string")} {ws} \":\" {ws} {Primitive("value")} {ws}";
                    var more = Repeat($"(\",\" {ws} {member})", 0, Options.MaxArrayItems is { } max ? Math.Max(max - 1, 0) : null);
                    return Options.MaxArrayItems == 0
                        ? $"\"{{\" {ws} \"}}\""
                        : $"\"{{\" {ws} ({member}{(more.Length == 0 ? "" : " " + more)})? \"}}\"";
                }
            case "array":
                return ArrayBody(Primitive("value"), 0, null);
            default:
                throw new ArgumentOutOfRangeException(nameof(name), name, "Not a primitive rule.");
        }
    }

    private static string Sanitize(string hint)
    {
        var name = new StringBuilder(hint.Length);
        foreach (var c in hint)
        {
            var keep = char.IsAsciiLetterOrDigit(c) ? c : '-';
            if (keep == '-' && (name.Length == 0 || name[^1] == '-'))
                continue;
            name.Append(keep);
        }
        while (name.Length > 0 && name[^1] == '-')
            name.Length--;
        return name.Length == 0 ? "rule" : name.ToString();
    }
}
