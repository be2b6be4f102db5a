namespace AgentHost.Llama.Analysis;

/// <summary>The result of contrastive scoring.</summary>
public sealed record ContrastiveReport
{
    /// <summary>Kind tag of the JSON document.</summary>
    public string Kind => "contrast";

    /// <summary>The positive ("good") model.</summary>
    public required string PositiveModel { get; init; }

    /// <summary>The negative ("bad") model.</summary>
    public required string NegativeModel { get; init; }

    /// <summary>beta.</summary>
    public required double Beta { get; init; }

    /// <summary>The prompt.</summary>
    public required string Prompt { get; init; }

    /// <summary>The prompt's tokens.</summary>
    public required int[] PromptTokens { get; init; }

    /// <summary>The response's text.</summary>
    public required string ResponseText { get; init; }

    /// <summary>Per response token, in order.</summary>
    public required IReadOnlyList<ContrastiveToken> Tokens { get; init; }

    /// <summary>Index of the lowest-scored token (the likeliest critical token).</summary>
    public required int LowestIndex { get; init; }

    /// <summary>Mean score.</summary>
    public required double MeanScore { get; init; }

    /// <summary>Cost.</summary>
    public required AnalysisStats Stats { get; init; }
}
