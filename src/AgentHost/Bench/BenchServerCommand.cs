using System.CommandLine;
using AgentHost.Cli;
using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;

namespace AgentHost.Bench;

/// <summary><c>bench server</c>: tokens/s over HTTP at 1, 4 and 16 clients (see <see cref="ServerBench"/>).</summary>
internal sealed class BenchServerCommand(AgentHostOptions options, LlamaModelProvider models) : ICommand
{
    private static readonly Option<int> _runs = BenchOptions.Runs(3);
    private static readonly Option<int> _maxTokens = SharedOptions.MaxTokens(64, "Most tokens per request.");
    private static readonly Option<bool> _batching = CliOption.Flag("--batching", "Continuous batching on only (default: on, then off).");
    private static readonly Option<bool> _mix = CliOption.Flag("--mix", "Instead: 16 clients of mixed strategies against 16 greedy clients, and one recycling client over HTTP against in-process.");
    private static readonly Option<bool> _sharedPrefix = CliOption.Flag("--shared-prefix", "Instead: 8 agents with one long system prompt and tool list: cached prompt tokens and time to first token.");
    private static readonly Option<int> _prefixTokens = CliOption.Int("--prefix-tokens", "Tokens of the --shared-prefix system prompt and tool list (at least).", "N", 1000, min: 10, max: 100_000);

    public string Name => "bench server";

    public string Summary => "Tokens/s over HTTP at 1, 4 and 16 clients, and the HTTP overhead against in-process at 1 client.";

    public IReadOnlyList<Symbol> Options { get; } = [SharedOptions.Model, _runs, BenchOptions.Warmup, _maxTokens, BenchOptions.Prompts, _batching, _mix, _sharedPrefix, _prefixTokens, BenchOptions.JsonFile];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var prompts = BenchOptions.ReadPrompts(parse);
        var model = parse.GetValue(SharedOptions.Model) ?? options.DefaultModel;
        if (!options.Models.ContainsKey(model))
            throw CliOption.Usage($"--model must name a catalog model for the server scenario (known: {string.Join(", ", options.Models.Keys)}).");
        await models.Resolver.ResolveAsync(model, new ConsoleProgressBar(), cancellationToken);   // fetched or built now, as serve does: requests never do
        if (parse.GetValue(_mix) && parse.GetValue(_sharedPrefix))
            throw CliOption.Usage("give either --mix or --shared-prefix, not both.");
        if (parse.GetValue(_mix))
        {
            await EngineBench.RunMixAsync(options, model, prompts, parse.GetValue(_runs), parse.GetValue(BenchOptions.Warmup), parse.GetValue(_maxTokens), parse.GetValue(BenchOptions.JsonFile), cancellationToken);
            return CliApp.ExitOk;
        }
        if (parse.GetValue(_sharedPrefix))
        {
            await EngineBench.RunSharedPrefixAsync(options, model, parse.GetValue(_runs), parse.GetValue(BenchOptions.Warmup), parse.GetValue(_maxTokens), parse.GetValue(_prefixTokens), parse.GetValue(BenchOptions.JsonFile), cancellationToken);
            return CliApp.ExitOk;
        }
        await ServerBench.RunAsync(options, model, prompts, parse.GetValue(_runs), parse.GetValue(BenchOptions.Warmup), parse.GetValue(_maxTokens),
            parse.GetValue(_batching) ? [true] : [true, false], parse.GetValue(BenchOptions.JsonFile), cancellationToken);
        return CliApp.ExitOk;
    }
}
