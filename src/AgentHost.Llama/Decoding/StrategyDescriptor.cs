namespace AgentHost.Llama.Decoding;

/// <summary>A strategy a request can name: what it needs and how to build it. The factory is <see cref="DecodingStrategies"/>.</summary>
/// <param name="Name">Name on the command line, in requests and in results.</param>
/// <param name="Summary">One line for help texts.</param>
/// <param name="Sampling">Whether it samples: never, only with sampling settings, or always.</param>
/// <param name="Options">The strategy-specific options it reads.</param>
/// <param name="Create">Builds the strategy from its options and the host's context (plain sampling options live on the request).</param>
public sealed record StrategyDescriptor(string Name, string Summary, SamplingUse Sampling, IReadOnlyList<StrategyOption> Options, Func<StrategyOptions, StrategyContext, IDecodingStrategy> Create)
{
    /// <summary>Whether it follows <see cref="GenerationRequest.Grammar"/> (the others refuse a request with one).</summary>
    public bool TakesGrammar { get; init; }

    /// <summary>Whether continuous batching can decode it (one token per step, no grammar, no extra sequences).</summary>
    public bool Batchable { get; init; }

    /// <summary>Whether its sessions must return final hidden states.</summary>
    public bool NeedsHiddenStates { get; init; }

    /// <summary>Whether it calls the host's tools itself from inside decoding (nothing is rendered into the prompt for them).</summary>
    public bool CallsTools { get; init; }

    /// <summary>Whether it accepts sampling settings.</summary>
    public bool AcceptsSampling => Sampling != SamplingUse.Never;
}
