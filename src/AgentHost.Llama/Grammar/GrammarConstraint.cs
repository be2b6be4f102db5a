namespace AgentHost.Llama.Grammar;

/// <summary>
/// A GBNF grammar (llama.cpp's format) that the generated text must follow. With
/// <see cref="TriggerWords"/> or <see cref="TriggerTokens"/> the grammar is lazy: text is free until one
/// of the words (or tokens) has been generated, and from the token after it the rest of the output follows
/// the grammar (so the grammar describes what comes after the trigger, e.g. the JSON of a tool call after
/// <c>&lt;tool_call&gt;</c>).
/// Once the grammar is complete only an end-of-generation token may follow, so generation ends.
/// </summary>
public sealed record GrammarConstraint
{
    /// <summary>The grammar in GBNF.</summary>
    public required string Gbnf { get; init; }

    /// <summary>The rule the output must match.</summary>
    public string Root { get; init; } = "root";

    /// <summary>Words that switch the grammar on (empty: it constrains from the first token).</summary>
    public IReadOnlyList<string> TriggerWords { get; init; } = [];

    /// <summary>
    /// Token ids that switch the grammar on, for call markers that are control tokens and so render to
    /// no text (e.g. <c>&lt;|python_tag|&gt;</c>), which trigger words cannot see.
    /// </summary>
    public IReadOnlyList<int> TriggerTokens { get; init; } = [];

    /// <summary>Whether the grammar waits for a trigger word or token.</summary>
    public bool IsLazy => TriggerWords.Count > 0 || TriggerTokens.Count > 0;

    /// <summary>
    /// Throws an <see cref="AgentHostException"/> naming the first invalid value: a syntax error (as llama.cpp
    /// words it), an undefined rule, a missing root rule, or a grammar beyond <see cref="GrammarLimits"/>.
    /// </summary>
    public void Validate(CancellationToken cancellationToken = default)
    {
        Guard.Require(!string.IsNullOrWhiteSpace(Gbnf), "The grammar is empty.");
        Guard.Require(!string.IsNullOrEmpty(Root) && GbnfBuilder.IsRuleName(Root), $"The grammar root '{Root}' is not a rule name (letters, digits and '-').");
        foreach (var word in TriggerWords)
            Guard.Require(!string.IsNullOrEmpty(word), "A grammar trigger word is empty.");
        foreach (var token in TriggerTokens)
            Guard.Require(token >= 0, $"A grammar trigger token id is negative ({token}).");
        GbnfCheck.Run(Gbnf, Root, cancellationToken);
    }

    /// <summary>Throws the error of a strategy that cannot constrain its output with a grammar.</summary>
    internal static void Refuse(GrammarConstraint? grammar, string strategy)
    {
        if (grammar is not null)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                $"The {strategy} strategy cannot follow a grammar; use greedy or sample for grammar-constrained output.");
        }
    }

}
