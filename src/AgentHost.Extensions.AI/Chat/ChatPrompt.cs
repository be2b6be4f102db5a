using System.Text;
using AgentHost.Llama.Models;

namespace AgentHost.Extensions.AI.Chat;

/// <summary>
/// A conversation rendered by a <see cref="ChatFormat"/>: the prompt text, split into markup and content so that
/// only the markup can produce control tokens.
/// </summary>
public sealed class ChatPrompt
{
    internal ChatPrompt(IReadOnlyList<PromptSegment> segments)
    {
        Segments = segments;
        var text = new StringBuilder();
        foreach (var segment in segments)
            text.Append(segment.Text);
        Text = text.ToString();
    }

    /// <summary>The pieces in order; adjacent pieces of the same kind are merged.</summary>
    public IReadOnlyList<PromptSegment> Segments { get; }

    /// <summary>The whole prompt as text (what <c>llama_chat_apply_template</c> would produce; no BOS).</summary>
    public string Text { get; }

    /// <summary>
    /// Tokenizes the prompt for <paramref name="model"/>: control-token texts inside the markup become their
    /// tokens; everything else (content and the markup's plain text, in runs between control tokens) is
    /// tokenized with special-token parsing off. A BOS token is added first when the model asks for one.
    /// </summary>
    /// <remarks>
    /// Without injected control texts in the content, the result equals tokenizing <see cref="Text"/> with
    /// special-token parsing on, because llama.cpp also tokenizes the text between control tokens run by run.
    /// </remarks>
    public int[] Tokenize(LlamaModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var specials = model.GetState(SpecialTokens.ForModel);
        var tokens = new List<int>();
        // A template that writes the BOS text itself gets one BOS, not two (llama.cpp strips the rendered one likewise).
        if (model.Vocabulary.AddBos && model.Vocabulary.Bos >= 0 && !StartsWithToken(specials, model.Vocabulary.Bos))
            tokens.Add(model.Vocabulary.Bos);

        var run = new StringBuilder();
        void FlushRun()
        {
            if (run.Length == 0)
                return;
            tokens.AddRange(model.Tokenize(run.ToString(), addBos: false, parseSpecial: false));
            run.Clear();
        }

        foreach (var segment in Segments)
        {
            if (!segment.IsMarkup)
            {
                run.Append(segment.Text);
                continue;
            }

            var text = segment.Text;
            for (var i = 0; i < text.Length;)
            {
                if (specials.TryMatch(text, i, out var token, out var length, controlOnly: true))
                {
                    FlushRun();
                    tokens.Add(token);
                    i += length;
                }
                else
                {
                    run.Append(text[i]);
                    i++;
                }
            }
        }
        FlushRun();
        return [.. tokens];
    }

    /// <summary>
    /// The prompt as <paramref name="model"/> sees it, in pieces: the content (always plain text), the markup's plain
    /// text and each control token the markup produces, in order, matching <see cref="Tokenize"/>. For showing a prompt
    /// with its control tokens marked (<c>agenthost chat --print-prompt</c>).
    /// </summary>
    /// <param name="model">The model whose control tokens are matched in the markup.</param>
    /// <returns>The pieces; concatenated, their texts are <see cref="Text"/>. The BOS token <see cref="Tokenize"/> adds is not a piece.</returns>
    public IReadOnlyList<PromptPiece> Annotate(LlamaModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var specials = model.GetState(SpecialTokens.ForModel);
        var pieces = new List<PromptPiece>();
        var run = new StringBuilder();
        void Flush(PromptPieceKind kind)
        {
            if (run.Length > 0)
                pieces.Add(new PromptPiece(run.ToString(), kind));
            run.Clear();
        }

        foreach (var segment in Segments)
        {
            if (!segment.IsMarkup)
            {
                pieces.Add(new PromptPiece(segment.Text, PromptPieceKind.Content));
                continue;
            }
            var text = segment.Text;
            for (var i = 0; i < text.Length;)
            {
                if (specials.TryMatch(text, i, out var token, out var length, controlOnly: true))
                {
                    Flush(PromptPieceKind.Markup);
                    pieces.Add(new PromptPiece(text.Substring(i, length), PromptPieceKind.ControlToken, token));
                    i += length;
                }
                else
                {
                    run.Append(text[i]);
                    i++;
                }
            }
            Flush(PromptPieceKind.Markup);
        }
        return pieces;
    }

    private bool StartsWithToken(SpecialTokens specials, int token)
        => Segments is [{ IsMarkup: true, Text.Length: > 0 } first, ..] && specials.TryMatch(first.Text, 0, out var found, out _, controlOnly: true) && found == token;
}

/// <summary>What a <see cref="PromptPiece"/> of a rendered prompt is.</summary>
public enum PromptPieceKind
{
    /// <summary>Text from the conversation or the tools: always tokenized as plain text.</summary>
    Content,

    /// <summary>The format's own text that is not a control token (role names, newlines, tool tags that are plain text).</summary>
    Markup,

    /// <summary>A control token the format's markup produces (<c>&lt;|im_start|&gt;</c>, <c>&lt;|eot_id|&gt;</c>, ...).</summary>
    ControlToken,
}

/// <summary>A piece of a rendered prompt as a model sees it (<see cref="ChatPrompt.Annotate"/>).</summary>
/// <param name="Text">The piece's text.</param>
/// <param name="Kind">Content, markup text or a control token.</param>
/// <param name="Token">The token id of a <see cref="PromptPieceKind.ControlToken"/>; -1 otherwise.</param>
public readonly record struct PromptPiece(string Text, PromptPieceKind Kind, int Token = -1);
