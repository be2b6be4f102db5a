using AgentHost.Llama.Decoding;

namespace AgentHost.Cli;

/// <summary>The command-line options of every strategy (declared by <see cref="DecodingStrategies"/>), and building a strategy from them.</summary>
internal static class StrategyArguments
{
    // The short flags the CLI had before flags were derived from option keys (the rest are the keys with dashes).
    private static readonly Dictionary<string, string> _shortFlags = new(StringComparer.Ordinal)
    {
        ["recycling_tree"] = "tree",
        ["cautious_max_trials"] = "max-trials",
        ["cautious_entropy_low"] = "entropy-low",
        ["cautious_entropy_high"] = "entropy-high",
        ["cautious_formula"] = "trial-formula",
        ["cautious_stop_rule"] = "stop-rule",
        ["toolkens_head"] = "head",
        ["toolkens_bias"] = "tool-bias",
    };

    /// <summary>The flag (without dashes) of a strategy option.</summary>
    public static string Flag(StrategyOption option) => _shortFlags.TryGetValue(option.Key, out var flag) ? flag : option.Key.Replace('_', '-');

    /// <summary>One CLI option per distinct strategy option name.</summary>
    public static IReadOnlyList<OptionSpec> Specs { get; } = DecodingStrategies.All
        .SelectMany(d => d.Options.Select(o => (d.Name, Option: o)))
        .GroupBy(x => Flag(x.Option))
        .Select(g => new OptionSpec(g.Key, $"[{string.Join(", ", g.Select(x => x.Name))}] {g.First().Option.Help}", ValueName: "VALUE"))
        .ToArray();

    /// <summary>The strategy options given on the command line for <paramref name="descriptor"/>, by key.</summary>
    public static StrategyOptions Values(CommandLine line, StrategyDescriptor descriptor)
        => new(descriptor.Options.Where(o => line.Has(Flag(o))).Select(o => KeyValuePair.Create(o.Key, line.GetString(Flag(o))!)));

    /// <summary>
    /// Builds each named strategy through the factory with the options it declares; an option none of them declares,
    /// or a required one missing, is a usage error naming the flag.
    /// </summary>
    public static IReadOnlyList<IDecodingStrategy> Create(CommandLine line, IReadOnlyList<string> names, StrategyContext? context = null)
    {
        var descriptors = names.Select(DecodingStrategies.Find).ToList();
        foreach (var spec in Specs)
        {
            if (line.Has(spec.Name) && !descriptors.Any(d => d.Options.Any(o => Flag(o) == spec.Name)))
                throw CommandLine.Usage($"--{spec.Name} does not apply to strategy {string.Join(", ", names)}.");
        }
        foreach (var descriptor in descriptors)
        {
            foreach (var option in descriptor.Options.Where(o => o.Required && !line.Has(Flag(o))))
                throw CommandLine.Usage($"strategy {descriptor.Name} needs --{Flag(option)}: {option.Help}");
        }
        return descriptors.Select(d => DecodingStrategies.Create(d, Values(line, d), context)).ToList();
    }
}
