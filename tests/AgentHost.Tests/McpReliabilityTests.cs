using System.Diagnostics;
using System.Text;
using System.Text.Json;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace AgentHost.Tests;

/// <summary>
/// Issue 26, MCP: every shipped prompt plugin runs over both transports, and a tools/call the SDK cannot bind (array
/// arguments, no name, a lone surrogate) is an isError result naming the problem, never JSON-RPC -32603.
/// </summary>
public sealed class McpReliabilityTests
{
    private static readonly (string Tool, Dictionary<string, object?> Arguments)[] _promptPlugins =
    [
        ("Writing_ContinueStory", new() { ["input"] = "Once upon a time there was a cat.", ["words"] = "20" }),
        ("Writing_Rewrite", new() { ["input"] = "The cat sat on the mat.", ["style"] = "simple" }),
        ("Writing_Summarize", new() { ["input"] = "The cat sat on the mat. Then it slept.", ["max_sentences"] = "1" }),
    ];

    // Raw tools/call params and what the error result must say.
    public static TheoryData<string, string> BadCalls => new()
    {
        { """{"name": "Math_Add", "arguments": [1, 2]}""", "must be a JSON object" },
        { """{"arguments": {"a": 1, "b": 2}}""", "no tool name" },
        { """{"name": 42, "arguments": {}}""", "must be a string" },
        { """{"name": "Math_Add", "arguments": "a=1"}""", "must be a JSON object" },
        { """{"name": "Text_Uppercase", "arguments": {"input": "\ud800"}}""", "arguments.input is not valid text" },
        { """{"name": "\udc00", "arguments": {}}""", "not valid text" },
        { """{"name": "Math_Add", "arguments": {"\ud800": 1}}""", "not valid text" },
    };

    [Fact]
    public async Task EveryShippedPromptPluginAnswersOverStdio()
    {
        await using var client = await McpClient.CreateAsync(McpServerTests.Stdio());
        await AssertPromptPluginsAsync(client);
    }

    [Fact]
    public async Task EveryShippedPromptPluginAnswersOverHttp()
    {
        using var serve = await ServeProcess.StartAsync();
        await using var client = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions { Endpoint = new Uri($"http://127.0.0.1:{serve.Port}/mcp") }));
        await AssertPromptPluginsAsync(client);
    }

    private static async Task AssertPromptPluginsAsync(McpClient client)
    {
        var tools = await client.ListToolsAsync();
        foreach (var (tool, arguments) in _promptPlugins)
        {
            Assert.Contains(tools, t => t.Name == tool);
            var result = await client.CallToolAsync(tool, arguments);
            var text = string.Concat(result.Content.OfType<TextContentBlock>().Select(b => b.Text));
            Assert.True(result.IsError != true, $"{tool}: {text}");
            Assert.False(string.IsNullOrWhiteSpace(text), tool);
        }
    }

    [Fact]
    public async Task ABadToolCallOverStdioIsAnErrorResultNamingTheProblem()
    {
        using var process = Process.Start(AgentHostProcess.StartInfo(["mcp"]))!;
        _ = process.StandardError.ReadToEndAsync();
        try
        {
            await SendAsync(process, """{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}""");
            Assert.Equal(0, (await ReadAsync(process)).GetProperty("id").GetInt32());
            await SendAsync(process, """{"jsonrpc":"2.0","method":"notifications/initialized"}""");

            var id = 1;
            foreach (var row in BadCalls)
            {
                var (parameters, expected) = ((string)row[0], (string)row[1]);
                await SendAsync(process, $$"""{"jsonrpc":"2.0","id":{{id}},"method":"tools/call","params":{{parameters}}}""");
                var answer = await ReadAsync(process);
                AssertErrorResult(answer, id, expected, parameters);
                id++;
            }

            // The server lives on and answers a good call.
            await SendAsync(process, "{\"jsonrpc\":\"2.0\",\"id\":" + id + ""","method":"tools/call","params":{"name":"Math_Add","arguments":{"a":2,"b":3}}}""");
            var sum = await ReadAsync(process);
            Assert.Equal("5", sum.GetProperty("result").GetProperty("content")[0].GetProperty("text").GetString());
        }
        finally
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task ABadToolCallOverHttpIsAnErrorResultNamingTheProblem()
    {
        using var serve = await ServeProcess.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{serve.Port}") };
        var id = 1;
        foreach (var row in BadCalls)
        {
            var (parameters, expected) = ((string)row[0], (string)row[1]);
            var request = new HttpRequestMessage(HttpMethod.Post, "/mcp")
            {
                Content = new StringContent($$"""{"jsonrpc":"2.0","id":{{id}},"method":"tools/call","params":{{parameters}}}""", Encoding.UTF8, "application/json"),
            };
            request.Headers.Accept.ParseAdd("application/json");
            request.Headers.Accept.ParseAdd("text/event-stream");
            var response = await http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            // Streamable HTTP may answer as SSE: the JSON-RPC message is the data line.
            var json = body.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("data:", StringComparison.Ordinal))?["data:".Length..] ?? body;
            AssertErrorResult(JsonDocument.Parse(json).RootElement, id, expected, parameters);
            id++;
        }
    }

    private static void AssertErrorResult(JsonElement answer, int id, string expected, string parameters)
    {
        Assert.Equal(id, answer.GetProperty("id").GetInt32());
        Assert.False(answer.TryGetProperty("error", out var error), $"{parameters}: {error}");
        var result = answer.GetProperty("result");
        Assert.True(result.GetProperty("isError").GetBoolean(), parameters);
        Assert.Contains(expected, result.GetProperty("content")[0].GetProperty("text").GetString(), StringComparison.Ordinal);
    }

    private static async Task SendAsync(Process process, string line)
    {
        await process.StandardInput.WriteLineAsync(line);
        await process.StandardInput.FlushAsync();
    }

    private static async Task<JsonElement> ReadAsync(Process process)
    {
        while (true)
        {
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(90)) ?? throw new EndOfStreamException("mcp closed stdout");
            var message = JsonDocument.Parse(line).RootElement.Clone();
            if (message.TryGetProperty("id", out _))
                return message;   // notifications (logging) are skipped
        }
    }
}
