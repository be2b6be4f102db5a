using AgentHost.SemanticKernel.Agents;

namespace AgentHost.Cli;

/// <summary><c>run --agent NAME --input TEXT</c>: ask an agent once; prints its answer, and the trace of its calls on stderr (or all as JSON).</summary>
internal sealed class RunCommand(AppAgents agents) : ICommand
{
    public string Name => "run";

    public string Summary => "Ask an agent (prompts/agents/NAME.yaml) once: its answer, and the trace of the calls it made.";

    public IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("agent", "Agent name (required).", ValueName: "NAME"),
        new("input", "The question or task (required).", ValueName: "TEXT"),
        new("model", "Model for agents that name none (default: AgentHost:DefaultModel).", ValueName: "NAME|PATH"),
        new("json", "Print one JSON object: agent, answer and trace.", IsFlag: true),
    ];

    public async Task<int> RunAsync(CommandLine line, CancellationToken cancellationToken)
    {
        var agent = line.RequireString("agent");
        var input = line.RequireString("input");
        using var session = await agents.OpenAsync(line.GetString("model"), cancellationToken);
        var result = await session.Runner.RunAsync(agent, input, cancellationToken);

        if (line.Has("json"))
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
