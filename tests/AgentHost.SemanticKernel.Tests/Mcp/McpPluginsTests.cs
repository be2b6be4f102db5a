using AgentHost.Llama;
using AgentHost.Llama.Tests.Support;
using AgentHost.SemanticKernel.Mcp;
using Microsoft.SemanticKernel;

namespace AgentHost.SemanticKernel.Tests.Mcp;

/// <summary>
/// MCP servers that misbehave, as real processes: a shell script speaks just enough of the protocol (the handshake
/// and a tool list) and then fails the way asked. What a well-behaved server does is covered against AgentHost's own
/// <c>mcp</c> process in AgentHost.Tests.
/// </summary>
public sealed class McpPluginsTests : IDisposable
{
    // Answers initialize and tools/list (one tool, "echo-text"), "method not found" to other requests, and on
    // tools/call does what $1 says: answer, answer with isError, exit, write garbage or stay silent.
    private const string Script = """
        mode="$1"
        while IFS= read -r line; do
          id=$(printf '%s' "$line" | grep -o '"id":[^,}]*' | head -n 1 | cut -d: -f2)
          case "$line" in
            *'"method":"initialize"'*)
              printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"scripted","version":"1"}}}\n' "$id" ;;
            *'"method":"tools/list"'*)
              printf '{"jsonrpc":"2.0","id":%s,"result":{"tools":[{"name":"echo-text","description":"Echoes a text.","inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}}]}}\n' "$id" ;;
            *'"method":"tools/call"'*)
              case "$mode" in
                ok) printf '{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"echo"}]}}\n' "$id" ;;
                error) printf '{"jsonrpc":"2.0","id":%s,"result":{"isError":true,"content":[{"type":"text","text":"the text is too long"}]}}\n' "$id" ;;
                exit) echo "scripted server: exiting mid-call" >&2; exit 3 ;;
                garbage) echo 'this is not JSON' ;;
                silent) ;;
              esac ;;
            *) [ -n "$id" ] && printf '{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"Method not found"}}\n' "$id" ;;
          esac
        done
        """;

    private readonly TempFolder _folder = new();

    [Fact]
    public async Task AServersToolsBecomeAPluginNamedAfterTheServer()
    {
        await using var mcp = await McpPlugins.ConnectAsync(Options("ok"));
        var kernel = new Kernel();
        mcp.ImportInto(kernel);

        var plugin = Assert.Single(kernel.Plugins);
        Assert.Equal("scripted", plugin.Name);
        var function = Assert.Single(plugin);
        Assert.Equal("echo_text", function.Name);   // SK's name rule: '-' becomes '_'
        Assert.Equal("Echoes a text.", function.Description);
        Assert.Equal("text", Assert.Single(function.Metadata.Parameters).Name);

        var result = await kernel.InvokeAsync(function, new() { ["text"] = "hi" });
        Assert.Equal("echo", result.GetValue<object>()?.ToString());
    }

    [Theory]
    [InlineData("error", "returned an error: the text is too long")]
    [InlineData("exit", "failed: ")]   // "the transport was closed" or "process exited (exit code: 3)", whichever the SDK notices first
    [InlineData("garbage", "no answer within 2 s")]
    [InlineData("silent", "no answer within 2 s")]
    public async Task AFailingCallIsOneErrorNamingServerAndTool(string mode, string expected)
    {
        await using var mcp = await McpPlugins.ConnectAsync(Options(mode));
        var function = Assert.Single(mcp.Plugins[0]);

        // A guard against a hang only: the call's own deadline is 2 s.
        var error = await Assert.ThrowsAnyAsync<Exception>(() => new Kernel().InvokeAsync(function, new() { ["text"] = "hi" }).WaitAsync(TimeSpan.FromSeconds(60)));

        Assert.Contains("MCP server 'scripted', tool 'echo-text'", error.Message);
        Assert.True(error.Message.Contains(expected, StringComparison.Ordinal), error.Message);
    }

    [Fact]
    public async Task ACommandThatDoesNotExistIsOneClearError()
    {
        var options = new McpOptions { StartTimeoutSeconds = 10 };
        options.Servers["ghost"] = new McpServerEntry { Command = _folder.Combine("no-such-server") };

        var error = await Assert.ThrowsAsync<AgentHostException>(() => McpPlugins.ConnectAsync(options).WaitAsync(TimeSpan.FromSeconds(60)));

        Assert.Equal(ErrorKind.InvalidPlugin, error.Kind);
        Assert.StartsWith($"MCP server 'ghost' ({_folder.Combine("no-such-server")}) failed to start", error.Message);
    }

    [Fact]
    public async Task AServerThatNeverAnswersTheHandshakeTimesOut()
    {
        var options = new McpOptions { StartTimeoutSeconds = 2 };
        options.Servers["mute"] = new McpServerEntry { Command = "sleep", Args = ["60"] };

        var error = await Assert.ThrowsAsync<AgentHostException>(() => McpPlugins.ConnectAsync(options).WaitAsync(TimeSpan.FromSeconds(60)));

        Assert.Contains("MCP server 'mute' (sleep 60) did not answer within 2 s (Mcp:StartTimeoutSeconds)", error.Message);
    }

    [Theory]
    [InlineData("bad-name", "x", null, "is not a valid plugin name")]
    [InlineData("both", "x", "http://127.0.0.1:1/mcp", "not both")]
    [InlineData("neither", null, null, "has neither")]
    [InlineData("ftp", null, "ftp://127.0.0.1/mcp", "is not an http or https URL")]
    public void ABadEntryIsRefusedNamingItsKey(string name, string? command, string? url, string expected)
    {
        var options = new McpOptions();
        options.Servers[name] = new McpServerEntry { Command = command, Url = url };

        var error = Assert.Throws<AgentHostException>(options.Validate);

        Assert.Contains($"Mcp:Servers:{name}", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public async Task AServerNamedLikeALoadedPluginIsRefused()
    {
        await using var mcp = await McpPlugins.ConnectAsync(Options("ok"));
        var kernel = new Kernel();
        kernel.Plugins.AddFromFunctions("scripted", [KernelFunctionFactory.CreateFromMethod(() => "x", "Other")]);

        var error = Assert.Throws<AgentHostException>(() => mcp.ImportInto(kernel));

        Assert.Contains("Mcp:Servers:scripted", error.Message);
    }

    private McpOptions Options(string mode)
    {
        var script = _folder.Combine("server.sh");
        File.WriteAllText(script, Script.ReplaceLineEndings("\n"));
        var options = new McpOptions { StartTimeoutSeconds = 30, CallTimeoutSeconds = 2 };
        options.Servers["scripted"] = new McpServerEntry { Command = "sh", Args = [script, mode] };
        return options;
    }

    public void Dispose() => _folder.Dispose();
}
