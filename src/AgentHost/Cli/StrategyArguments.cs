using AgentHost.Llama.Decoding;

namespace AgentHost.Cli;

/// <summary>The command-line options of every strategy (declared by <see cref="DecodingStrategies"/>), and building a strategy from them.</summary>
internal static class StrategyArguments
{
    /// <summary>One CLI option per distinct strategy option name.</summary>
    public static IReadOnlyList<OptionSpec> Specs { get; } = DecodingStrategies.All
        .SelectMany(d => d.Options.Select(o => (d.Name, Option: o)))
        .GroupBy(x => x.Option.CliName)
        .Select(g => new OptionSpec(g.Key, $"[{string.Join(", ", g.Select(x => x.Name))}] {g.First().Option.Help}"))
        .ToArray();

    /// <summary>Builds each named strategy with the options it declares; an option none of them declares is an error.</summary>
    public static IReadOnlyList<IDecodingStrategy> Create(CommandLine line, IReadOnlyList<string> names)
    {
        var descriptors = names.Select(DecodingStrategies.Find).ToList();
        foreach (var spec in Specs)
        {
            if (line.Has(spec.Name) && !descriptors.Any(d => d.Options.Any(o => o.CliName == spec.Name)))
                throw CommandLine.Usage($"--{spec.Name} does not apply to strategy {string.Join(", ", names)}.");
        }
        return descriptors.Select(d => DecodingStrategies.Create(d.Name, new StrategyOptions(
            d.Options.Where(o => line.Has(o.CliName)).Select(o => KeyValuePair.Create(o.Key, line.GetString(o.CliName)!))))).ToList();
    }
}
