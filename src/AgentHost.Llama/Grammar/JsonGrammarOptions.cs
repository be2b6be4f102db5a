namespace AgentHost.Llama.Grammar;

/// <summary>
/// Bounds for grammars generated from JSON schemas. Small models may otherwise write spaces, digits or
/// string characters forever; the bounds make every value end. Schema bounds (maxLength, maxItems) apply too.
/// </summary>
public sealed record JsonGrammarOptions
{
    /// <summary>llama.cpp refuses a grammar repetition bound above this (<c>x{0,2001}</c>).</summary>
    public const int MaxRepetitions = 2000;

    /// <summary>Most whitespace characters between two tokens of JSON (0: compact JSON only).</summary>
    public int MaxWhitespace { get; init; } = 4;

    /// <summary>Most characters in a string without a schema maxLength; null: unbounded.</summary>
    public int? MaxStringLength { get; init; }

    /// <summary>Most items in an array without a schema maxItems; null: unbounded.</summary>
    public int? MaxArrayItems { get; init; }

    /// <summary>Most digits of a number's integer part, of its fraction and (at most 3) of its exponent.</summary>
    public int MaxDigits { get; init; } = 15;

    /// <summary>
    /// Leave out keywords the converter cannot express (pattern, format, minimum ...) instead of failing;
    /// they are listed in <see cref="GbnfBuilder.IgnoredKeywords"/>. Output may then break them.
    /// </summary>
    public bool IgnoreUnsupported { get; init; }

    /// <summary>Throws an <see cref="AgentHostException"/> naming the first invalid value.</summary>
    public void Validate()
    {
        Guard.Require(MaxWhitespace is >= 0 and <= MaxRepetitions, $"MaxWhitespace must be 0 to {MaxRepetitions}, not {MaxWhitespace}.");
        Guard.Require(MaxStringLength is null or (>= 0 and <= MaxRepetitions), $"MaxStringLength must be 0 to {MaxRepetitions}, not {MaxStringLength}.");
        Guard.Require(MaxArrayItems is null or (>= 0 and <= MaxRepetitions), $"MaxArrayItems must be 0 to {MaxRepetitions}, not {MaxArrayItems}.");
        Guard.Require(MaxDigits is >= 1 and <= 18, $"MaxDigits must be 1 to 18, not {MaxDigits}.");
    }

}
