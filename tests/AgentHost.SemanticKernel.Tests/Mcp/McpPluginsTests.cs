using AgentHost.Llama;
using AgentHost.Llama.Tests.Support;
using AgentHost.SemanticKernel.Mcp;
using AgentHost.SemanticKernel.Tests.Support;
using Microsoft.SemanticKernel;

namespace AgentHost.SemanticKernel.Tests.Mcp;

/// <summary>
/// MCP servers that misbehave, as real processes (<see cref="ScriptedMcpServer"/>, a command that does not exist, a
/// server that never answers). What a well-behaved server does is covered against AgentHost's own <c>mcp</c> process
/// in AgentHost.Tests.
/// </summary>
public sealed class McpPluginsTests : IDisposable
{
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
        options.Servers["ghost"] = Ghost();

        var error = await Assert.ThrowsAsync<AgentHostException>(() => McpPlugins.ConnectAsync(options).WaitAsync(TimeSpan.FromSeconds(60)));

        AssertGhostFailedToStart(error);
    }

    [Fact]
    public async Task AServerThatNeverAnswersTheHandshakeTimesOut()
    {
        var options = new McpOptions { StartTimeoutSeconds = 2 };
        options.Servers["mute"] = new McpServerEntry { Command = "sleep", Args = ["60"] };

        var error = await Assert.ThrowsAsync<AgentHostException>(() => McpPlugins.ConnectAsync(options).WaitAsync(TimeSpan.FromSeconds(60)));

        Assert.Contains("MCP server 'mute' (sleep 60) did not answer within 2 s (Mcp:StartTimeoutSeconds)", error.Message);
    }

    [Fact]
    public async Task ConnectingWhatIsAvailableKeepsTheServersThatStartAndReportsTheOthers()
    {
        var options = Options("ok");
        options.Servers["ghost"] = Ghost();

        await using var mcp = await McpPlugins.ConnectAvailableAsync(options).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal("scripted", Assert.Single(mcp.Plugins).Name);
        AssertGhostFailedToStart(Assert.Single(mcp.Failures));
    }

    [Fact]
    public async Task TheFirstServerThatFailsStopsTheWaitForTheOthers()
    {
        var options = new McpOptions { StartTimeoutSeconds = 600 };
        options.Servers["mute"] = new McpServerEntry { Command = "sleep", Args = ["600"] };
        options.Servers["ghost"] = Ghost();

        // A guard against a hang only: waiting for 'mute' would take its whole 600 s start timeout.
        var error = await Assert.ThrowsAsync<AgentHostException>(() => McpPlugins.ConnectAsync(options).WaitAsync(TimeSpan.FromSeconds(60)));

        Assert.StartsWith("MCP server 'ghost'", error.Message);
    }

    [Fact]
    public void OnlyKeepsTheServersAmongThePluginNamesWithTheSameTimeouts()
    {
        var options = new McpOptions { StartTimeoutSeconds = 7, CallTimeoutSeconds = 9 };
        options.Servers["git"] = new McpServerEntry { Command = "git-server" };
        options.Servers["search"] = new McpServerEntry { Url = "http://127.0.0.1:9000/mcp" };

        var only = options.Only(["Math", "GIT"]);   // Math is no server; plugin names are case-insensitive, as in a kernel

        Assert.Equal(["git"], only.Servers.Keys);
        Assert.Same(options.Servers["git"], only.Servers["GIT"]);
        Assert.Equal((7, 9), (only.StartTimeoutSeconds, only.CallTimeoutSeconds));
        Assert.Empty(options.Only([]).Servers);
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

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);   // a configuration error: exit 2
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

    /// <summary>A server whose command does not exist.</summary>
    private McpServerEntry Ghost() => new() { Command = _folder.Combine("no-such-server") };

    private void AssertGhostFailedToStart(AgentHostException error)
    {
        Assert.Equal(ErrorKind.InvalidPlugin, error.Kind);
        Assert.StartsWith($"MCP server 'ghost' ({_folder.Combine("no-such-server")}) failed to start", error.Message);
    }

    private McpOptions Options(string mode)
    {
        var options = new McpOptions { StartTimeoutSeconds = 30, CallTimeoutSeconds = 2 };
        options.Servers["scripted"] = ScriptedMcpServer.Entry(_folder, mode);
        return options;
    }

    public void Dispose() => _folder.Dispose();
}
