using System.Globalization;
using System.Text;
using System.Text.Json;

namespace AgentHost.Extensions.AI.Jinja;

internal sealed class Undefined
{
    public static readonly Undefined Value = new();
    private Undefined() { }
}

internal sealed class JinjaList(List<object?> items, bool isTuple = false)
{
    public List<object?> Items { get; } = items;
    public bool IsTuple { get; } = isTuple;
}

internal sealed class JinjaDict
{
    public JinjaDict(bool isNamespace = false) => IsNamespace = isNamespace;
    public OrderedDictionary<string, object?> Items { get; } = new(StringComparer.Ordinal);
    public bool IsNamespace { get; }
}

internal delegate object? JinjaFunction(List<object?> args, Dictionary<string, object?> kwargs);

/// <summary>Conversions and the reference renderer's string forms.</summary>
internal static class JinjaValues
{
    public static bool IsNumber(object? v) => v is long or double;

    public static double ToDouble(object? v) => v switch { long l => l, double d => d, bool b => b ? 1 : 0, _ => double.NaN };

    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0 && !double.IsNaN(d),
        JinjaString s => s.Length > 0,
        JinjaList l => l.Items.Count > 0,
        JinjaDict d => d.IsNamespace || d.Items.Count > 0,
        _ => true,
    };

    public static string TypeName(object? v) => v switch
    {
        null => "NullValue",
        Undefined => "UndefinedValue",
        bool => "BooleanValue",
        long => "IntegerValue",
        double => "FloatValue",
        JinjaString => "StringValue",
        JinjaList { IsTuple: true } => "TupleValue",
        JinjaList => "ArrayValue",
        JinjaDict { IsNamespace: true } => "NamespaceValue",
        JinjaDict => "ObjectValue",
        _ => "FunctionValue",
    };

    /// <summary>JavaScript's Number.prototype.toString for the values templates meet.</summary>
    public static string JsNumber(double d)
    {
        if (double.IsNaN(d))
            return "NaN";
        if (double.IsInfinity(d))
            return d > 0 ? "Infinity" : "-Infinity";
        if (d == Math.Floor(d) && Math.Abs(d) < 1e21)
            return ((decimal)d).ToString(CultureInfo.InvariantCulture);
        return d.ToString("R", CultureInfo.InvariantCulture).Replace("E+", "e+", StringComparison.Ordinal).Replace("E-", "e-", StringComparison.Ordinal);
    }

    /// <summary>How <c>{{ value }}</c> prints (the reference's RuntimeValue.toString).</summary>
    public static JinjaString Print(object? v) => v switch
    {
        JinjaString s => s,
        long l => JinjaString.Markup(l.ToString(CultureInfo.InvariantCulture)),
        double d => JinjaString.Markup(d == 0 && double.IsNegative(d) ? "-0.0" : d % 1 == 0 && !double.IsInfinity(d) ? JsNumber(d) + ".0" : JsNumber(d)),
        bool b => JinjaString.Markup(b ? "true" : "false"),
        null => JinjaString.Markup("null"),
        Undefined => JinjaString.Markup("undefined"),
        JinjaList or JinjaDict => ToJson(v, null, false, null, false, false),
        _ => JinjaString.Markup("[function]"),
    };

    /// <summary>The raw JavaScript value's toString, which <c>+</c> and <c>~</c> use.</summary>
    public static JinjaString Raw(object? v) => v switch
    {
        JinjaString s => s,
        long l => JinjaString.Markup(l.ToString(CultureInfo.InvariantCulture)),
        double d => JinjaString.Markup(JsNumber(d)),
        bool b => JinjaString.Markup(b ? "true" : "false"),
        JinjaList list => JoinRaw(list),
        JinjaDict => JinjaString.Markup("[object Map]"),
        null => JinjaString.Markup("null"),
        Undefined => JinjaString.Markup("undefined"),
        _ => JinjaString.Markup("[function]"),
    };

    private static JinjaString JoinRaw(JinjaList list)
    {
        var result = JinjaString.Empty;
        for (var i = 0; i < list.Items.Count; i++)
        {
            if (i > 0)
                result = JinjaString.Concat(result, JinjaString.Markup(","));
            var item = list.Items[i];
            if (item is not (null or Undefined))
                result = JinjaString.Concat(result, Print(item));
        }
        return result;
    }

    /// <summary>JSON.stringify of a string (what the reference writes).</summary>
    public static string JsonQuote(string value)
    {
        var builder = new StringBuilder(value.Length + 2);
        builder.Append('"');
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            switch (c)
            {
                case '"': builder.Append("\\\""); break;
                case '\\': builder.Append("\\\\"); break;
                case '\n': builder.Append("\\n"); break;
                case '\r': builder.Append("\\r"); break;
                case '\t': builder.Append("\\t"); break;
                case '\b': builder.Append("\\b"); break;
                case '\f': builder.Append("\\f"); break;
                default:
                    if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                    {
                        builder.Append(c).Append(value[++i]);
                    }
                    else if (c < 0x20 || char.IsSurrogate(c))
                    {
                        builder.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        builder.Append(c);
                    }
                    break;
            }
        }
        return builder.Append('"').ToString();
    }

    /// <summary>The reference's toJSON (tojson filter, and how lists and dicts print).</summary>
    public static JinjaString ToJson(object? value, int? indent, bool ensureAscii, (string Item, string Key)? separators, bool sortKeys, bool undefinedToNull)
    {
        var builder = new StringBuilder();
        var content = false;
        WriteJson(value, builder, indent, ensureAscii, separators, sortKeys, undefinedToNull, 0, ref content);
        return content ? JinjaString.Content(builder.ToString()) : JinjaString.Markup(builder.ToString());
    }

    private static void WriteJson(object? value, StringBuilder b, int? indent, bool ascii, (string Item, string Key)? separators, bool sortKeys, bool undefinedToNull, int depth, ref bool content)
    {
        if (depth > 200)
            throw new InvalidOperationException("tojson: the value nests too deeply");
        var (itemSep, keySep) = separators ?? (indent is > 0 ? (",", ": ") : (", ", ": "));
        switch (value)
        {
            case null:
                b.Append("null");
                break;
            case Undefined:
                b.Append(undefinedToNull ? "null" : "undefined");
                break;
            case bool v:
                b.Append(v ? "true" : "false");
                break;
            case long l:
                b.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                b.Append(double.IsFinite(d) ? JsNumber(d) : "null");
                break;
            case JinjaString s:
                content |= s.HasContent;
                b.Append(ascii ? MakeAscii(JsonQuote(s.Text)) : JsonQuote(s.Text));
                break;
            case JinjaList list:
            {
                var pad = indent is > 0 ? new string(' ', indent.Value) : string.Empty;
                var basePad = "\n" + string.Concat(Enumerable.Repeat(pad, depth));
                var childPad = basePad + pad;
                var pretty = indent is > 0 && list.Items.Count > 0;
                b.Append('[');
                for (var i = 0; i < list.Items.Count; i++)
                {
                    if (i > 0)
                        b.Append(itemSep);
                    if (pretty)
                        b.Append(childPad);
                    WriteJson(list.Items[i], b, indent, ascii, separators, sortKeys, undefinedToNull, depth + 1, ref content);
                }
                if (pretty)
                    b.Append(basePad);
                b.Append(']');
                break;
            }
            case JinjaDict dict:
            {
                var pad = indent is > 0 ? new string(' ', indent.Value) : string.Empty;
                var basePad = "\n" + string.Concat(Enumerable.Repeat(pad, depth));
                var childPad = basePad + pad;
                var pretty = indent is > 0 && dict.Items.Count > 0;
                IEnumerable<KeyValuePair<string, object?>> entries = dict.Items;
                if (sortKeys)
                    entries = entries.OrderBy(e => e.Key, StringComparer.InvariantCulture);
                b.Append('{');
                var first = true;
                foreach (var (key, item) in entries)
                {
                    if (!first)
                        b.Append(itemSep);
                    first = false;
                    if (pretty)
                        b.Append(childPad);
                    b.Append(ascii ? MakeAscii(JsonQuote(key)) : JsonQuote(key)).Append(keySep);
                    WriteJson(item, b, indent, ascii, separators, sortKeys, undefinedToNull, depth + 1, ref content);
                }
                if (pretty)
                    b.Append(basePad);
                b.Append('}');
                break;
            }
            default:
                throw new InvalidOperationException($"Cannot convert to JSON: {TypeName(value)}");
        }
    }

    private static string MakeAscii(string s)
    {
        var b = new StringBuilder(s.Length);
        foreach (var c in s)
        {
            if (c >= 0x7f)
                b.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            else
                b.Append(c);
        }
        return b.ToString();
    }

    /// <summary>Converts JSON into engine values; every string becomes content.</summary>
    public static object? FromJson(JsonElement element, bool content = true) => element.ValueKind switch
    {
        JsonValueKind.Object => FromJsonObject(element, content),
        JsonValueKind.Array => new JinjaList(element.EnumerateArray().Select(e => FromJson(e, content)).ToList()),
        JsonValueKind.String => content ? JinjaString.Content(element.GetString()!) : JinjaString.Markup(element.GetString()!),
        JsonValueKind.Number => element.TryGetInt64(out var l) && !element.GetRawText().Contains('.') && !element.GetRawText().Contains('e') && !element.GetRawText().Contains('E') ? l : element.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    private static JinjaDict FromJsonObject(JsonElement element, bool content)
    {
        var dict = new JinjaDict();
        foreach (var property in element.EnumerateObject())
            dict.Items[property.Name] = FromJson(property.Value, content);
        return dict;
    }
}
