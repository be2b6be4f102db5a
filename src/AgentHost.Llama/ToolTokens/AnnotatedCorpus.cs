using System.Text;
using System.Text.RegularExpressions;

namespace AgentHost.Llama.ToolTokens;

/// <summary>One tool call annotated in a corpus line.</summary>
/// <param name="Tool">Tool name.</param>
/// <param name="Arguments">The argument text between the parentheses, e.g. <c>3, 4</c>.</param>
/// <param name="Result">The result text the plain text shows.</param>
/// <param name="Start">Character index of the result in <see cref="AnnotatedExample.Text"/>.</param>
public sealed record AnnotatedCall(string Tool, string Arguments, string Result, int Start);

/// <summary>A corpus line: the plain text (each call replaced by its result) and the calls.</summary>
/// <param name="Line">1-based line number in the corpus file.</param>
/// <param name="Text">The text the model reads.</param>
/// <param name="Calls">The calls, in order.</param>
public sealed record AnnotatedExample(int Line, string Text, IReadOnlyList<AnnotatedCall> Calls);

/// <summary>
/// Annotated text for tool tokens: one example per line, a call written where it belongs as
/// <c>&lt;name&gt;(args)=result</c>, e.g. <c>so now she had &lt;add&gt;(3, 4)=7 apples.</c> The model reads the
/// plain text (<c>so now she had 7 apples.</c>); the tool token is the label of the position that predicts
/// the result. Empty lines and lines starting with <c>#</c> are skipped.
/// </summary>
public static partial class AnnotatedCorpus
{
    [GeneratedRegex(@"<([A-Za-z_][A-Za-z0-9_]*)>\(([^()]*)\)=(-?[0-9]+(?:\.[0-9]+)?|[^\s,;:!?.]+)")]
    private static partial Regex CallPattern();

    /// <summary>Parses one line (null for a blank or comment line).</summary>
    public static AnnotatedExample? ParseLine(string line, int lineNumber)
    {
        ArgumentNullException.ThrowIfNull(line);
        var trimmed = line.Trim();
        if (trimmed.Length == 0 || trimmed[0] == '#')
            return null;
        var text = new StringBuilder();
        var calls = new List<AnnotatedCall>();
        var last = 0;
        foreach (Match match in CallPattern().Matches(trimmed))
        {
            text.Append(trimmed, last, match.Index - last);
            var result = match.Groups[3].Value;
            calls.Add(new AnnotatedCall(match.Groups[1].Value, match.Groups[2].Value.Trim(), result, text.Length));
            text.Append(result);
            last = match.Index + match.Length;
        }
        text.Append(trimmed, last, trimmed.Length - last);
        var plain = text.ToString();
        if (plain.Contains('<', StringComparison.Ordinal) && plain.Contains(">(", StringComparison.Ordinal))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Corpus line {lineNumber} has a malformed call; write calls as <name>(arguments)=result.");
        return new AnnotatedExample(lineNumber, plain, calls);
    }

    /// <summary>Parses every line of <paramref name="text"/>.</summary>
    public static IReadOnlyList<AnnotatedExample> Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var examples = new List<AnnotatedExample>();
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            if (ParseLine(lines[i], i + 1) is { } example)
                examples.Add(example);
        }
        return examples;
    }

    /// <summary>Reads and parses a corpus file; a missing or empty file is a clear error.</summary>
    public static IReadOnlyList<AnnotatedExample> Load(string path)
    {
        if (!File.Exists(path))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Corpus file '{path}' does not exist.");
        string text;
        try
        {
            text = BoundedFile.ReadAllText(path, "corpus", BoundedFile.MaxCorpusBytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Cannot read corpus file '{path}': {e.Message}", e);
        }
        var examples = Parse(text);
        if (examples.Count == 0)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Corpus file '{path}' holds no examples.");
        return examples;
    }
}
