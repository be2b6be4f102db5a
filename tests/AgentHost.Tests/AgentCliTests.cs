using System.Text.Json;

namespace AgentHost.Tests;

/// <summary>The run verb and chat with agents and tools, as real processes on stories260K.</summary>
public sealed class AgentCliTests
{
    [Fact]
    public async Task Run_prints_the_answer_and_the_trace_of_an_agent_calling_an_agent_as_json()
    {
        var result = await AgentHostProcess.RunAsync(["run", "--agent", "storyteller", "--input", "Tom had 3 apples and found 4 more.", "--json"]);

        Assert.Equal(0, result.ExitCode);
        using var json = JsonDocument.Parse(result.StdOut);
        Assert.Equal("storyteller", json.RootElement.GetProperty("agent").GetString());
        Assert.False(string.IsNullOrWhiteSpace(json.RootElement.GetProperty("answer").GetString()));
        var trace = json.RootElement.GetProperty("trace").EnumerateArray().ToList();
        Assert.Equal(["call", "call", "result", "result"], trace.Select(t => t.GetProperty("kind").GetString()));
        Assert.Equal("calculator", trace[0].GetProperty("function").GetString());
        Assert.Equal(1, trace[1].GetProperty("depth").GetInt32());
        Assert.EndsWith("Add", trace[1].GetProperty("function").GetString());
    }

    [Fact]
    public async Task Run_shows_the_trace_on_stderr_and_the_answer_on_stdout()
    {
        var result = await AgentHostProcess.RunAsync(["run", "--agent", "calculator", "--input", "What is 2 plus 2?"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("[calculator] -> Math_Add", result.StdErr);
        Assert.Contains("[calculator] <- Math_Add", result.StdErr);
        Assert.False(string.IsNullOrWhiteSpace(result.StdOut));
    }

    [Fact]
    public async Task An_unknown_agent_is_one_clear_error()
    {
        var run = await AgentHostProcess.RunAsync(["run", "--agent", "nobody", "--input", "hi"]);
        var chat = await AgentHostProcess.RunAsync(["chat", "--agent", "nobody"], input: "hi\n");

        foreach (var result in new[] { run, chat })
        {
            Assert.Equal(2, result.ExitCode);
            Assert.Equal("error: Unknown agent 'nobody'. Known agents: calculator, storyteller.", result.StdErr.Trim());
            Assert.Equal("", result.StdOut);
        }
    }

    [Fact]
    public async Task Chat_with_an_agent_runs_its_tools_each_turn()
    {
        var result = await AgentHostProcess.RunAsync(["chat", "--agent", "calculator"], input: "What is 2 plus 2?\n/reset\nAnd 3 plus 5?\n");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(2, result.StdErr.Split('\n').Count(l => l.StartsWith("[calculator] -> Math_Add", StringComparison.Ordinal)));
        Assert.Contains("[conversation reset]", result.StdErr);
    }

    [Fact]
    public async Task Chat_with_required_tools_calls_a_plugin_function()
    {
        var result = await AgentHostProcess.RunAsync(["chat", "--tools", "required", "--plugin", "Math.Add", "--max-tokens", "96"], input: "What is 2 plus 2?\n/stats\n");

        Assert.Equal(0, result.ExitCode);
        Assert.False(string.IsNullOrWhiteSpace(result.StdOut));
        Assert.Contains("[strategy greedy", result.StdErr);
        Assert.Contains("[tool] -> Math_Add {\"a\":", result.StdErr);
        Assert.Contains("[tool] <- ", result.StdErr);
        var unknown = await AgentHostProcess.RunAsync(["chat", "--tools", "auto", "--plugin", "Nope"], input: "hi\n");
        Assert.Equal(2, unknown.ExitCode);
        Assert.StartsWith("error: --plugin Nope: no plugin 'Nope' is loaded", unknown.StdErr);
    }
}
