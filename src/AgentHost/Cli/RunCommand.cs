using System.CommandLine;
using AgentHost.SemanticKernel.Agents;

namespace AgentHost.Cli;

/// <summary><c>run --agent NAME --input TEXT</c>: ask an agent once; prints its answer, and the trace of its calls on stderr (or all as JSON).</summary>
internal sealed class RunCommand(AppAgents agents) : ICommand
{
    public string Name => "run";

    public string Summary => "Ask an agent (prompts/agents/NAME.yaml) once: its answer, and the trace of the calls it made.";

    private static readonly Option<string?> _agent = CliOption.Text("--agent", "Agent name (required).", "NAME");
    private static readonly Option<string?> _input = CliOption.Text("--input", "The question or task (required).", "TEXT");

    public IReadOnlyList<Symbol> Options { get; } = [_agent, _input, SharedOptions.Model, SharedOptions.Json];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var agent = parse.Require(_agent);
        var input = parse.Require(_input);
        // The model serves agents that name none.
        using var session = await agents.OpenAsync(parse.GetValue(SharedOptions.Model), agent, cancellationToken);
        var result = await session.Runner.RunAsync(agent, input, cancellationToken);

        if (parse.GetValue(SharedOptions.Json))
        {
            Console.Out.WriteLine(JsonOutput.Serialize(new Dictionary<string, object?>
            {
                ["agent"] = result.Agent,
                ["input"] = input,
                ["answer"] = result.Answer,
                ["trace"] = result.Trace,
            }));
            return CliApp.ExitOk;
        }
        PrintTrace(result.Trace);
        Console.Out.WriteLine(result.Answer);
        return CliApp.ExitOk;
    }

    /// <summary>One line per call and result, indented by depth.</summary>
    public static void PrintTrace(IEnumerable<AgentTraceEntry> trace)
    {
        foreach (var entry in trace)
        {
            var indent = new string(' ', 2 * entry.Depth);
            var arrow = entry.Kind == "call" ? "->" : entry.Failed ? "<- failed:" : "<-";
            Console.Error.WriteLine($"{indent}[{entry.Agent}] {arrow} {entry.Function} {entry.Text}");
        }
    }
}
