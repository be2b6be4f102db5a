using System.CommandLine;
using AgentHost.Cli;
using AgentHost.Llama.Hosting;

namespace AgentHost.Bench;

/// <summary><c>bench chat</c>: the multi-turn conversation scenario (see <see cref="ChatBench"/>).</summary>
internal sealed class BenchChatCommand(ILlamaModelProvider models) : ICommand
{
    private static readonly Option<int> _turns = CliOption.Int("--turns", "Turns of the conversation.", "N", 5, min: 1, max: ChatBench.MaxTurns);
    private static readonly Option<int> _runs = BenchOptions.Runs(5);
    private static readonly Option<int> _maxTokens = SharedOptions.MaxTokens(32, "Most tokens per reply.");

    public string Name => "bench chat";

    public string Summary => "A multi-turn conversation with the prompt cache on and off: prefill tokens and turn latency.";

    public IReadOnlyList<Symbol> Options { get; } = [SharedOptions.Model, _turns, _runs, BenchOptions.Warmup, _maxTokens, BenchOptions.JsonFile];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var model = await models.GetModelAsync(parse.GetValue(SharedOptions.Model), cancellationToken);
        await ChatBench.RunAsync(model, parse.GetValue(_turns), parse.GetValue(_runs), parse.GetValue(BenchOptions.Warmup), parse.GetValue(_maxTokens),
            parse.GetValue(BenchOptions.JsonFile), cancellationToken);
        return CliApp.ExitOk;
    }
}
