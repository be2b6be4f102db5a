using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace AgentHost.Tests;

/// <summary>
/// Issue 26's classes against the real server: integer edges from a client (token counts, chunk sizes) are clamped or
/// refused, never a 500; and the server serves afterwards.
/// </summary>
public sealed class ReliabilityServerTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Theory]
    [InlineData("/v1/completions", true)]
    [InlineData("/v1/completions", false)]
    [InlineData("/v1/chat/completions", true)]
    [InlineData("/v1/chat/completions", false)]
    public async Task MaxTokensIntMaxIsClampedNotA500(string endpoint, bool stream)
    {
        var body = new Dictionary<string, object?> { ["model"] = "stories260k", ["max_tokens"] = int.MaxValue, ["stream"] = stream, ["stop"] = new[] { "." } };
        if (endpoint.EndsWith("chat/completions", StringComparison.Ordinal))
            body["messages"] = new[] { new { role = "user", content = "Tell me a story." } };
        else
            body["prompt"] = "Once upon a time";

        var response = await _server.Http.PostAsync(endpoint, new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();

        Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.BadRequest, $"{(int)response.StatusCode}: {text}");
        Assert.DoesNotContain("server_error", text);
        if (stream && response.StatusCode == HttpStatusCode.OK)
            Assert.Contains("data: [DONE]", text);
        await ServerSecurityTests.AssertStillServesAsync(_server);
    }

    [Theory]
    [InlineData("ffffffffffffffffffff")]
    [InlineData("10000000000000000")]
    [InlineData("-5")]
    [InlineData("zz")]
    public async Task AMalformedChunkSizeIs400(string size)
    {
        var address = new Uri(_server.Address);
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(address.Host, address.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST /v1/chat/completions HTTP/1.1\r\nHost: {address.Authority}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\n{{\"model\": \"stories260k\"}}\r\n0\r\n\r\n"));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var reader = new StreamReader(stream, Encoding.ASCII);
        var statusLine = await reader.ReadLineAsync(timeout.Token);

        Assert.StartsWith("HTTP/1.1 400", statusLine);
        await ServerSecurityTests.AssertStillServesAsync(_server);
    }
}

/// <summary>Issue 26, long conversations: 50 and 500 short user messages to the default (plain-format) model render and answer.</summary>
public sealed class LongConversationServerTests
{
    [Theory]
    [InlineData(50)]
    [InlineData(500)]
    public async Task ALongConversationThatFitsTheContextIsAnswered(int count)
    {
        await using var server = await TestServer.StartAsync(contextSize: 4096);
        var messages = Enumerable.Range(0, count).Select(i => new { role = "user", content = i % 2 == 0 ? "Tom ran." : "Sue sat." }).ToArray();
        var body = JsonSerializer.Serialize(new { model = "stories260k", messages, max_tokens = 8 });

        var (status, answer, _) = await server.PostAsync("/v1/chat/completions", body);

        Assert.True(status == HttpStatusCode.OK, answer.ToString());
        Assert.True(answer.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() > count);
        Assert.InRange(answer.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), 1, 8);
    }
}

/// <summary>Issue 26's classes against the real CLI: one clear line and a non-zero exit code, never a stack trace or a hang.</summary>
public sealed class ReliabilityCliTests
{
    [Fact]
    public async Task GenerateWithMaxTokensIntMaxAndAStopStringFinishes()
    {
        var result = await AgentHostProcess.RunAsync(["generate", "--prompt", "Once upon a time", "--max-tokens", "2147483647", "--stop", "."]);

        Assert.True(result.ExitCode == 0, result.StdErr);
        Assert.DoesNotContain("   at ", result.StdErr);
        Assert.False(string.IsNullOrWhiteSpace(result.StdOut));
    }

    // A bad input file is a usage error (2); a model file that is no model is an environment error (1), as docs/cli.md says.
    public static TheoryData<string[], int> DeviceInputs => new()
    {
        { new[] { "generate", "--prompt", "Once", "--max-tokens", "4", "--grammar", "/dev/zero" }, 2 },
        { new[] { "generate", "--prompt", "Once", "--max-tokens", "4", "--json-schema", "/dev/zero" }, 2 },
        { new[] { "generate", "--prompt", "Once", "--max-tokens", "4", "--json-schema", "/dev/urandom" }, 2 },
        { new[] { "bench", "--prompts", "/dev/zero", "--runs", "1" }, 2 },
        { new[] { "generate", "--prompt", "Once", "--max-tokens", "4", "--model", "/dev/zero" }, 1 },
    };

    [Theory]
    [MemberData(nameof(DeviceInputs))]
    public async Task ADeviceAsAnInputFileIsOneClearErrorNotAStackTrace(string[] args, int exitCode)
    {
        var result = await AgentHostProcess.RunAsync(args, timeout: TimeSpan.FromSeconds(60));

        AssertOneClearError(result, "not a regular file", exitCode);
    }

    [Fact]
    public async Task AFifoAsModelGrammarOrPromptsIsRefusedNotAHang()
    {
        using var temp = new AgentHost.Llama.Tests.Support.TempFolder();
        var fifo = temp.Combine("pipe");
        using (var mkfifo = Process.Start("mkfifo", [fifo]))
            await mkfifo.WaitForExitAsync();
        var link = temp.Combine("model.gguf");
        File.CreateSymbolicLink(link, fifo);

        foreach (var args in new[]
        {
            (new[] { "generate", "--prompt", "Once", "--max-tokens", "4", "--model", fifo }, 1),
            (new[] { "generate", "--prompt", "Once", "--max-tokens", "4", "--model", link }, 1),
            (new[] { "generate", "--prompt", "Once", "--max-tokens", "4", "--grammar", fifo }, 2),
            (new[] { "generate", "--prompt", "Once", "--max-tokens", "4", "--json-schema", link }, 2),
            (new[] { "bench", "--prompts", fifo, "--runs", "1" }, 2),
        })
        {
            var result = await AgentHostProcess.RunAsync(args.Item1, timeout: TimeSpan.FromSeconds(60));
            AssertOneClearError(result, "FIFO", args.Item2);
        }
    }

    [Fact]
    public async Task OversizedGrammarSchemaAndPromptFilesAreRefusedNamingTheLimit()
    {
        using var temp = new AgentHost.Llama.Tests.Support.TempFolder();
        var grammar = temp.Combine("big.gbnf");
        await File.WriteAllTextAsync(grammar, "root ::= \"a\"\n" + new string('#', 1_100_000));
        var schema = temp.Combine("big.json");
        await File.WriteAllTextAsync(schema, "{\"type\": \"string\", \"description\": \"" + new string('x', 1_100_000) + "\"}");
        var prompts = temp.Combine("many.txt");
        await using (var writer = new StreamWriter(prompts))
        {
            for (var i = 0; i < 3_000_000; i++)
                await writer.WriteAsync("a\n");
        }

        AssertOneClearError(await AgentHostProcess.RunAsync(["generate", "--prompt", "Once", "--max-tokens", "4", "--grammar", grammar]), "larger than");
        AssertOneClearError(await AgentHostProcess.RunAsync(["generate", "--prompt", "Once", "--max-tokens", "4", "--json-schema", schema]), "larger than");
        AssertOneClearError(await AgentHostProcess.RunAsync(["bench", "--prompts", prompts, "--runs", "1"]), "more than 100000 lines");
    }

    [Fact]
    public async Task ChatFromDevZeroStopsWithOneClearError()
    {
        var start = AgentHostProcess.StartInfo(["chat"]);
        var shell = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = start.WorkingDirectory };
        shell.ArgumentList.Add("-c");
        shell.ArgumentList.Add("exec \"$0\" \"$@\" < /dev/zero");
        shell.ArgumentList.Add(start.FileName);
        foreach (var arg in start.ArgumentList)
            shell.ArgumentList.Add(arg);
        foreach (var (key, value) in start.Environment)
            shell.Environment[key] = value;
        using var process = Process.Start(shell)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }

        AssertOneClearError(new AgentHostProcess.Result(process.ExitCode, await stdout, await stderr), "longer than");
    }

    // docs/cli.md's contract: an output file the system refuses is an environment error (1), a configuration value out
    // of range a usage error (2) for every verb; 70 only for a real internal fault.
    public static TheoryData<string[], string, string, string, int> ExitCodeCases => new()
    {
        { new[] { "bench", "--prompts", "PROMPTS", "--runs", "1", "--warmup", "0", "--max-tokens", "4", "--json", "/proc/self/mem" }, "", "", "/proc/self/mem", 1 },
        { new[] { "models", "list" }, "AGENTHOST_Mcp__CallTimeoutSeconds", "-1", "Mcp:CallTimeoutSeconds must be at least 1", 2 },
        { new[] { "generate", "--prompt", "Once", "--max-tokens", "4" }, "AGENTHOST_Mcp__StartTimeoutSeconds", "0", "Mcp:StartTimeoutSeconds must be at least 1", 2 },
        { new[] { "models", "list" }, "AGENTHOST_Mcp__Servers__bad-name__Command", "x", "Mcp:Servers:bad-name", 2 },
    };

    [Theory]
    [MemberData(nameof(ExitCodeCases))]
    public async Task ExitCodesFollowTheContract(string[] args, string variable, string value, string expected, int exitCode)
    {
        using var temp = new AgentHost.Llama.Tests.Support.TempFolder();
        var prompts = temp.Combine("prompts.txt");
        await File.WriteAllTextAsync(prompts, "Once upon a time\n");
        var environment = new Dictionary<string, string>();
        if (variable.Length > 0)
            environment[variable] = value;

        var result = await AgentHostProcess.RunAsync([.. args.Select(a => a == "PROMPTS" ? prompts : a)], environment, TimeSpan.FromSeconds(120));

        AssertOneClearError(result, expected, exitCode);
    }

    private static void AssertOneClearError(AgentHostProcess.Result result, string expected, int exitCode = 2)
    {
        Assert.True(result.ExitCode == exitCode, $"exit {result.ExitCode}: {result.StdErr}");
        Assert.DoesNotContain("   at ", result.StdErr);
        Assert.DoesNotContain("internal failure", result.StdErr);
        var error = Assert.Single(result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.Contains(expected, error);
    }
}
