namespace AgentHost.Llama.Analysis;

/// <summary>Cost of an analysis.</summary>
public sealed record AnalysisStats
{
    /// <summary>Completions sampled (rollouts and alternatives).</summary>
    public required int Completions { get; init; }

    /// <summary>Tokens sampled over all completions.</summary>
    public required long TokensSampled { get; init; }

    /// <summary>llama_decode calls.</summary>
    public required int DecodeCalls { get; init; }

    /// <summary>Wall time in milliseconds.</summary>
    public required double ElapsedMs { get; init; }
}
