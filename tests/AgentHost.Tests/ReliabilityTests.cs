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
}
