using System.ComponentModel;
using System.Globalization;
using System.Text;
using Microsoft.SemanticKernel;

namespace AgentHost.Plugins;

/// <summary>
/// Text skills that language models are bad at doing in their heads (counting, reversing) plus a few
/// exact transformations. Lengths and reversal work on user-perceived characters (grapheme clusters),
/// so an emoji or an accented letter counts as one and survives reversal.
/// </summary>
public sealed class TextPlugin
{
    /// <summary>The number of user-perceived characters.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The character count.</returns>
    [KernelFunction]
    [Description("Counts the characters of a text (an emoji or accented letter counts as one).")]
    public int Length([Description("The text to measure.")] string text) => new StringInfo(text ?? string.Empty).LengthInTextElements;

    /// <summary>The number of words (runs of characters between white space).</summary>
    /// <param name="text">The text.</param>
    /// <returns>The word count.</returns>
    [KernelFunction]
    [Description("Counts the words of a text (separated by spaces, tabs or line breaks).")]
    public int WordCount([Description("The text whose words to count.")] string text)
    {
        var count = 0;
        var inWord = false;
        foreach (var c in text ?? string.Empty)
        {
            var space = char.IsWhiteSpace(c);
            if (!space && !inWord)
                count++;
            inWord = !space;
        }
        return count;
    }

    /// <summary>The number of lines; an empty text has none, a trailing line break does not start a new one.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The line count.</returns>
    [KernelFunction]
    [Description("Counts the lines of a text.")]
    public int LineCount([Description("The text whose lines to count.")] string text)
    {
        return string.IsNullOrEmpty(text) ? 0 : text.AsSpan().TrimEnd("\r\n").Count('\n') + 1;
    }

    /// <summary>The text in upper case (culture-invariant).</summary>
    /// <param name="text">The text.</param>
    /// <returns>The upper-case text.</returns>
    [KernelFunction]
    [Description("Converts a text to UPPER CASE.")]
    public string Uppercase([Description("The text to convert.")] string text) => (text ?? string.Empty).ToUpperInvariant();

    /// <summary>The text in lower case (culture-invariant).</summary>
    /// <param name="text">The text.</param>
    /// <returns>The lower-case text.</returns>
    [KernelFunction]
    [Description("Converts a text to lower case.")]
    public string Lowercase([Description("The text to convert.")] string text) => (text ?? string.Empty).ToLowerInvariant();

    /// <summary>The text backwards, character by character (grapheme clusters stay intact).</summary>
    /// <param name="text">The text.</param>
    /// <returns>The reversed text.</returns>
    [KernelFunction]
    [Description("Reverses a text character by character, e.g. 'stressed' becomes 'desserts'.")]
    public string Reverse([Description("The text to reverse.")] string text)
    {
        if (string.IsNullOrEmpty(text))
            return string.Empty;
        var builder = new StringBuilder(text.Length);
        var boundaries = StringInfo.ParseCombiningCharacters(text);
        for (var i = boundaries.Length - 1; i >= 0; i--)
        {
            var end = i + 1 < boundaries.Length ? boundaries[i + 1] : text.Length;
            builder.Append(text, boundaries[i], end - boundaries[i]);
        }
        return builder.ToString();
    }

    /// <summary>The text without leading and trailing white space.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The trimmed text.</returns>
    [KernelFunction]
    [Description("Removes white space from the start and end of a text.")]
    public string Trim([Description("The text to trim.")] string text) => (text ?? string.Empty).Trim();

    /// <summary>Replaces every exact (case-sensitive) occurrence of <paramref name="find"/>.</summary>
    /// <param name="text">The text.</param>
    /// <param name="find">The text to look for; not empty.</param>
    /// <param name="replacement">What to put in its place (may be empty).</param>
    /// <returns>The text after the replacement.</returns>
    /// <exception cref="ArgumentException"><paramref name="find"/> is empty.</exception>
    [KernelFunction]
    [Description("Replaces every exact, case-sensitive occurrence of one text by another.")]
    public string Replace(
        [Description("The text to change.")] string text,
        [Description("The text to look for (not empty).")] string find,
        [Description("The text to put in its place; empty deletes.")] string replacement)
    {
        if (string.IsNullOrEmpty(find))
            throw new ArgumentException("The text to find must not be empty.");
        return (text ?? string.Empty).Replace(find, replacement ?? string.Empty, StringComparison.Ordinal);
    }
}
