using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.ToolTokens;

namespace AgentHost.Llama.Decoding;

/// <summary>
/// The strategy factory: every strategy a request can name, and the one way to build one. The CLI, the chat client,
/// the server and bench all create strategies here; add a strategy here and they all offer it.
/// </summary>
public static class DecodingStrategies
{
    /// <summary>Always the most likely token; the default and the reference of lossless strategies.</summary>
    public static StrategyDescriptor Greedy { get; } = new("greedy", "Always the most likely token.", SamplingUse.Never, [], (_, _) => new GreedyStrategy())
    {
        TakesGrammar = true,
        Batchable = true,
    };

    /// <summary>Plain sampling.</summary>
    public static StrategyDescriptor Sample { get; } = new("sample", "Temperature, top-k, top-p, min-p and penalties with a seed.", SamplingUse.Always, [], (_, _) => new SamplingStrategy())
    {
        TakesGrammar = true,
        Batchable = true,
    };

    private static readonly StrategyDescriptor[] _all =
    [
        Greedy,
        Sample,
        new("recycling", "Token Recycling: lossless speculative decoding from recycled candidate tokens (greedy, or sampling with sampling options).", SamplingUse.Optional,
        [
            new(RecyclingStrategy.TreeOption, "Draft tree template: auto (default), chain-N, tree-N, 2.2.2, 2.2.2:N or JSON paths."),
            new(RecyclingStrategy.MatrixOption, "File to warm-start the adjacency matrix from and save it to.", NamesFile: true),
            new(RecyclingStrategy.PresetOption, "auto (default) or paper: the paper's code, the 2.2.2 tree (unless a tree is named) and the longest accepted path over all paths; greedy only."),
        ], (o, _) => new RecyclingStrategy(o)),
        new("lookup", "Prompt lookup decoding: lossless speculative decoding from n-gram matches in prompt + output.", SamplingUse.Optional,
        [
            new(LookupStrategy.NgramOption, "Longest n-gram to match (default 3)."),
            new(LookupStrategy.DraftOption, "Most tokens drafted per step (default 3)."),
        ], (o, _) => new LookupStrategy(o)),
        CautiousStrategy.Descriptor,
        ToolTokenStrategy.Descriptor,
    ];

    /// <summary>Every strategy.</summary>
    public static IReadOnlyList<StrategyDescriptor> All => _all;

    /// <summary>Known strategy names.</summary>
    public static IReadOnlyList<string> Names { get; } = _all.Select(d => d.Name).ToArray();

    /// <summary>Every option key of every strategy.</summary>
    public static IReadOnlySet<string> OptionKeys { get; } = _all.SelectMany(d => d.Options).Select(o => o.Key).ToHashSet(StringComparer.Ordinal);

    /// <summary>Option keys whose value names a file (refused where <see cref="StrategyContext.AllowFileOptions"/> is off).</summary>
    public static IReadOnlyList<string> FileOptionKeys { get; } = _all.SelectMany(d => d.Options).Where(o => o.NamesFile).Select(o => o.Key).Distinct().ToArray();

    /// <summary>The descriptor of <paramref name="name"/>, or a clear error listing the known ones.</summary>
    public static StrategyDescriptor Find(string name)
        => _all.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new AgentHostException(ErrorKind.InvalidArgument, $"Unknown decoding strategy '{name}'. Known strategies: {string.Join(", ", Names)}.") { Parameter = "decoding_strategy" };

    /// <summary>
    /// Creates the strategy <paramref name="name"/>: options that name files are refused where the context forbids
    /// them, the context's defaults fill in what <paramref name="options"/> leaves unset, and an option the strategy
    /// does not read is an error.
    /// </summary>
    public static IDecodingStrategy Create(string name, StrategyOptions? options = null, StrategyContext? context = null)
        => Create(Find(name), options, context);

    /// <inheritdoc cref="Create(string, StrategyOptions?, StrategyContext?)"/>
    public static IDecodingStrategy Create(StrategyDescriptor descriptor, StrategyOptions? options = null, StrategyContext? context = null)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        options ??= StrategyOptions.Empty;
        context ??= StrategyContext.Default;
        if (!context.AllowFileOptions)
        {
            foreach (var key in FileOptionKeys)
            {
                if (options.Values.ContainsKey(key))
                    throw new AgentHostException(ErrorKind.InvalidArgument, $"Option '{key}' names a file, which this host does not accept in requests (server-side files are configured by its operator).") { Parameter = key };
            }
        }
        if (descriptor.NeedsHiddenStates && !context.HiddenStates)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Strategy {descriptor.Name} needs sessions that return hidden states, which this host's do not (a chat client needs HiddenStates = true).");
        var own = descriptor.Options.Select(o => o.Key).ToHashSet(StringComparer.Ordinal);
        var defaults = context.Defaults.Where(d => own.Contains(d.Key) && !options.Values.ContainsKey(d.Key)).ToList();
        if (defaults.Count > 0)
            options = new StrategyOptions(options.Values.Concat(defaults));
        foreach (var option in descriptor.Options.Where(o => o.Required && !options.Values.ContainsKey(o.Key)))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Strategy {descriptor.Name} needs option '{option.Key}': {option.Help}") { Parameter = option.Key };
        var strategy = descriptor.Create(options, context);
        options.EnsureAllRead(descriptor.Name);
        return strategy;
    }

    /// <summary>
    /// The one rule for sampling settings: a strategy that never samples refuses them. <paramref name="given"/> names
    /// the first sampling option the caller set, as the caller's user wrote it (null when none).
    /// </summary>
    public static void EnsureSamplingApplies(StrategyDescriptor descriptor, string? given)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        if (given is not null && !descriptor.AcceptsSampling)
        {
            var samplers = string.Join(", ", _all.Where(d => d.AcceptsSampling && !d.NeedsHiddenStates).Select(d => d.Name));
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Option '{given}' does not apply to decoding strategy '{descriptor.Name}', which does not sample; use one that does ({samplers}).") { Parameter = given };
        }
    }
}
