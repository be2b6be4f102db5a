using AgentHost.Llama.Decoding.Strategies;

namespace AgentHost.Llama.Decoding;

/// <summary>A strategy a request can name: its options and how to build it.</summary>
/// <param name="Name">Name on the command line and in results.</param>
/// <param name="Summary">One line for help texts.</param>
/// <param name="Options">The strategy-specific options it reads.</param>
/// <param name="Create">Builds the strategy from its options (plain sampling options live on the request).</param>
public sealed record StrategyDescriptor(string Name, string Summary, IReadOnlyList<StrategyOption> Options, Func<StrategyOptions, IDecodingStrategy> Create);

/// <summary>The strategies a request can name. Add a strategy here and the CLI, bench and chat layers offer it.</summary>
public static class DecodingStrategies
{
    private static readonly StrategyDescriptor[] _all =
    [
        new("greedy", "Always the most likely token.", [], _ => new GreedyStrategy()),
        new("sample", "Temperature, top-k, top-p, min-p and penalties with a seed.", [], _ => new SamplingStrategy()),
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
