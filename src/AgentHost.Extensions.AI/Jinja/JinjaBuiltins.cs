using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace AgentHost.Extensions.AI.Jinja;

internal sealed partial class JinjaInterpreter
{
    private static JinjaString Str(object? v, string what) =>
        v as JinjaString ?? throw new JinjaRuntimeError($"{what} expects a string, got {JinjaValues.TypeName(v)}");

    private object? DictMethod(JinjaDict d, string name) => name switch
    {
        "get" => (JinjaFunction)((args, _) =>
        {
            var key = args.Count > 0 ? Str(args[0], "get()") : throw new JinjaRuntimeError("get() expects a key");
            return d.Items.TryGetValue(key.Text, out var v) ? v : args.Count > 1 ? args[1] : null;
        }),
        "items" => (JinjaFunction)((_, _) => Items(d)),
        "keys" => (JinjaFunction)((_, _) => new JinjaList(d.Items.Keys.Select(k => (object?)JinjaString.Markup(k)).ToList())),
        "values" => (JinjaFunction)((_, _) => new JinjaList(d.Items.Values.ToList())),
        _ => Undefined.Value,
    };

    private static JinjaList Items(JinjaDict d) =>
        new(d.Items.Select(kv => (object?)new JinjaList([JinjaString.Markup(kv.Key), kv.Value])).ToList());

    private object? StringMethod(JinjaString s, string name) => name switch
    {
        "upper" => (JinjaFunction)((_, _) => JinjaString.Derived(s.Text.ToUpperInvariant(), s)),
        "lower" => (JinjaFunction)((_, _) => JinjaString.Derived(s.Text.ToLowerInvariant(), s)),
        "strip" => (JinjaFunction)((_, _) => s.Trim(true, true)),
        "lstrip" => (JinjaFunction)((_, _) => s.Trim(true, false)),
        "rstrip" => (JinjaFunction)((_, _) => s.Trim(false, true)),
        "title" => (JinjaFunction)((_, _) => JinjaString.Derived(Title(s.Text), s)),
        "capitalize" => (JinjaFunction)((_, _) => JinjaString.Derived(s.Length == 0 ? "" : char.ToUpperInvariant(s.Text[0]) + s.Text[1..], s)),
        "length" => (long)s.Length,
        "startswith" => (JinjaFunction)((args, _) => Affix(s, args, start: true)),
        "endswith" => (JinjaFunction)((args, _) => Affix(s, args, start: false)),
        "split" => (JinjaFunction)((args, _) => Split(s, args.Count > 0 ? args[0] : null, args.Count > 1 ? args[1] : -1L)),
        "replace" => (JinjaFunction)((args, kwargs) => Replace(s, args, kwargs)),
        "format" => (JinjaFunction)((args, _) => Format(s, new JinjaList(args))),
        _ => Undefined.Value,
    };

    [GeneratedRegex(@"\b\w")]
    private static partial Regex WordStart();

    private static string Title(string s) => WordStart().Replace(s, m => m.Value.ToUpperInvariant());

    private static bool Affix(JinjaString s, List<object?> args, bool start)
    {
        if (args.Count == 0)
            throw new JinjaRuntimeError($"{(start ? "startswith" : "endswith")}() requires at least one argument");
        IEnumerable<object?> patterns = args[0] is JinjaList l ? l.Items : [args[0]];
        foreach (var p in patterns)
        {
            var pattern = Str(p, start ? "startswith()" : "endswith()").Text;
            if (start ? s.Text.StartsWith(pattern, StringComparison.Ordinal) : s.Text.EndsWith(pattern, StringComparison.Ordinal))
                return true;
        }
        return false;
    }

    private JinjaList Split(JinjaString s, object? sep, object? maxArg)
    {
        var max = maxArg is long m ? m : throw new JinjaRuntimeError("maxsplit argument must be a number");
        var result = new List<object?>();
        if (sep is null or Undefined)
        {
            var text = s.Trim(true, false);
            var offset = s.Length - text.Length;
            var i = 0;
            while (i < text.Length)
            {
                while (i < text.Length && JinjaString.IsJsWhiteSpace(text.Text[i]))
                    i++;
                if (i >= text.Length)
                    break;
                var j = i;
                while (j < text.Length && !JinjaString.IsJsWhiteSpace(text.Text[j]))
                    j++;
                Tick();
                if (max >= 0 && result.Count >= max)
                {
                    result.Add(text.Substring(i, text.Length - i));
                    break;
                }
                result.Add(text.Substring(i, j - i));
                i = j;
            }
            _ = offset;
            return new JinjaList(result);
        }
        var separator = Str(sep, "split()").Text;
        if (separator.Length == 0)
            throw new JinjaRuntimeError("empty separator");
        var pos = 0;
        var parts = new List<(int Start, int Length)>();
        while (true)
        {
            Tick();
            var next = s.Text.IndexOf(separator, pos, StringComparison.Ordinal);
            if (next < 0)
            {
                parts.Add((pos, s.Length - pos));
                break;
            }
            parts.Add((pos, next - pos));
            pos = next + separator.Length;
        }
        if (max >= 0 && parts.Count > max)
        {
            var rest = parts[(int)max].Start;
            parts.RemoveRange((int)max, parts.Count - (int)max);
            parts.Add((rest, s.Length - rest));
        }
        foreach (var (start, length) in parts)
            result.Add(s.Substring(start, length));
        return new JinjaList(result);
    }

    private JinjaString Replace(JinjaString s, List<object?> args, Dictionary<string, object?> kwargs)
    {
        if (args.Count < 2)
            throw new JinjaRuntimeError("replace() requires at least two arguments");
        var old = Str(args[0], "replace()");
        var replacement = Str(args[1], "replace()");
        var countArg = args.Count > 2 ? args[2] : kwargs.GetValueOrDefault("count");
        long count = countArg switch
        {
            null or Undefined => -1,
            long c => c,
            _ => throw new JinjaRuntimeError("replace() count argument must be a number or null"),
        };
        if (count == 0)
            return s;
        var remaining = count < 0 ? long.MaxValue : count;
        var result = JinjaString.Empty;
        if (old.Length == 0)
        {
            // Python inserts the replacement between every character (and at both ends).
            for (var i = 0; i <= s.Length; i++)
            {
                Tick();
                if (remaining-- > 0)
                    result = JinjaString.Concat(result, replacement);
                if (i < s.Length)
                    result = JinjaString.Concat(result, s.Substring(i, 1));
                CheckLength(result);
            }
            return result;
        }
        var pos = 0;
        while (remaining > 0)
        {
            Tick();
            var next = s.Text.IndexOf(old.Text, pos, StringComparison.Ordinal);
            if (next < 0)
                break;
            result = CheckLength(JinjaString.Concat(JinjaString.Concat(result, s.Substring(pos, next - pos)), replacement));
            pos = next + old.Length;
            remaining--;
        }
        return CheckLength(JinjaString.Concat(result, s.Substring(pos, s.Length - pos)));
    }

    // Python's printf-style formatting for the directives templates use (%s, %d, %i, %f, %r, %%).
    private JinjaString Format(JinjaString format, object? values)
    {
        var args = values is JinjaList { IsTuple: true } tuple ? tuple.Items : [values];
        var result = JinjaString.Empty;
        var argIndex = 0;
        var pos = 0;
        var text = format.Text;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '%' || i + 1 >= text.Length)
                continue;
            result = JinjaString.Concat(result, format.Substring(pos, i - pos));
            var c = text[i + 1];
            if (c == '%')
            {
                result = JinjaString.Concat(result, JinjaString.Markup("%"));
            }
            else
            {
                if (argIndex >= args.Count)
                    throw new JinjaRuntimeError("not enough arguments for format string");
                var arg = args[argIndex++];
                result = JinjaString.Concat(result, c switch
                {
                    'd' or 'i' => JinjaString.Markup(((long)JinjaValues.ToDouble(arg)).ToString(CultureInfo.InvariantCulture)),
                    'f' => JinjaString.Markup(JinjaValues.ToDouble(arg).ToString("F6", CultureInfo.InvariantCulture)),
                    _ => JinjaValues.Print(arg),
                });
            }
            i++;
            pos = i + 1;
        }
        return CheckLength(JinjaString.Concat(result, format.Substring(pos, text.Length - pos)));
    }

    private static object? Attribute(object? item, string path)
    {
        foreach (var part in path.Split('.'))
        {
            if (item is JinjaDict d)
                item = d.Items.TryGetValue(part, out var v) ? v : Undefined.Value;
            else if (item is JinjaList l && int.TryParse(part, out var i))
                item = i >= 0 && i < l.Items.Count ? l.Items[i] : Undefined.Value;
            else
                return Undefined.Value;
        }
        return item;
    }

    private List<object?> Iterate(object? value, string filter) => value switch
    {
        JinjaList l => l.Items,
        JinjaString s => Enumerable.Range(0, s.Length).Select(i => (object?)s.Substring(i, 1)).ToList(),
        JinjaDict d => d.Items.Keys.Select(k => (object?)JinjaString.Markup(k)).ToList(),
        _ => throw new JinjaRuntimeError($"Cannot apply filter \"{filter}\" to type: {JinjaValues.TypeName(value)}"),
    };

    private object? ApplyFilter(string name, object? operand, List<object?> args, Dictionary<string, object?> kwargs, JinjaScope scope)
    {
        object? Arg(int index, string key, object? fallback = null) =>
            index >= 0 && index < args.Count ? args[index] : kwargs.TryGetValue(key, out var v) ? v : fallback;

        switch (name)
        {
            case "tojson":
            {
                var indent = Arg(0, "indent");
                var separators = Arg(-1, "separators");
                (string, string)? seps = separators is JinjaList { Items.Count: 2 } sl ? (Str(sl.Items[0], "separators").Text, Str(sl.Items[1], "separators").Text) : null;
                var result = JinjaValues.ToJson(operand, indent is long n ? (int)n : null, JinjaValues.Truthy(Arg(-1, "ensure_ascii", false)), seps, JinjaValues.Truthy(Arg(-1, "sort_keys", false)), true);
                return CheckLength(result);
            }
            case "safe":
                return operand;
            case "string":
                return operand is JinjaString ? operand : JinjaValues.Print(operand);
            case "length" or "count":
                return operand switch
                {
                    JinjaString s => (long)s.Length,
                    JinjaList l => (long)l.Items.Count,
                    JinjaDict d => (long)d.Items.Count,
                    _ => throw new JinjaRuntimeError($"Cannot apply filter \"{name}\" to type: {JinjaValues.TypeName(operand)}"),
                };
            case "default" or "d":
            {
                var fallback = Arg(0, "default_value", JinjaString.Empty);
                var boolean = JinjaValues.Truthy(Arg(1, "boolean", false));
                if (operand is Undefined)
                    return fallback;
                return boolean && !JinjaValues.Truthy(operand) ? fallback : operand;
            }
        }

        if (operand is JinjaString str)
        {
            switch (name)
            {
                case "trim": return str.Trim(true, true);
                case "upper": return JinjaString.Derived(str.Text.ToUpperInvariant(), str);
                case "lower": return JinjaString.Derived(str.Text.ToLowerInvariant(), str);
                case "title": return JinjaString.Derived(Title(str.Text), str);
                case "capitalize": return JinjaString.Derived(str.Length == 0 ? "" : char.ToUpperInvariant(str.Text[0]) + str.Text[1..].ToLowerInvariant(), str);
                case "replace": return Replace(str, args, kwargs);
                case "e" or "escape":
                    return JinjaString.Derived(str.Text.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal)
                        .Replace(">", "&gt;", StringComparison.Ordinal).Replace("\"", "&quot;", StringComparison.Ordinal).Replace("'", "&#39;", StringComparison.Ordinal), str);
                case "int":
                    return long.TryParse(str.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i) ? i
                        : double.TryParse(str.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var di) ? (long)Math.Truncate(di) : Arg(0, "default", 0L);
                case "float":
                    return double.TryParse(str.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) ? f : Arg(0, "default", 0.0);
                case "indent":
                    return Indent(str, Arg(0, "width", 4L), JinjaValues.Truthy(Arg(1, "first", false)), JinjaValues.Truthy(Arg(2, "blank", false)));
                case "first": return str.Length > 0 ? str.Substring(0, 1) : Undefined.Value;
                case "last": return str.Length > 0 ? str.Substring(str.Length - 1, 1) : Undefined.Value;
                case "reverse": return str.Pick(Enumerable.Range(0, str.Length).Reverse().ToList());
                case "join" or "list" or "unique" or "map" or "select" or "reject" or "sort":
                    break;
                case "format": return Format(str, new JinjaList(args, isTuple: true));
                default:
                    throw new JinjaRuntimeError($"Unknown StringValue filter: {name}");
            }
        }

        switch (name)
        {
            case "abs":
                return operand switch { long l => Math.Abs(l), double d => Math.Abs(d), _ => throw new JinjaRuntimeError($"Cannot apply filter \"abs\" to type: {JinjaValues.TypeName(operand)}") };
            case "int":
                return operand switch { long l => l, double d => (long)Math.Truncate(d), bool b => b ? 1L : 0L, _ => Arg(0, "default", 0L) };
            case "float":
                return operand switch { long l => (double)l, double d => d, bool b => b ? 1.0 : 0.0, _ => Arg(0, "default", 0.0) };
            case "round":
            {
                var precision = Arg(0, "precision", 0L) is long p ? (int)p : 0;
                var method = Arg(1, "method") is JinjaString m ? m.Text : "common";
                var value = JinjaValues.ToDouble(operand);
                var factor = Math.Pow(10, precision);
                var r = method switch
                {
                    "ceil" => Math.Ceiling(value * factor) / factor,
                    "floor" => Math.Floor(value * factor) / factor,
                    _ => Math.Round(value * factor, MidpointRounding.AwayFromZero) / factor,
                };
                return r;
            }
            case "items":
                return operand is JinjaDict od ? Items(od) : operand is Undefined ? new JinjaList([]) : throw new JinjaRuntimeError($"Cannot apply filter \"items\" to type: {JinjaValues.TypeName(operand)}");
            case "dictsort":
            {
                if (operand is not JinjaDict dict)
                    throw new JinjaRuntimeError("dictsort expects a mapping");
                var byValue = Arg(1, "by") is JinjaString by && by.Text == "value";
                var caseSensitive = JinjaValues.Truthy(Arg(0, "case_sensitive", false));
                var reverse = JinjaValues.Truthy(Arg(2, "reverse", false));
                var items = Items(dict).Items.ToList();
                items.Sort((x, y) => Compare(((JinjaList)x!).Items[byValue ? 1 : 0], ((JinjaList)y!).Items[byValue ? 1 : 0], caseSensitive));
                if (reverse)
                    items.Reverse();
                return new JinjaList(items);
            }
        }

        var list = Iterate(operand, name);
        foreach (var _ in list)
            Tick();
        switch (name)
        {
            case "list":
                return new JinjaList(list.ToList());
            case "first":
                return list.Count > 0 ? list[0] : Undefined.Value;
            case "last":
                return list.Count > 0 ? list[^1] : Undefined.Value;
            case "reverse":
                return new JinjaList(Enumerable.Reverse(list).ToList());
            case "join":
            {
                var separator = Arg(0, "d", JinjaString.Empty) as JinjaString ?? JinjaString.Empty;
                var attribute = Arg(1, "attribute") as JinjaString;
                var result = JinjaString.Empty;
                for (var i = 0; i < list.Count; i++)
                {
                    if (i > 0)
                        result = JinjaString.Concat(result, separator);
                    var item = attribute is null ? list[i] : Attribute(list[i], attribute.Text);
                    result = CheckLength(JinjaString.Concat(result, JinjaValues.Print(item)));
                }
                return result;
            }
            case "unique":
            {
                var result = new List<object?>();
                foreach (var item in list)
                {
                    if (!result.Any(r => StrictEquals(r, item) || (r is JinjaString a && item is JinjaString b && a.Text == b.Text)))
                        result.Add(item);
                }
                return new JinjaList(result);
            }
            case "map":
            {
                if (kwargs.TryGetValue("attribute", out var attr))
                {
                    var path = Str(attr, "map(attribute=)").Text;
                    var fallback = kwargs.GetValueOrDefault("default", Undefined.Value);
                    return new JinjaList(list.Select(i => Attribute(i, path) is Undefined ? fallback : Attribute(i, path)).ToList());
                }
                var filter = args.Count > 0 ? Str(args[0], "map()").Text : throw new JinjaRuntimeError("map() expects a filter name or attribute=");
                return new JinjaList(list.Select(i => ApplyFilter(filter, i, args.Skip(1).ToList(), new Dictionary<string, object?>(), scope)).ToList());
            }
            case "select" or "reject":
            {
                var keep = name == "select";
                if (args.Count == 0)
                    return new JinjaList(list.Where(i => JinjaValues.Truthy(i) == keep).ToList());
                var test = Str(args[0], name).Text;
                return new JinjaList(list.Where(i => ApplyTest(test, i, args.Skip(1).ToList(), scope) == keep).ToList());
            }
            case "selectattr" or "rejectattr":
            {
                var keep = name == "selectattr";
                var attr = args.Count > 0 ? Str(args[0], name).Text : throw new JinjaRuntimeError($"{name}() expects an attribute name");
                if (args.Count == 1)
                    return new JinjaList(list.Where(i => JinjaValues.Truthy(Attribute(i, attr)) == keep).ToList());
                var test = Str(args[1], name).Text;
                return new JinjaList(list.Where(i => ApplyTest(test, Attribute(i, attr), args.Skip(2).ToList(), scope) == keep).ToList());
            }
            case "sort":
            {
                var reverse = JinjaValues.Truthy(Arg(0, "reverse", false));
                var caseSensitive = JinjaValues.Truthy(Arg(1, "case_sensitive", false));
                var attribute = Arg(2, "attribute") as JinjaString;
                var sorted = list.ToList();
                var keys = sorted.Select(i => attribute is null ? i : Attribute(i, attribute.Text)).ToList();
                var order = Enumerable.Range(0, sorted.Count).ToList();
                order.Sort((a, b) =>
                {
                    var c = Compare(keys[a], keys[b], caseSensitive);
                    return c != 0 ? (reverse ? -c : c) : a.CompareTo(b);
                });
                return new JinjaList(order.Select(i => sorted[i]).ToList());
            }
            case "batch":
            {
                var size = Arg(0, "linecount") is long n && n > 0 ? (int)n : throw new JinjaRuntimeError("batch() expects a positive size");
                var fill = Arg(1, "fill_with", Undefined.Value);
                var result = new List<object?>();
                for (var i = 0; i < list.Count; i += size)
                {
                    var chunk = list.Skip(i).Take(size).ToList();
                    while (chunk.Count < size && fill is not Undefined)
                        chunk.Add(fill);
                    result.Add(new JinjaList(chunk));
                }
                return new JinjaList(result);
            }
            default:
                throw new JinjaRuntimeError($"Unknown filter: {name}");
        }
    }

    private static int Compare(object? a, object? b, bool caseSensitive)
    {
        if (a is JinjaString x && b is JinjaString y)
        {
            var sa = caseSensitive ? x.Text : x.Text.ToLowerInvariant();
            var sb = caseSensitive ? y.Text : y.Text.ToLowerInvariant();
            return string.CompareOrdinal(sa, sb);
        }
        if (a is long or double or bool && b is long or double or bool)
            return JinjaValues.ToDouble(a).CompareTo(JinjaValues.ToDouble(b));
        if (a is null or Undefined && b is null or Undefined)
            return 0;
        throw new JinjaRuntimeError($"Cannot compare {JinjaValues.TypeName(a)} with {JinjaValues.TypeName(b)}");
    }

    private JinjaString Indent(JinjaString s, object? widthArg, bool first, bool blank)
    {
        var pad = widthArg is JinjaString ws ? ws : JinjaString.Markup(new string(' ', widthArg is long w ? (int)w : 4));
        var result = JinjaString.Empty;
        var lineStart = 0;
        var index = 0;
        while (true)
        {
            Tick();
            var nl = s.Text.IndexOf('\n', lineStart);
            var end = nl < 0 ? s.Length : nl;
            var line = s.Substring(lineStart, end - lineStart);
            var isFirst = index == 0;
            var padThis = (isFirst ? first : true) && (blank || line.Text.Trim().Length > 0);
            if (padThis)
                result = JinjaString.Concat(result, pad);
            result = CheckLength(JinjaString.Concat(result, line));
            if (nl < 0)
                break;
            result = JinjaString.Concat(result, s.Substring(nl, 1));
            lineStart = nl + 1;
            index++;
        }
        return result;
    }

    private bool ApplyTest(string name, object? v, List<object?> args, JinjaScope scope) => name switch
    {
        "defined" => v is not Undefined,
        "undefined" => v is Undefined,
        "none" => v is null,
        "string" => v is JinjaString,
        "number" => v is long or double,
        "integer" => v is long,
        "float" => v is double,
        "boolean" => v is bool,
        "true" => v is true,
        "false" => v is false,
        "mapping" => v is JinjaDict,
        "iterable" => v is JinjaList or JinjaString or JinjaDict,
        "sequence" => v is JinjaList or JinjaString or JinjaDict,
        "callable" => v is JinjaFunction,
        "odd" => v is long l ? l % 2 != 0 : throw new JinjaRuntimeError($"Cannot apply test \"odd\" to type: {JinjaValues.TypeName(v)}"),
        "even" => v is long e ? e % 2 == 0 : throw new JinjaRuntimeError($"Cannot apply test \"even\" to type: {JinjaValues.TypeName(v)}"),
        "divisibleby" => v is long a && args.Count > 0 && args[0] is long b && b != 0 ? a % b == 0 : throw new JinjaRuntimeError("divisibleby expects integers"),
        "lower" => v is JinjaString s && s.Text == s.Text.ToLowerInvariant(),
        "upper" => v is JinjaString u && u.Text == u.Text.ToUpperInvariant(),
        "equalto" or "eq" or "==" or "sameas" => args.Count > 0 && LooseEquals(v, args[0]),
        "ne" or "!=" => args.Count > 0 && !LooseEquals(v, args[0]),
        "lt" or "<" => JinjaValues.ToDouble(v) < JinjaValues.ToDouble(args[0]),
        "gt" or ">" => JinjaValues.ToDouble(v) > JinjaValues.ToDouble(args[0]),
        "le" or "<=" => JinjaValues.ToDouble(v) <= JinjaValues.ToDouble(args[0]),
        "ge" or ">=" => JinjaValues.ToDouble(v) >= JinjaValues.ToDouble(args[0]),
        "in" => args.Count > 0 && args[0] switch
        {
            JinjaList l2 => l2.Items.Any(x => StrictEquals(x, v)),
            JinjaString s2 => v is JinjaString n && s2.Text.Contains(n.Text, StringComparison.Ordinal),
            JinjaDict d2 => v is JinjaString k && d2.Items.ContainsKey(k.Text),
            _ => false,
        },
        _ => throw new JinjaRuntimeError($"Unknown test: {name}"),
    };
}
