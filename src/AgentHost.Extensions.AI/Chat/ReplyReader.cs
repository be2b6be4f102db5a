using Microsoft.Extensions.AI;

namespace AgentHost.Extensions.AI.Chat;

/// <summary>
/// Reads one assistant reply as the chat client returns it: the reasoning splitter first (when the format reasons in
/// tags), then the tool-call parser (when tools are on offer) on the answer text only.
/// </summary>
internal sealed class ReplyReader
{
    private readonly ReasoningSplitter? _reasoning;

    public ReplyReader(ReasoningSplitter? reasoning, ToolCallParser? toolCalls)
    {
        _reasoning = reasoning;
        ToolCalls = toolCalls;
    }

    /// <summary>The tool-call parser, or null when no tools are on offer.</summary>
    public ToolCallParser? ToolCalls { get; }

    /// <summary>For a format and a rendered prompt: null when neither reasoning nor tool calls need reading.</summary>
    public static ReplyReader? For(ToolCallFormat format, string prompt, IEnumerable<string>? toolNames)
    {
        var reasoning = format.ReasoningTags is { } tags ? tags.CreateSplitter(tags.IsOpenAtEndOf(prompt)) : null;
        var parser = toolNames is null ? null : format.CreateParser(toolNames);
        return reasoning is null && parser is null ? null : new ReplyReader(reasoning, parser);
    }

    public IReadOnlyList<AIContent> Push(string delta) => _reasoning is null ? ToolCalls!.Push(delta) : Parse(_reasoning.Push(delta));

    public IReadOnlyList<AIContent> Complete()
    {
        if (_reasoning is null)
            return ToolCalls!.Complete();
        var contents = new List<AIContent>(Parse(_reasoning.Complete()));
        if (ToolCalls is not null)
            contents.AddRange(ToolCalls.Complete());
        return contents;
    }

    public IReadOnlyList<AIContent> ParseAll(string reply)
    {
        var contents = new List<AIContent>(Push(reply));
        contents.AddRange(Complete());
        return Merge(contents);
    }

    private IReadOnlyList<AIContent> Parse(IReadOnlyList<AIContent> split)
    {
        if (ToolCalls is null || split.Count == 0)
            return split;
        var contents = new List<AIContent>();
        foreach (var content in split)
        {
            if (content is TextContent text)
                contents.AddRange(ToolCalls.Push(text.Text));
            else
                contents.Add(content);
        }
        return contents;
    }

    /// <summary>Joins adjacent text pieces, and adjacent reasoning pieces.</summary>
    internal static List<AIContent> Merge(IEnumerable<AIContent> contents)
    {
        var merged = new List<AIContent>();
        foreach (var content in contents)
        {
            if (content is TextContent text && merged.Count > 0 && merged[^1] is TextContent previous)
                merged[^1] = new TextContent(previous.Text + text.Text);
            else if (content is TextReasoningContent reasoning && merged.Count > 0 && merged[^1] is TextReasoningContent previousReasoning)
                merged[^1] = new TextReasoningContent(previousReasoning.Text + reasoning.Text);
            else
                merged.Add(content);
        }
        return merged;
    }
}
