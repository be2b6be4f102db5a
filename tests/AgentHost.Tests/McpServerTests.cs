using System.Diagnostics;
using System.Text.Json;
using AgentHost.Llama.Tests.Support;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace AgentHost.Tests;

/// <summary>The SDK's MCP client against AgentHost's real MCP server: the <c>mcp</c> process over stdio and a <c>serve</c> process over HTTP.</summary>
public sealed class McpServerTests
{
    private const string ApiKey = "mcp-test-key";

    [Fact]
    public async Task StdioClientListsAndCallsPluginsAndAgents()
    {
        await using var client = await McpClient.CreateAsync(Stdio());

        var tools = await client.ListToolsAsync();
        var add = Assert.Single(tools, t => t.Name == "Math_Add");
        Assert.Equal("Adds two numbers: a + b.", add.Description);
        var properties = add.JsonSchema.GetProperty("properties");
        Assert.Equal("number", properties.GetProperty("a").GetProperty("type").GetString());
        Assert.Equal("number", properties.GetProperty("b").GetProperty("type").GetString());
        var agent = Assert.Single(tools, t => t.Name == "calculator");
        Assert.True(agent.JsonSchema.GetProperty("properties").TryGetProperty("input", out _));

        await AssertCallsAsync(client);
    }

    [Fact]
    public async Task TheFilesPluginStaysInsideItsRoot()
    {
        using var root = new TempFolder();
        File.WriteAllText(root.Combine("notes.txt"), "inside");
        using var beside = new TempFolder();
        File.WriteAllText(beside.Combine("secret.txt"), "secret content");
        await using var client = await McpClient.CreateAsync(Stdio(new()
        {
            ["AGENTHOST_Plugins__Native__3"] = "Files",
            ["AGENTHOST_Plugins__FilesRoot"] = root.Path,
        }));

        var inside = await client.CallToolAsync("Files_ReadFile", Arguments(("path", "notes.txt")));
        Assert.NotEqual(true, inside.IsError);
        Assert.Equal("inside", Text(inside));

        var outside = await client.CallToolAsync("Files_ReadFile", Arguments(("path", $"../{Path.GetFileName(beside.Path)}/secret.txt")));
        Assert.True(outside.IsError);
        Assert.Contains("outside the workspace", Text(outside));
        Assert.DoesNotContain("secret content", Text(outside));
    }

    [Fact]
    public async Task StdoutCarriesOnlyTheProtocolEvenWhenVerbose()
    {
        const string initialize = """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}""";
        using var process = Process.Start(AgentHostProcess.StartInfo(["mcp", "--verbose"]))!;
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteLineAsync(initialize);
        await process.StandardInput.FlushAsync();
        try
        {
            var first = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(90));
            var answer = JsonDocument.Parse(first!).RootElement;
            Assert.Equal("agenthost", answer.GetProperty("result").GetProperty("serverInfo").GetProperty("name").GetString());

            // Closing stdin ends the server: exit 0, and nothing but protocol was ever written to stdout.
            process.StandardInput.Close();
            var rest = await process.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(60));
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(0, process.ExitCode);
            foreach (var line in rest.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                JsonDocument.Parse(line).Dispose();
            Assert.NotEmpty(await stderr);   // the verbose log went to stderr
        }
        finally
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task HttpClientListsAndCallsToolsOfServeBehindItsApiKey()
    {
        using var serve = await ServeProcess.StartAsync(new Dictionary<string, string> { ["AGENTHOST_Server__ApiKey"] = ApiKey });
        var endpoint = new Uri($"http://127.0.0.1:{serve.Port}/mcp");

        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var keyless = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions { Endpoint = endpoint }));
        });

        await using var client = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = endpoint,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = $"Bearer {ApiKey}" },
        }));
        var tools = await client.ListToolsAsync();
        Assert.Contains(tools, t => t.Name == "Math_Add");
        Assert.Contains(tools, t => t.Name == "calculator");
        await AssertCallsAsync(client);
    }

    /// <summary>A plugin function, an agent (on the real model) and a call with bad arguments (an error result, the server lives on).</summary>
    private static async Task AssertCallsAsync(McpClient client)
    {
        var sum = await client.CallToolAsync("Math_Add", Arguments(("a", 2), ("b", 3)));
        Assert.NotEqual(true, sum.IsError);
        Assert.Equal("5", Text(sum));

        var answer = await client.CallToolAsync("calculator", Arguments(("input", "What is 2 plus 3?")));
        Assert.NotEqual(true, answer.IsError);
        Assert.False(string.IsNullOrWhiteSpace(Text(answer)));

        var bad = await client.CallToolAsync("Math_Add", Arguments(("a", "two")));
        Assert.True(bad.IsError);
        Assert.Contains("Math_Add", Text(bad));

        var again = await client.CallToolAsync("Math_Add", Arguments(("a", 1), ("b", 1)));
        Assert.Equal("2", Text(again));
    }

    /// <summary>The real <c>agenthost mcp</c> process, started as the tests start the CLI.</summary>
    internal static StdioClientTransport Stdio(Dictionary<string, string>? environment = null)
    {
        var start = AgentHostProcess.StartInfo(["mcp"], environment);
        return new StdioClientTransport(new StdioClientTransportOptions
        {
            Name = "agenthost",
            Command = start.FileName,
            Arguments = [.. start.ArgumentList],
            WorkingDirectory = start.WorkingDirectory,
            EnvironmentVariables = start.Environment,
        });
    }

    private static Dictionary<string, object?> Arguments(params (string Name, object? Value)[] arguments)
        => arguments.ToDictionary(a => a.Name, a => a.Value);

    private static string Text(CallToolResult result)
        => string.Concat(result.Content.OfType<TextContentBlock>().Select(b => b.Text));
}
