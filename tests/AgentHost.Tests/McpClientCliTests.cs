using System.Text.Json;
using AgentHost.Llama.Tests.Support;
using AgentHost.SemanticKernel.Tests.Support;

namespace AgentHost.Tests;

/// <summary>
/// MCP servers of <c>Mcp:Servers</c> as plugins of the CLI, on stories260K: the server is AgentHost's own <c>mcp</c>
/// verb, a real process the CLI starts (as any MCP client would).
/// </summary>
public sealed class McpClientCliTests : IDisposable
{
    private readonly TempFolder _agents = new();

    /// <summary><c>self</c>: the <c>agenthost mcp</c> process; <paramref name="extra"/> on top.</summary>
    private static Dictionary<string, string> SelfServer(Dictionary<string, string>? extra = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["AGENTHOST_Mcp__Servers__self__Command"] = "dotnet",
            ["AGENTHOST_Mcp__Servers__self__Args__0"] = Path.Combine(AppContext.BaseDirectory, "AgentHost.dll"),
            ["AGENTHOST_Mcp__Servers__self__Args__1"] = "mcp",
        };
        foreach (var (key, value) in extra ?? [])
            environment[key] = value;
        return environment;
    }

    [Fact]
    public async Task An_agent_calls_a_tool_of_an_mcp_server()
    {
        File.WriteAllText(Path.Combine(_agents.Path, "adder.yaml"), """
            name: adder
            description: Adds two numbers with the Math tool of the MCP server 'self'.
            instructions: Use the Math_Add tool for the numbers in the question, then state the result.
            plugins: [self.Math_Add]
            tool_choice: required
            max_tool_rounds: 2
            max_tokens: 96
            """);

        var result = await AgentHostProcess.RunAsync(["run", "--agent", "adder", "--input", "What is 2 plus 3?", "--json"],
            SelfServer(new() { ["AGENTHOST_Agents__Directory"] = _agents.Path }));

        Assert.True(result.ExitCode == 0, result.StdErr);
        using var json = JsonDocument.Parse(result.StdOut);
        var trace = json.RootElement.GetProperty("trace").EnumerateArray().ToList();
        Assert.Equal("call", trace[0].GetProperty("kind").GetString());
        Assert.Equal("self_Math_Add", trace[0].GetProperty("function").GetString());
        Assert.Equal("result", trace[1].GetProperty("kind").GetString());
        Assert.False(trace[1].GetProperty("failed").GetBoolean(), trace[1].GetProperty("text").GetString());
        // The MCP server's Math.Add computed the sum of the arguments the model chose.
        var arguments = JsonDocument.Parse(trace[0].GetProperty("text").GetString()!).RootElement;
        var sum = arguments.GetProperty("a").GetDouble() + arguments.GetProperty("b").GetDouble();
        Assert.Equal(sum, double.Parse(trace[1].GetProperty("text").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Chat_with_tools_offers_a_function_of_an_mcp_server()
    {
        var result = await AgentHostProcess.RunAsync(["chat", "--tools", "required", "--plugin", "self.Math_Add", "--max-tokens", "96"], SelfServer(), input: "What is 2 plus 2?\n");

        Assert.True(result.ExitCode == 0, result.StdErr);
        Assert.Contains("[tool] -> self_Math_Add {\"a\":", result.StdErr);
        Assert.DoesNotContain("failed", result.StdErr);
    }

    [Fact]
    public async Task Plugins_lists_the_tools_of_an_mcp_server()
    {
        var result = await AgentHostProcess.RunAsync(["plugins"], SelfServer());

        Assert.True(result.ExitCode == 0, result.StdErr);
        Assert.Contains("\nself\n", result.StdOut.ReplaceLineEndings("\n"));
        Assert.Contains("  Math_Add(a, b)  Adds two numbers: a + b.", result.StdOut);
        Assert.Contains("  calculator(input)", result.StdOut);
    }

    /// <summary>
    /// Three servers that would break or stall whoever starts them: <c>absent</c> and <c>ghost</c> (commands that do
    /// not exist) and <c>mute</c> (never answers, within a 600 s start timeout); agents from <see cref="_agents"/>.
    /// </summary>
    private Dictionary<string, string> BrokenServers() => new()
    {
        ["AGENTHOST_Mcp__Servers__absent__Command"] = _agents.Combine("no-such-server"),
        ["AGENTHOST_Mcp__Servers__ghost__Command"] = _agents.Combine("no-such-server"),
        ["AGENTHOST_Mcp__Servers__mute__Command"] = "sleep",
        ["AGENTHOST_Mcp__Servers__mute__Args__0"] = "600",
        ["AGENTHOST_Mcp__StartTimeoutSeconds"] = "600",
    };

    [Fact]
    public async Task An_agent_that_names_no_mcp_server_starts_none()
    {
        // calculator uses Math.Add only: the broken servers are never started, and 'mute' is never waited for.
        var result = await AgentHostProcess.RunAsync(["run", "--agent", "calculator", "--input", "What is 2 plus 2?", "--json"], BrokenServers());

        Assert.True(result.ExitCode == 0, result.StdErr);
        Assert.DoesNotContain("MCP server", result.StdErr);
        using var json = JsonDocument.Parse(result.StdOut);
        Assert.Equal("calculator", json.RootElement.GetProperty("agent").GetString());
    }

    [Fact]
    public async Task A_server_an_agent_calls_through_another_agent_that_does_not_start_is_one_clear_error()
    {
        File.WriteAllText(Path.Combine(_agents.Path, "relay.yaml"), "name: relay\ndescription: Asks the haunted agent.\nagents: [haunted]\n");
        File.WriteAllText(Path.Combine(_agents.Path, "haunted.yaml"), "name: haunted\ndescription: Uses the ghost server.\nplugins: [ghost.boo]\n");
        var environment = BrokenServers();
        environment["AGENTHOST_Agents__Directory"] = _agents.Path;

        var result = await AgentHostProcess.RunAsync(["run", "--agent", "relay", "--input", "Hello"], environment);

        // Only 'ghost' was started: 'absent' (which sorts first) is not named, and 'mute' is not waited for.
        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: MCP server 'ghost' ({_agents.Combine("no-such-server")}) failed to start: ", line);
        Assert.Equal("", result.StdOut);
    }

    [Fact]
    public async Task Plugins_lists_what_loaded_and_reports_a_server_that_did_not_start_on_stderr()
    {
        var environment = new Dictionary<string, string>
        {
            ["AGENTHOST_Mcp__Servers__absent__Command"] = _agents.Combine("no-such-server"),
            ["AGENTHOST_Mcp__Servers__scripted__Command"] = "sh",
        };
        foreach (var (i, arg) in ScriptedMcpServer.Entry(_agents, "ok").Args.Index())
            environment[$"AGENTHOST_Mcp__Servers__scripted__Args__{i}"] = arg;
        var error = $"error: MCP server 'absent' ({_agents.Combine("no-such-server")}) failed to start: ";

        var text = await AgentHostProcess.RunAsync(["plugins"], environment);
        var json = await AgentHostProcess.RunAsync(["plugins", "--json"], environment);

        Assert.Equal(1, text.ExitCode);
        Assert.StartsWith(error, Assert.Single(text.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.StartsWith("Math\n", text.StdOut.ReplaceLineEndings("\n"));
        Assert.Contains("\nscripted\n  echo_text(text)  Echoes a text.", text.StdOut.ReplaceLineEndings("\n"));
        Assert.Equal(1, json.ExitCode);
        Assert.StartsWith(error, Assert.Single(json.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        using var listing = JsonDocument.Parse(json.StdOut);
        Assert.Equal(["Math", "Time", "Text", "Writing", "scripted"], listing.RootElement.EnumerateArray().Select(p => p.GetProperty("name").GetString()));
    }

    public void Dispose() => _agents.Dispose();
}
