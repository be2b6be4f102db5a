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

    private bool StartsWithToken(SpecialTokens specials, int token)
        => Segments is [{ IsMarkup: true, Text.Length: > 0 } first, ..] && specials.TryMatch(first.Text, 0, out var found, out _, controlOnly: true) && found == token;
}
