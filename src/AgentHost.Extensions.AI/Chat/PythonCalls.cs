using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace AgentHost.Extensions.AI.Chat;

/// <summary>
/// Reads Python-style calls, <c>name(key=value, ...)</c> one after another (Gemma's <c>```tool_code</c> blocks), with
/// Python literal values (strings, numbers, True/False/None, lists, tuples, dicts) turned into JSON.
/// </summary>
internal static class PythonCalls
{
    private const int MaxDepth = 64;

    public static bool TryRead(string code, out List<(string Name, Dictionary<string, object?> Arguments, string Raw)> calls, out string problem)
    {
        calls = [];
        var position = 0;
        try
        {
            while (true)
            {
                while (position < code.Length && (char.IsWhiteSpace(code[position]) || code[position] == ';'))
                    position++;
                if (position == code.Length)
                    break;
                var start = position;
                var name = ReadName(code, ref position);
                if (name.Length == 0)
                    return Fail(out problem, "A tool_code block holds neither a JSON call nor a call name(key=value, ...).");
                SkipSpace(code, ref position);
                if (position == code.Length || code[position] != '(')
                    return Fail(out problem, $"The call '{name}' in a tool_code block has no argument list.");
                position++;
                var arguments = new Dictionary<string, object?>(StringComparer.Ordinal);
                while (true)
                {
                    SkipSpace(code, ref position);
                    if (position < code.Length && code[position] == ')')
                    {
                        position++;
                        break;
                    }
                    var key = ReadName(code, ref position);
                    SkipSpace(code, ref position);
                    if (key.Length == 0 || position == code.Length || code[position] != '=')
                        return Fail(out problem, $"The arguments of the call '{name}' in a tool_code block are not key=value pairs.");
                    position++;
                    SkipSpace(code, ref position);
                    var buffer = new ArrayBufferWriter<byte>();
                    using (var writer = new Utf8JsonWriter(buffer))
                    {
                        if (!WriteValue(code, ref position, writer, 0))
                            return Fail(out problem, $"The value of '{key}' in the call '{name}' is not a Python literal.");
                    }
                    using (var document = JsonDocument.Parse(buffer.WrittenMemory))
                        arguments[key] = document.RootElement.Clone();
                    SkipSpace(code, ref position);
                    if (position < code.Length && code[position] == ',')
                        position++;
                    else if (position == code.Length || code[position] != ')')
                        return Fail(out problem, $"The argument list of the call '{name}' in a tool_code block is not closed.");
                }
                calls.Add((name, arguments, code[start..position]));
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or ArgumentException or FormatException)
        {
            return Fail(out problem, $"A tool_code block could not be read ({ex.Message}).");
        }
        if (calls.Count == 0)
            return Fail(out problem, "A tool_code block holds no call.");
        problem = string.Empty;
        return true;
    }

    private static bool Fail(out string problem, string message)
    {
        problem = message;
        return false;
    }

    private static void SkipSpace(string code, ref int position)
    {
        while (position < code.Length && char.IsWhiteSpace(code[position]))
            position++;
    }

    private static string ReadName(string code, ref int position)
    {
        var start = position;
        if (position < code.Length && (char.IsLetter(code[position]) || code[position] == '_'))
        {
            position++;
            while (position < code.Length && (char.IsLetterOrDigit(code[position]) || code[position] is '_' or '.' or '-'))
                position++;
        }
        return code[start..position];
    }

    private static bool WriteValue(string code, ref int position, Utf8JsonWriter writer, int depth)
    {
        if (position >= code.Length || depth > MaxDepth)
            return false;
        var c = code[position];
        switch (c)
        {
            case '"' or '\'':
                if (!ReadString(code, ref position, out var text))
                    return false;
                writer.WriteStringValue(text);
                return true;
            case '[' or '(':
                return WriteList(code, ref position, writer, depth, c == '[' ? ']' : ')');
            case '{':
                return WriteDict(code, ref position, writer, depth);
        }
        if (c is '-' or '+' or '.' || char.IsDigit(c))
        {
            var start = position;
            position++;
            while (position < code.Length && (char.IsDigit(code[position]) || code[position] is '.' or 'e' or 'E' or '_' or '+' or '-'))
                position++;
            var number = code[start..position].Replace("_", "", StringComparison.Ordinal);
            if (long.TryParse(number, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
                writer.WriteNumberValue(integer);
            else if (double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var real) && double.IsFinite(real))
                writer.WriteNumberValue(real);
            else
                return false;
            return true;
        }
        var word = ReadName(code, ref position);
        switch (word)
        {
            case "True" or "true":
                writer.WriteBooleanValue(true);
                return true;
            case "False" or "false":
                writer.WriteBooleanValue(false);
                return true;
            case "None" or "null":
                writer.WriteNullValue();
                return true;
            default:
                return false;
        }
    }

    private static bool WriteList(string code, ref int position, Utf8JsonWriter writer, int depth, char close)
    {
        position++;
        writer.WriteStartArray();
        while (true)
        {
            SkipSpace(code, ref position);
            if (position < code.Length && code[position] == close)
            {
                position++;
                writer.WriteEndArray();
                return true;
            }
            if (!WriteValue(code, ref position, writer, depth + 1))
                return false;
            SkipSpace(code, ref position);
            if (position < code.Length && code[position] == ',')
                position++;
            else if (position >= code.Length || code[position] != close)
                return false;
        }
    }

    private static bool WriteDict(string code, ref int position, Utf8JsonWriter writer, int depth)
    {
        position++;
        writer.WriteStartObject();
        while (true)
        {
            SkipSpace(code, ref position);
            if (position < code.Length && code[position] == '}')
            {
                position++;
                writer.WriteEndObject();
                return true;
            }
            if (position >= code.Length || code[position] is not ('"' or '\'') || !ReadString(code, ref position, out var key))
                return false;
            SkipSpace(code, ref position);
            if (position >= code.Length || code[position] != ':')
                return false;
            position++;
            SkipSpace(code, ref position);
            writer.WritePropertyName(key);
            if (!WriteValue(code, ref position, writer, depth + 1))
                return false;
            SkipSpace(code, ref position);
            if (position < code.Length && code[position] == ',')
                position++;
            else if (position >= code.Length || code[position] != '}')
                return false;
        }
    }

    private static bool ReadString(string code, ref int position, out string text)
    {
        var quote = code[position++];
        var builder = new StringBuilder();
        while (position < code.Length)
        {
            var c = code[position++];
            if (c == quote)
            {
                text = builder.ToString();
                return true;
            }
            if (c != '\\' || position >= code.Length)
            {
                builder.Append(c);
                continue;
            }
            var escaped = code[position++];
            switch (escaped)
            {
                case 'n': builder.Append('\n'); break;
                case 't': builder.Append('\t'); break;
                case 'r': builder.Append('\r'); break;
                case 'u' when position + 4 <= code.Length && int.TryParse(code.AsSpan(position, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var unit):
                    builder.Append((char)unit);
                    position += 4;
                    break;
                default: builder.Append(escaped); break;
            }
        }
        text = string.Empty;
        return false;
    }
}
