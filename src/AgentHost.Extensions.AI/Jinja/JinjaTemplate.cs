using System.Text.Json;
using AgentHost.Extensions.AI.Chat;
using AgentHost.Llama;

namespace AgentHost.Extensions.AI.Jinja;

/// <summary>
/// A parsed Jinja template (the subset chat templates use, rendered as @huggingface/jinja renders it, with
/// trim_blocks and lstrip_blocks on as transformers sets them). Parse once, render many times; rendering is
/// bounded by <see cref="JinjaLimits"/>.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly List<Node> _body;

    private JinjaTemplate(string name, JinjaLimits limits, List<Node> body)
    {
        Name = name;
        Limits = limits;
        _body = body;
    }

    /// <summary>The name errors use.</summary>
    public string Name { get; }

    /// <summary>The limits this template renders under.</summary>
    public JinjaLimits Limits { get; }

    /// <summary>Parses <paramref name="source"/>.</summary>
    /// <exception cref="AgentHostException">The source is too long, nests too deeply or has a syntax error
    /// (<see cref="ErrorKind.InvalidArgument"/>, with line and column).</exception>
    public static JinjaTemplate Parse(string source, string name = "template", JinjaLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        limits ??= JinjaLimits.Default;
        if (source.Length > limits.MaxTemplateLength)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Chat template '{name}' broke a limit: its source has {source.Length} characters, more than {limits.MaxTemplateLength} (JinjaLimits.MaxTemplateLength).");
        var text = JinjaLexer.Preprocess(source);
        Exception Error(int position, string message)
        {
            var line = 1;
            var column = 1;
            for (var i = 0; i < Math.Min(position, text.Length); i++)
            {
                if (text[i] == '\n')
                {
                    line++;
                    column = 1;
                }
                else
                {
                    column++;
                }
            }
            return new AgentHostException(ErrorKind.InvalidArgument, $"Chat template '{name}' has a syntax error at line {line}, column {column}: {message}.");
        }
        var tokens = JinjaLexer.Tokenize(text, Error);
        return new JinjaTemplate(name, limits, JinjaParser.Parse(tokens, Error, limits.MaxParseDepth));
    }

    /// <summary>Renders the template.</summary>
    /// <param name="content">Variables whose strings come from the conversation or tools (JSON elements, strings,
    /// numbers, booleans, lists and dictionaries of these): every string in them is content.</param>
    /// <param name="markup">Variables whose strings are markup (e.g. <c>bos_token</c>) and flags.</param>
    /// <param name="now">The clock <c>strftime_now</c> reads.</param>
    /// <returns>The output, split into markup and content segments (adjacent segments of a kind merged).</returns>
    /// <exception cref="JinjaRaiseException">The template called <c>raise_exception</c>.</exception>
    /// <exception cref="AgentHostException">The template failed at run time or broke a limit (<see cref="ErrorKind.InvalidArgument"/>).</exception>
    public IReadOnlyList<PromptSegment> Render(IReadOnlyDictionary<string, object?> content, IReadOnlyDictionary<string, object?>? markup, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(content);
        var interpreter = new JinjaInterpreter(Name, Limits, now);
        var scope = new JinjaScope(null);
        interpreter.SetupGlobals(scope);
        if (markup is not null)
        {
            foreach (var (key, value) in markup)
                scope.Set(key, Convert(value, isContent: false));
        }
        foreach (var (key, value) in content)
            scope.Set(key, Convert(value, isContent: true));
        var output = new JinjaStringBuilder();
        try
        {
            interpreter.RenderBlock(_body, new JinjaScope(scope), output);
        }
        catch (JinjaRuntimeError e)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Chat template '{Name}' failed: {e.Message}.", e);
        }
        catch (InvalidOperationException e)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Chat template '{Name}' failed: {e.Message}.", e);
        }
        catch (BreakSignal)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Chat template '{Name}' failed: break outside a loop.");
        }
        catch (ContinueSignal)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Chat template '{Name}' failed: continue outside a loop.");
        }
        var segments = new List<PromptSegment>();
        foreach (var (text, isContent) in output.ToRuns())
            segments.Add(new PromptSegment(text, !isContent));
        return segments;
    }

    /// <summary>Renders and returns only the text.</summary>
    public string RenderText(IReadOnlyDictionary<string, object?> content, IReadOnlyDictionary<string, object?>? markup, DateTimeOffset now) =>
        string.Concat(Render(content, markup, now).Select(s => s.Text));

    private static object? Convert(object? value, bool isContent) => value switch
    {
        null => null,
        string s => isContent ? JinjaString.Content(s) : JinjaString.Markup(s),
        bool b => b,
        int i => (long)i,
        long l => l,
        double d => d,
        float f => (double)f,
        JsonElement e => JinjaValues.FromJson(e, isContent),
        IEnumerable<KeyValuePair<string, object?>> dict => ConvertDict(dict, isContent),
        System.Collections.IEnumerable list => new JinjaList(list.Cast<object?>().Select(v => Convert(v, isContent)).ToList()),
        _ => JinjaValues.FromJson(JsonSerializer.SerializeToElement(value, value.GetType(), Microsoft.Extensions.AI.AIJsonUtilities.DefaultOptions), isContent),
    };

    private static JinjaDict ConvertDict(IEnumerable<KeyValuePair<string, object?>> items, bool isContent)
    {
        var dict = new JinjaDict();
        foreach (var (k, v) in items)
            dict.Items[k] = Convert(v, isContent);
        return dict;
    }
}
