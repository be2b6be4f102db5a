using System.Globalization;

namespace AgentHost.Llama.Grammar;

/// <summary>
/// Bounds on the work one grammar or JSON schema can cause. llama.cpp parses GBNF recursively (deep
/// nesting overflows its stack), expands every <c>x{m,n}</c> into copies and keeps its rules in memory,
/// all in native code that cannot be cancelled: a small request must not be able to take gigabytes or
/// hang. Every grammar (user-supplied or generated) is checked against these before llama.cpp sees it,
/// and a grammar or schema beyond one is refused with an <see cref="AgentHostException"/> naming it.
/// </summary>
public static class GrammarLimits
{
    /// <summary>Most characters of GBNF text.</summary>
    public const int MaxGrammarLength = 1_000_000;

    /// <summary>Most nesting of parentheses in GBNF.</summary>
    public const int MaxNesting = 64;

    /// <summary>Most rules, counting those llama.cpp makes for groups and repetitions.</summary>
    public const int MaxRules = 50_000;

    /// <summary>Most grammar elements once llama.cpp has expanded the repetitions (each <c>x{m,n}</c> copies x up to n times).</summary>
    public const int MaxElements = 2_000_000;

    /// <summary>
    /// Most ways one rule can start, multiplied through alternatives that start with other rules: llama.cpp
    /// keeps a parse stack for each and its work grows faster than their number.
    /// </summary>
    public const int MaxParseStacks = 10_000;

    /// <summary>Most nesting of sub-schemas in a JSON schema (properties, items, anyOf ... and $ref hops).</summary>
    public const int MaxSchemaDepth = 64;

    /// <summary>Most sub-schemas and enum values a JSON schema (or all the functions of a tool-call grammar) may hold.</summary>
    public const int MaxSchemaNodes = 10_000;

    /// <summary>The error for <paramref name="what"/> beyond the limit named <paramref name="limit"/>.</summary>
    internal static AgentHostException Exceeded(string what, string limit, long max)
        => new(ErrorKind.InvalidArgument, string.Create(CultureInfo.InvariantCulture, $"{what} exceeds the limit GrammarLimits.{limit} ({max:N0}); simplify it."));
}
