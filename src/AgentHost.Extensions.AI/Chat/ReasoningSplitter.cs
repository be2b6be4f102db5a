using System.Text;
using Microsoft.Extensions.AI;

namespace AgentHost.Extensions.AI.Chat;

/// <summary>The tags a model writes around its reasoning, e.g. <c>&lt;think&gt;</c> and <c>&lt;/think&gt;</c>.</summary>
/// <param name="Start">The opening tag.</param>
/// <param name="End">The closing tag.</param>
public sealed record ReasoningTags(string Start, string End)
{
    /// <summary><c>&lt;think&gt;</c> ... <c>&lt;/think&gt;</c>: Qwen3, QwQ, DeepSeek-R1 and its distills.</summary>
    public static ReasoningTags Think { get; } = new("<think>", "</think>");

    /// <summary>
    /// Whether <paramref name="prompt"/> (the rendered prompt, generation header included) ends inside an opened
    /// reasoning block, as templates that open <c>&lt;think&gt;</c> for the model do (DeepSeek-R1, Qwen3 thinking
    /// variants): then the reply starts inside the block and holds only the closing tag.
    /// </summary>
    public bool IsOpenAtEndOf(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return prompt.AsSpan().TrimEnd().EndsWith(Start, StringComparison.Ordinal);
    }

    /// <summary>A new splitter for one reply.</summary>
    /// <param name="startsInside">Whether the reply starts inside the block (see <see cref="IsOpenAtEndOf"/>).</param>
    public ReasoningSplitter CreateSplitter(bool startsInside = false) => new(this, startsInside);
}

/// <summary>
/// Splits a reasoning block at the start of one assistant reply (<c>&lt;think&gt;...&lt;/think&gt;</c>) off the answer
/// as it streams: <see cref="Push"/> and <see cref="Complete"/> return <see cref="TextReasoningContent"/> for the
/// reasoning and <see cref="TextContent"/> for the answer, in order, never mixed.
/// </summary>
/// <remarks>
/// Only a block at the start of the reply counts (after whitespace), as llama.cpp reads it; a reply that starts inside
/// the block (the prompt opened it) needs only the closing tag. A block that never closes is reasoning to the end. The
/// tags and the whitespace around the reasoning and before the answer are dropped; everything else comes back
/// unchanged. Streaming in any pieces gives the same reasoning and text as the whole reply. Never throws on model output.
/// </remarks>
public sealed class ReasoningSplitter
{
    private readonly ReasoningTags _tags;
    private readonly StringBuilder _buffer = new();
    private readonly List<AIContent> _output = [];
    private State _state;
    private readonly bool _inside; // the prompt opened the block
    private bool _reasoningStarted;
    private bool _completed;

    /// <summary>Creates a splitter.</summary>
    /// <param name="tags">The tags around the reasoning.</param>
    /// <param name="startsInside">Whether the reply starts inside the block (the prompt ended with the opening tag).</param>
    public ReasoningSplitter(ReasoningTags tags, bool startsInside = false)
    {
        ArgumentNullException.ThrowIfNull(tags);
        ArgumentException.ThrowIfNullOrEmpty(tags.Start);
        ArgumentException.ThrowIfNullOrEmpty(tags.End);
        _tags = tags;
        _inside = startsInside;
    }

    private enum State
    {
        Before,    // nothing but whitespace yet
        Reasoning, // inside the block
        AfterEnd,  // after the closing tag: whitespace before the answer is dropped
        Answer,    // the rest passes through
    }

    /// <summary>Feeds the next piece of the reply.</summary>
    /// <returns>Reasoning and text that are now certain, in order (often empty).</returns>
    public IReadOnlyList<AIContent> Push(string delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        if (_completed)
            throw new InvalidOperationException("The reply was already completed.");
        if (_state == State.Answer)
            return delta.Length == 0 ? [] : [new TextContent(delta)];
        _buffer.Append(delta);
        return Process(final: false);
    }

    /// <summary>Ends the reply: held-back text is released.</summary>
    public IReadOnlyList<AIContent> Complete()
    {
        if (_completed)
            return [];
        _completed = true;
        return Process(final: true);
    }

    /// <summary>Splits a whole reply at once (adjacent pieces of one kind merged).</summary>
    public IReadOnlyList<AIContent> ParseAll(string reply)
    {
        var contents = new List<AIContent>(Push(reply));
        contents.AddRange(Complete());
        return ReplyReader.Merge(contents);
    }

    private IReadOnlyList<AIContent> Process(bool final)
    {
        while (Step(final))
        {
        }
        if (_output.Count == 0)
            return [];
        var result = _output.ToArray();
        _output.Clear();
        return result;
    }

    // True when the state changed (more to do), false when waiting for input.
    private bool Step(bool final)
    {
        var text = _buffer.ToString();
        switch (_state)
        {
            case State.Before:
            {
                var ws = 0;
                while (ws < text.Length && char.IsWhiteSpace(text[ws]))
                    ws++;
                var rest = text.AsSpan(ws);
                if (rest.StartsWith(_tags.Start, StringComparison.Ordinal))
                {
                    _buffer.Remove(0, ws + _tags.Start.Length);
                    _state = State.Reasoning;
                    return true;
                }
                if (!final && _tags.Start.AsSpan().StartsWith(rest, StringComparison.Ordinal))
                    return false; // only whitespace, or the start of the tag, so far
                if (_inside)
                {
                    _state = State.Reasoning;
                    return true;
                }
                _state = State.Answer;
                Emit(text, reasoning: false);
                _buffer.Clear();
                return false;
            }
            case State.Reasoning:
            {
                if (!_reasoningStarted)
                {
                    var ws = 0;
                    while (ws < text.Length && char.IsWhiteSpace(text[ws]))
                        ws++;
                    _buffer.Remove(0, ws);
                    text = text[ws..];
                    _reasoningStarted = text.Length > 0;
                }
                var end = text.IndexOf(_tags.End, StringComparison.Ordinal);
                if (end >= 0)
                {
                    Emit(text[..end].TrimEnd(), reasoning: true);
                    _buffer.Remove(0, end + _tags.End.Length);
                    _state = State.AfterEnd;
                    return true;
                }
                if (final)
                {
                    Emit(text.TrimEnd(), reasoning: true);
                    _buffer.Clear();
                    return false;
                }
                // Hold back what may be the start of the closing tag, and trailing whitespace (dropped if the tag follows).
                var hold = PartialSuffix(text, _tags.End);
                var keep = text.Length - hold;
                while (keep > 0 && char.IsWhiteSpace(text[keep - 1]))
                    keep--;
                Emit(text[..keep], reasoning: true);
                _buffer.Remove(0, keep);
                return false;
            }
            case State.AfterEnd:
            {
                var ws = 0;
                while (ws < text.Length && char.IsWhiteSpace(text[ws]))
                    ws++;
                _buffer.Remove(0, ws);
                if (ws == text.Length)
                    return false;
                _state = State.Answer;
                Emit(text[ws..], reasoning: false);
                _buffer.Clear();
                return false;
            }
            default:
                Emit(text, reasoning: false);
                _buffer.Clear();
                return false;
        }
    }

    private void Emit(string text, bool reasoning)
    {
        if (text.Length == 0)
            return;
        if (reasoning)
        {
            if (_output.Count > 0 && _output[^1] is TextReasoningContent previous)
                _output[^1] = new TextReasoningContent(previous.Text + text);
            else
                _output.Add(new TextReasoningContent(text));
        }
        else if (_output.Count > 0 && _output[^1] is TextContent previousText)
        {
            _output[^1] = new TextContent(previousText.Text + text);
        }
        else
        {
            _output.Add(new TextContent(text));
        }
    }

    // The longest end of the text that is the beginning of the tag.
    internal static int PartialSuffix(string text, string tag)
    {
        for (var length = Math.Min(tag.Length - 1, text.Length); length > 0; length--)
        {
            if (text.AsSpan(text.Length - length).SequenceEqual(tag.AsSpan(0, length)))
                return length;
        }
        return 0;
    }
}
