using AgentHost.Llama.Decoding.Strategies;

namespace AgentHost.Llama.Decoding;

/// <summary>The strategies a request can name.</summary>
public static class DecodingStrategies
{
    private static readonly Dictionary<string, Func<IDecodingStrategy>> _factories = new(StringComparer.OrdinalIgnoreCase)
    {
        ["greedy"] = () => new GreedyStrategy(),
        ["sample"] = () => new SamplingStrategy(),
    };

    /// <summary>Known strategy names.</summary>
    public static IReadOnlyCollection<string> Names => _factories.Keys;

    /// <summary>Creates the strategy called <paramref name="name"/>, or throws a clear error listing the known ones.</summary>
    public static IDecodingStrategy Create(string name)
    {
        if (name is not null && _factories.TryGetValue(name, out var factory))
            return factory();
        throw new AgentHostException(ErrorKind.InvalidArgument, $"Unknown decoding strategy '{name}'. Known strategies: {string.Join(", ", Names)}.");
    }
}
