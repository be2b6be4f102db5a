using System.CommandLine;
using AgentHost.Llama.Decoding;

namespace AgentHost.Cli;

/// <summary>
/// The command-line options of every strategy and building strategies from them: the one place the CLI turns
/// strategy names and options into strategies. Each option's flag derives from its engine key
/// (<c>recycling_tree</c> is <c>--recycling-tree</c>); the short flags of earlier releases stay as aliases.
/// </summary>
internal static class StrategyArguments
{
    // Key -> the short flag it also answers to.
    private static readonly Dictionary<string, string> _aliases = new(StringComparer.Ordinal)
    {
        ["recycling_tree"] = "--tree",
        ["cautious_max_trials"] = "--max-trials",
        ["cautious_entropy_low"] = "--entropy-low",
        ["cautious_entropy_high"] = "--entropy-high",
        ["cautious_formula"] = "--trial-formula",
        ["cautious_stop_rule"] = "--stop-rule",
        ["toolkens_head"] = "--head",
        ["toolkens_bias"] = "--tool-bias",
    };

    private static readonly (string Key, Option<string?> Option)[] _options = DecodingStrategies.All
        .SelectMany(d => d.Options.Select(o => (Strategy: d.Name, Option: o)))
        .GroupBy(x => x.Option.Key, StringComparer.Ordinal)
        .Select(g => (g.Key, Create(g.Key, $"[{string.Join(", ", g.Select(x => x.Strategy))}] {g.First().Option.Help}")))
        .ToArray();

    /// <summary>One option per distinct strategy option key.</summary>
    public static IReadOnlyList<Option> Options { get; } = [.. _options.Select(o => o.Option)];

    /// <summary>The flag of option <paramref name="key"/>: <c>--</c> and the key with dashes.</summary>
    public static string Flag(string key) => "--" + key.Replace('_', '-');

    /// <summary>The strategy options the user gave, by engine key.</summary>
    public static Dictionary<string, string> Values(ParseResult parse)
        => _options.Where(o => parse.Has(o.Option)).ToDictionary(o => o.Key, o => parse.GetValue(o.Option)!, StringComparer.Ordinal);

    /// <summary>
    /// Builds each named strategy through the engine's factory with the options it declares, in <paramref name="context"/>;
    /// an option none of them declares, or a required one missing, is a usage error naming the flag.
    /// </summary>
    public static IReadOnlyList<IDecodingStrategy> Create(ParseResult parse, IReadOnlyList<string> names, StrategyContext? context = null)
    {
        var descriptors = names.Select(DecodingStrategies.Find).ToList();
        foreach (var (key, option) in _options)
        {
            // The error names the flag as the user typed it (an alias or the derived name).
            if (parse.GetResult(option) is { Implicit: false } given && !descriptors.Any(d => d.Options.Any(o => o.Key == key)))
                throw CliOption.Usage($"{given.IdentifierToken?.Value ?? option.Name} does not apply to strategy {string.Join(", ", names)}.");
        }
        var values = Values(parse);
        foreach (var descriptor in descriptors)
        {
            foreach (var required in descriptor.Options.Where(o => o.Required && !values.ContainsKey(o.Key)))
                throw CliOption.Usage($"strategy {descriptor.Name} needs {_aliases.GetValueOrDefault(required.Key, Flag(required.Key))}: {required.Help}");
        }
        return Create(values, names, context);
    }

    /// <summary>Builds each named strategy from option values by engine key, each with the values it declares.</summary>
    public static IReadOnlyList<IDecodingStrategy> Create(IReadOnlyDictionary<string, string> values, IReadOnlyList<string> names, StrategyContext? context = null)
        => names.Select(DecodingStrategies.Find).Select(d => DecodingStrategies.Create(d, new StrategyOptions(
            d.Options.Where(o => values.ContainsKey(o.Key)).Select(o => KeyValuePair.Create(o.Key, values[o.Key]))), context)).ToList();

    private static Option<string?> Create(string key, string help)
    {
        var option = CliOption.Text(Flag(key), help, "VALUE");
        if (_aliases.TryGetValue(key, out var alias))
            option.Aliases.Add(alias);
        return option;
    }
}
