using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;

namespace AgentHost.Extensions.AI.Chat;

/// <summary>
/// Reads tool calls out of one assistant reply as it streams. Feed it the text deltas with <see cref="Push"/> and
/// finish with <see cref="Complete"/>; both return what is now certain: <see cref="TextContent"/> deltas and
/// complete <see cref="FunctionCallContent"/>s (arguments as a dictionary of <see cref="JsonElement"/>s, the call's
/// JSON text as <see cref="AIContent.RawRepresentation"/>).
/// </summary>
/// <remarks>
/// Text is held back only while it may still be the start of a call (a partial marker, or a call being read);
/// everything that turns out not to be a call is returned as text, in order. A call that is malformed (invalid or
/// unterminated JSON, no name, arguments that are not an object) comes back as the plain text it was, and the
/// reason is added to <see cref="Problems"/>; the parser never throws on model output. So does a call to a tool
/// that was not offered, when the parser was given the tool names. Whitespace between calls and after the last
/// one is dropped.
/// </remarks>
public sealed class ToolCallParser
{
    private const string IdAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    private readonly ToolCallFormat _format;
    private readonly HashSet<string>? _toolNames; // null: any name is a call
    private readonly CallOpener[] _openers;
    private readonly System.Buffers.SearchValues<char> _markerStarts;
    private readonly StringBuilder _buffer = new();
    private readonly List<string> _problems = [];
    private readonly List<AIContent> _output = [];
    private bool _inCall;
    private bool _atCallPosition = true; // at the start of the reply or right after a call
    private bool _afterCall;
    private bool _completed;
    private string _opener = string.Empty; // text consumed when the call opened, given back if it is malformed
    private CallOpener? _current; // null: a bare JSON call at the start of the reply
    private JsonValueScanner _scanner;
    private int _scanned;
    private int _jsonEnd = -1; // where the call's JSON ended, while an optional closing tag may follow
    private string? _namedCall; // the tool name of a NAME[ARGS]{...} call being read
    private int _jsonStart;

    internal ToolCallParser(ToolCallFormat format, IEnumerable<string>? toolNames)
    {
        _format = format;
        _toolNames = toolNames is null ? null : new HashSet<string>(toolNames, StringComparer.Ordinal);
        _openers = format.Openers;
        _markerStarts = System.Buffers.SearchValues.Create(string.Concat(Array.ConvertAll(_openers, opener => opener.First.ToString())));
    }

    /// <summary>Why calls were returned as text (one line each), for logging.</summary>
    public IReadOnlyList<string> Problems => _problems;

    /// <summary>Feeds the next piece of the reply.</summary>
    /// <returns>Text and calls that are now certain, in order (often empty).</returns>
    public IReadOnlyList<AIContent> Push(string delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        if (_completed)
            throw new InvalidOperationException("The reply was already completed.");
        if (!_inCall && !_atCallPosition && _buffer.Length == 0 && delta.AsSpan().IndexOfAny(_markerStarts) < 0)
        {
            // The common case mid-text: nothing here can start a call, so the delta passes straight through.
            return delta.Length == 0 ? [] : [new TextContent(delta)];
        }
        _buffer.Append(delta);
        return Process(final: false);
    }

    /// <summary>Ends the reply: held-back text is released and an unterminated call is read if it is complete JSON.</summary>
    /// <returns>The remaining text and calls.</returns>
    public IReadOnlyList<AIContent> Complete()
    {
        if (_completed)
            return [];
        _completed = true;
        var unfinished = _inCall ? _opener + _buffer : null;
        var problems = _problems.Count;
        var result = Process(final: true);
        if (unfinished is not null && _problems.Count > problems)
            UnfinishedCall = unfinished;
        return result;
    }

    /// <summary>
    /// The text of a call the reply ended inside and that could not be read (e.g. cut off by max tokens), returned as
    /// the end of the text; null when there was none. Set by <see cref="Complete"/>.
    /// </summary>
    public string? UnfinishedCall { get; private set; }

    /// <summary>Parses a whole reply at once.</summary>
    public IReadOnlyList<AIContent> ParseAll(string reply)
    {
        var contents = new List<AIContent>(Push(reply));
        contents.AddRange(Complete());
        return ReplyReader.Merge(contents);
    }

    private IReadOnlyList<AIContent> Process(bool final)
    {
        while (_inCall ? ReadCall(final) : ReadText(final))
        {
        }
        if (_output.Count == 0)
            return [];
        var result = _output.ToArray();
        _output.Clear();
        return result;
    }

    // Returns true when a call was opened (more to do), false when waiting for input.
    private bool ReadText(bool final)
    {
        var text = _buffer.ToString();
        if (_atCallPosition)
        {
            var ws = 0;
            while (ws < text.Length && (char.IsWhiteSpace(text[ws]) || (_afterCall && _format.CallSeparators.Contains(text[ws], StringComparison.Ordinal))))
                ws++;
            if (ws == text.Length)
            {
                if (final)
                {
                    if (!_afterCall || !string.IsNullOrWhiteSpace(text))
                        EmitText(text);
                    _buffer.Clear();
                }
                return false;
            }

            var rest = text.AsSpan(ws);
            foreach (var opener in _openers)
            {
                if (opener.Text is null)
                    continue; // a JSON object here is a bare call (below)
                var match = opener.Match(rest);
                if (match > 0)
                {
                    var between = _afterCall ? text[..ws] : string.Empty;
                    if (!_afterCall)
                        EmitText(text[..ws]);
                    OpenCall(ws, opener, between);
                    return true;
                }
                if (match == 0 && !final)
                    return false; // may still become a marker
            }

            if (_format.BareJsonOpeners.Contains(text[ws], StringComparison.Ordinal))
            {
                OpenCall(ws, null, text[..ws]);
                return true;
            }
            _atCallPosition = false; // plain text follows: its leading whitespace (and any separator) stays
        }

        var from = 0;
        while (from < text.Length)
        {
            var index = text.AsSpan(from).IndexOfAny(_markerStarts);
            if (index < 0)
                break;
            var position = from + index;
            var rest = text.AsSpan(position);
            var partial = false;
            foreach (var opener in _openers)
            {
                var match = opener.Match(rest);
                if (match > 0)
                {
                    EmitText(text[..position]);
                    OpenCall(position, opener, string.Empty);
                    return true;
                }
                partial |= match == 0;
            }
            if (partial && !final)
            {
                // The end of the text may still become a marker: hold it back.
                EmitText(text[..position]);
                _buffer.Remove(0, position);
                return false;
            }
            from = position + 1;
        }

        EmitText(text);
        _buffer.Clear();
        return false;
    }

    // Returns true when the call was finished (more to do), false when waiting for input.
    private bool ReadCall(bool final)
    {
        var text = _buffer.ToString();
        if (_current is { IsBlock: true, End: { } end })
        {
            var index = text.IndexOf(end, Math.Max(0, _scanned - end.Length + 1), StringComparison.Ordinal);
            _scanned = text.Length;
            if (index >= 0)
            {
                FinishCall(text[..index], _opener + text[..(index + end.Length)], index + end.Length);
                return true;
            }
            if (final)
            {
                // The model stopped before closing the block: still a call if its content is complete.
                FinishCall(text, _opener + text, text.Length);
                return true;
            }
            return false;
        }

        if (_jsonEnd >= 0)
            return ReadClosingTag(text, final);

        if (_current?.Text is not null && _namedCall is null && _format.NamedArgumentsMarker is { } argsMarker && !TryReadCallName(text, argsMarker, final, out var wait))
        {
            if (wait)
                return false;
            _problems.Add($"'{_opener.Trim()}' is not followed by a JSON call or NAME{argsMarker}{{...}}.");
            EndCall(asCall: false);
            EmitText(_opener);
            return true;
        }

        var last = _scanner.Feed(text, _scanned);
        _scanned = text.Length;
        if (_scanner.NotJson)
        {
            _problems.Add($"'{_opener.Trim()}' is not followed by a JSON call.");
            EndCall(asCall: false);
            EmitText(_opener);
            return true;
        }
        if (last >= 0)
        {
            if (_current?.End is not null)
            {
                _jsonEnd = last + 1;
                return ReadClosingTag(text, final);
            }
            FinishCall(text[_jsonStart..(last + 1)], _opener + text[..(last + 1)], last + 1);
            return true;
        }
        if (final)
        {
            _problems.Add("The reply ended inside a tool call's JSON.");
            EndCall(asCall: false);
            EmitText(_opener + text);
            _buffer.Clear();
            return false;
        }
        return false;
    }

    // After a call's JSON: its optional closing tag (Phi-4-mini's <|/tool_call|>) is part of the call when it follows.
    private bool ReadClosingTag(string text, bool final)
    {
        var end = _current!.End!;
        var json = text[_jsonStart.._jsonEnd];
        var after = _jsonEnd;
        while (after < text.Length && char.IsWhiteSpace(text[after]))
            after++;
        var rest = text.AsSpan(after);
        if (rest.StartsWith(end, StringComparison.Ordinal))
        {
            FinishCall(json, _opener + text[..(after + end.Length)], after + end.Length);
            return true;
        }
        if (!final && end.AsSpan().StartsWith(rest, StringComparison.Ordinal))
            return false; // the tag may still come
        FinishCall(json, _opener + text[.._jsonEnd], _jsonEnd);
        return true;
    }

    // Mistral's NAME[ARGS]{...}: reads the name and points the JSON scan after the separator. False when the text is
    // not (or not yet, then `wait`) such a call; true when it is JSON right away or the name was read.
    private bool TryReadCallName(string text, string argsMarker, bool final, out bool wait)
    {
        wait = false;
        var first = 0;
        while (first < text.Length && char.IsWhiteSpace(text[first]))
            first++;
        if (first == text.Length)
        {
            wait = !final;
            return final; // nothing yet; at the end the JSON scan reports the unterminated call
        }
        if (text[first] is '[' or '{')
            return true;

        var end = first;
        while (end < text.Length && (char.IsLetterOrDigit(text[end]) || text[end] is '_' or '-' or '.'))
            end++;
        var name = text.AsSpan(first, end - first);
        var rest = text.AsSpan(end).TrimStart();
        if (!rest.StartsWith(argsMarker, StringComparison.Ordinal))
        {
            // Still a name, or a name and the start of the separator: wait for more.
            wait = !final && argsMarker.AsSpan().StartsWith(rest, StringComparison.Ordinal);
            return false;
        }
        if (name.IsEmpty)
            return false;
        var separator = text.Length - rest.Length;
        _namedCall = name.ToString();
        _jsonStart = separator + argsMarker.Length;
        _scanned = _jsonStart;
        return true;
    }

    // Opens a call at `position` of the buffer: `before` is dropped text (between calls) given back if the call is malformed.
    private void OpenCall(int position, CallOpener? opener, string before)
    {
        var consumed = opener is null || opener.KeepOpener ? 0 : opener.Consume;
        _opener = before + _buffer.ToString(position, consumed);
        _buffer.Remove(0, position + consumed);
        _current = opener;
        _inCall = true;
        _atCallPosition = false;
        _scanner = default;
        _scanned = 0;
        _jsonEnd = -1;
        _namedCall = null;
        _jsonStart = 0;
    }

    private void FinishCall(string payload, string raw, int consumed)
    {
        _buffer.Remove(0, consumed);
        var calls = new List<FunctionCallContent>();
        var requireArguments = _current is { Text: null };
        var read = _namedCall is not null ? TryReadNamedCall(_namedCall, payload, calls, out var problem)
            : (_current?.Payload ?? CallPayload.Json) switch
            {
                CallPayload.Code => TryReadCode(payload, calls, out problem),
                CallPayload.DeepSeek => TryReadDeepSeekCalls(payload, calls, out problem),
                _ => TryReadCalls(payload, calls, requireArguments, out problem),
            };
        if (read && KnowsAll(calls, out problem))
        {
            EndCall(asCall: true);
            _output.AddRange(calls);
        }
        else
        {
            _problems.Add(problem);
            EndCall(asCall: false);
            EmitText(raw);
        }
    }

    private bool KnowsAll(List<FunctionCallContent> calls, out string problem)
    {
        problem = string.Empty;
        if (_toolNames is null)
            return true;
        foreach (var call in calls)
        {
            if (!_toolNames.Contains(call.Name))
            {
                problem = $"The model called '{call.Name}', which is not one of the tools offered.";
                return false;
            }
        }
        return true;
    }

    private void EndCall(bool asCall)
    {
        _inCall = false;
        _afterCall = asCall;
        _atCallPosition = asCall;
    }

    private void EmitText(string text)
    {
        if (text.Length == 0)
            return;
        if (_output.Count > 0 && _output[^1] is TextContent previous)
            _output[^1] = new TextContent(previous.Text + text);
        else
            _output.Add(new TextContent(text));
    }

    private static bool TryReadCalls(string payload, List<FunctionCallContent> calls, bool requireArguments, out string problem)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(payload);
        }
        catch (JsonException ex)
        {
            problem = $"A tool call is not valid JSON ({ex.Message}).";
            return false;
        }

        using (document)
        {
            var root = document.RootElement;
            // llama.cpp's generic JSON shape: {"tool_call": {...}} or {"tool_calls": [...]}.
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("tool_calls", out var list) && list.ValueKind == JsonValueKind.Array)
                root = list;
            else if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("tool_call", out var single) && single.ValueKind == JsonValueKind.Object)
                root = single;
            if (root.ValueKind == JsonValueKind.Object)
                return TryReadCall(root, payload, calls, requireArguments, out problem);
            if (root.ValueKind == JsonValueKind.Array && root.GetArrayLength() > 0)
            {
                foreach (var item in root.EnumerateArray())
                {
                    if (!TryReadCall(item, item.GetRawText(), calls, requireArguments, out problem))
                        return false;
                }
                problem = string.Empty;
                return true;
            }
            problem = "A tool call must be a JSON object (or a non-empty array of them).";
            return false;
        }
    }

    private static bool TryReadCall(JsonElement element, string raw, List<FunctionCallContent> calls, bool requireArguments, out string problem)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            problem = "A tool call must be a JSON object.";
            return false;
        }
        var id = element.TryGetProperty("id", out var idElement) && idElement.ValueKind == JsonValueKind.String && idElement.GetString() is { Length: > 0 } given
            ? given : NewId();
        if (element.TryGetProperty("function", out var function) && function.ValueKind == JsonValueKind.Object)
            element = function; // OpenAI's {"type": "function", "function": {...}} shape

        if (!element.TryGetProperty("name", out var nameElement) || nameElement.ValueKind != JsonValueKind.String || nameElement.GetString() is not { Length: > 0 } name)
        {
            problem = "A tool call has no \"name\".";
            return false;
        }

        var arguments = new Dictionary<string, object?>(StringComparer.Ordinal);
        var hasArguments = element.TryGetProperty("arguments", out var args) || element.TryGetProperty("parameters", out args);
        if (!hasArguments && requireArguments)
        {
            // JSON in the middle of text counts as a call only with its arguments (as llama.cpp reads Llama 3).
            problem = $"JSON naming '{name}' after text has no \"parameters\" or \"arguments\", so it is not read as a call.";
            return false;
        }
        if (hasArguments && !TryReadArguments(name, args, arguments, out problem))
            return false;

        calls.Add(new FunctionCallContent(id, name, arguments) { RawRepresentation = raw });
        problem = string.Empty;
        return true;
    }

    // Gemma's tool_code: a JSON call, or Python-style calls name(key=value, ...), one per line.
    private static bool TryReadCode(string payload, List<FunctionCallContent> calls, out string problem)
    {
        var code = payload.Trim();
        if (code.Length > 0 && code[0] is '{' or '[')
            return TryReadCalls(code, calls, requireArguments: false, out problem);
        if (!PythonCalls.TryRead(code, out var read, out problem))
            return false;
        foreach (var (name, arguments, raw) in read)
            calls.Add(new FunctionCallContent(NewId(), name, arguments) { RawRepresentation = raw });
        return true;
    }

    // DeepSeek-R1: [<｜tool▁call▁begin｜>]function<｜tool▁sep｜>NAME\n```json\n{...}\n```[<｜tool▁call▁end｜>], repeated.
    private static bool TryReadDeepSeekCalls(string payload, List<FunctionCallContent> calls, out string problem)
    {
        const string callBegin = "<｜tool▁call▁begin｜>";
        const string callEnd = "<｜tool▁call▁end｜>";
        const string separator = "<｜tool▁sep｜>";
        var text = payload.AsSpan();
        var read = new List<FunctionCallContent>();
        while (true)
        {
            text = text.TrimStart();
            if (text.IsEmpty)
                break;
            var start = text;
            if (text.StartsWith(callBegin, StringComparison.Ordinal))
                text = text[callBegin.Length..].TrimStart();
            if (text.StartsWith("function", StringComparison.Ordinal))
                text = text["function".Length..];
            if (!text.StartsWith(separator, StringComparison.Ordinal))
            {
                problem = $"A DeepSeek tool call does not have the shape function{separator}NAME followed by its JSON arguments.";
                return false;
            }
            text = text[separator.Length..];
            var nameEnd = text.IndexOfAny('\n', '`', '{');
            var name = (nameEnd < 0 ? text : text[..nameEnd]).Trim().ToString();
            if (name.Length == 0 || nameEnd < 0)
            {
                problem = "A DeepSeek tool call has no name or no arguments.";
                return false;
            }
            text = text[nameEnd..].TrimStart();
            if (text.StartsWith("```json", StringComparison.Ordinal))
                text = text["```json".Length..].TrimStart();
            else if (text.StartsWith("```", StringComparison.Ordinal))
                text = text[3..].TrimStart();
            var scanner = default(JsonValueScanner);
            var json = text.ToString();
            var last = scanner.Feed(json, 0);
            if (scanner.NotJson || last < 0)
            {
                problem = $"The arguments of tool call '{name}' are not a complete JSON object.";
                return false;
            }
            var arguments = new Dictionary<string, object?>(StringComparer.Ordinal);
            try
            {
                using var document = JsonDocument.Parse(json.AsMemory(0, last + 1));
                if (!TryReadArguments(name, document.RootElement, arguments, out problem))
                    return false;
            }
            catch (JsonException ex)
            {
                problem = $"The arguments of tool call '{name}' are not valid JSON ({ex.Message}).";
                return false;
            }
            text = text[(last + 1)..].TrimStart();
            if (text.StartsWith("```", StringComparison.Ordinal))
                text = text[3..].TrimStart();
            if (text.StartsWith(callEnd, StringComparison.Ordinal))
                text = text[callEnd.Length..];
            read.Add(new FunctionCallContent(NewId(), name, arguments) { RawRepresentation = start[..(start.Length - text.Length)].ToString() });
        }
        if (read.Count == 0)
        {
            problem = "A DeepSeek tool-call section holds no call.";
            return false;
        }
        calls.AddRange(read);
        problem = string.Empty;
        return true;
    }

    private static bool TryReadNamedCall(string name, string payload, List<FunctionCallContent> calls, out string problem)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(payload);
        }
        catch (JsonException ex)
        {
            problem = $"The arguments of tool call '{name}' are not valid JSON ({ex.Message}).";
            return false;
        }
        using (document)
        {
            var arguments = new Dictionary<string, object?>(StringComparer.Ordinal);
            if (!TryReadArguments(name, document.RootElement, arguments, out problem))
                return false;
            calls.Add(new FunctionCallContent(NewId(), name, arguments) { RawRepresentation = payload });
            return true;
        }
    }

    private static bool TryReadArguments(string name, JsonElement args, Dictionary<string, object?> arguments, out string problem)
    {
        if (args.ValueKind == JsonValueKind.String)
        {
            // Some models write the arguments as a JSON string holding the object.
            try
            {
                using var inner = JsonDocument.Parse(args.GetString()!);
                args = inner.RootElement.Clone();
            }
            catch (JsonException)
            {
                problem = $"The arguments of tool call '{name}' are not a JSON object.";
                return false;
            }
        }

        problem = string.Empty;
        if (args.ValueKind == JsonValueKind.Null)
            return true; // "arguments": null means none
        if (args.ValueKind != JsonValueKind.Object)
        {
            problem = $"The arguments of tool call '{name}' are not a JSON object.";
            return false;
        }
        foreach (var property in args.EnumerateObject())
            arguments[property.Name] = property.Value.Clone();
        return true;
    }

    // Nine letters and digits: the id shape Mistral's templates require, and fine for every other family.
    private static string NewId() => string.Create(9, 0, static (span, _) =>
    {
        for (var i = 0; i < span.Length; i++)
            span[i] = IdAlphabet[Random.Shared.Next(IdAlphabet.Length)];
    });

    /// <summary>Finds where a JSON object or array ends, fed incrementally (strings and escapes respected).</summary>
    private struct JsonValueScanner
    {
        private int _depth;
        private bool _started;
        private bool _inString;
        private bool _escape;

        public bool NotJson { get; private set; }

        /// <summary>Scans <paramref name="text"/> from <paramref name="from"/>; the index of the closing bracket, or -1.</summary>
        public int Feed(string text, int from)
        {
            for (var i = from; i < text.Length; i++)
            {
                var c = text[i];
                if (!_started)
                {
                    if (char.IsWhiteSpace(c))
                        continue;
                    if (c is not ('{' or '['))
                    {
                        NotJson = true;
                        return -1;
                    }
                    _started = true;
                    _depth = 1;
                    continue;
                }
                if (_inString)
                {
                    if (_escape)
                        _escape = false;
                    else if (c == '\\')
                        _escape = true;
                    else if (c == '"')
                        _inString = false;
                    continue;
                }
                switch (c)
                {
                    case '"':
                        _inString = true;
                        break;
                    case '{' or '[':
                        _depth++;
                        break;
                    case '}' or ']':
                        if (--_depth == 0)
                            return i;
                        break;
                }
            }
            return -1;
        }
    }
}
