using AgentHost.Llama.Decoding.Strategies;

namespace AgentHost.Llama.Decoding;

/// <summary>A strategy a request can name: its options and how to build it.</summary>
/// <param name="Name">Name on the command line and in results.</param>
/// <param name="Summary">One line for help texts.</param>
/// <param name="Options">The strategy-specific options it reads.</param>
/// <param name="Create">Builds the strategy from its options (plain sampling options live on the request).</param>
/// <param name="Sampling">Whether it samples: never, only with sampling settings, or always.</param>
public sealed record StrategyDescriptor(string Name, string Summary, SamplingUse Sampling, IReadOnlyList<StrategyOption> Options, Func<StrategyOptions, IDecodingStrategy> Create);

/// <summary>How a strategy uses <see cref="GenerationRequest.Sampling"/>.</summary>
public enum SamplingUse
{
    /// <summary>Ignores it (greedy).</summary>
    Never,
    /// <summary>Greedy without sampling settings, sampling with them.</summary>
    Optional,
    /// <summary>Always samples (defaults when none are given).</summary>
    Always,
}

/// <summary>The strategies a request can name. Add a strategy here and the CLI, bench and chat layers offer it.</summary>
public static class DecodingStrategies
{
    private static readonly StrategyDescriptor[] _all =
    [
        new("greedy", "Always the most likely token.", SamplingUse.Never, [], _ => new GreedyStrategy()),
        new("sample", "Temperature, top-k, top-p, min-p and penalties with a seed.", SamplingUse.Always, [], _ => new SamplingStrategy()),
        new("recycling", "Token Recycling: lossless speculative decoding from recycled candidate tokens (greedy, or sampling with sampling options).", SamplingUse.Optional,
        [
            new(RecyclingStrategy.TreeOption, "tree", "Draft tree template: auto (default), chain-N, tree-N, 2.2.2, 2.2.2:N or JSON paths."),
            new(RecyclingStrategy.MatrixOption, "recycling-matrix", "File to warm-start the adjacency matrix from and save it to.", NamesFile: true),
        ], o => new RecyclingStrategy(o)),
        new("lookup", "Prompt lookup decoding: lossless speculative decoding from n-gram matches in prompt + output.", SamplingUse.Optional,
        [
            new(LookupStrategy.NgramOption, "lookup-ngram", "Longest n-gram to match (default 3)."),
            new(LookupStrategy.DraftOption, "lookup-draft", "Most tokens drafted per step (default 3)."),
        ], o => new LookupStrategy(o)),
        CautiousStrategy.Descriptor,
    ];

    /// <summary>Every strategy.</summary>
    public static IReadOnlyList<StrategyDescriptor> All => _all;

    /// <summary>Known strategy names.</summary>
    public static IReadOnlyList<string> Names { get; } = _all.Select(d => d.Name).ToArray();

    /// <summary>The descriptor of <paramref name="name"/>, or a clear error listing the known ones.</summary>
    public static StrategyDescriptor Find(string name)
        => _all.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new AgentHostException(ErrorKind.InvalidArgument, $"Unknown decoding strategy '{name}'. Known strategies: {string.Join(", ", Names)}.");

    /// <summary>Creates the strategy <paramref name="name"/>; options it does not read are refused.</summary>
    public static IDecodingStrategy Create(string name, StrategyOptions? options = null)
    {
        var descriptor = Find(name);
        options ??= StrategyOptions.Empty;
        var strategy = descriptor.Create(options);
        options.EnsureAllRead(descriptor.Name);
        return strategy;
    }
}
