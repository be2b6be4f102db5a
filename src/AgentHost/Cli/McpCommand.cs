using System.CommandLine;
using AgentHost.SemanticKernel.Mcp;
using ModelContextProtocol.Server;

namespace AgentHost.Cli;

/// <summary>
/// <c>mcp</c>: serves the configured plugins and agents as MCP tools over stdio until the client closes stdin.
/// stdout carries only the protocol (logs go to stderr). The tools of <c>Mcp:Servers</c> are not served again:
/// AgentHost is no MCP proxy, and a server configured with itself would start itself forever.
/// </summary>
internal sealed class McpCommand(AppAgents agents, ILoggerFactory loggerFactory) : ICommand
{
    public string Name => "mcp";

    public string Summary => "Serve the configured plugins and agents as MCP tools over stdio (for MCP clients such as editors and agent apps).";

    public IReadOnlyList<Symbol> Options { get; } = [SharedOptions.Model];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        // The model serves prompt plugins and agents that name none.
        using var session = await agents.OpenAsync(parse.GetValue(SharedOptions.Model), agent: null, cancellationToken);
        var options = McpServerTools.CreateOptions(session.Runner.Kernel, session.Runner);
        await using var server = McpServer.Create(new StdioServerTransport(options, loggerFactory), options, loggerFactory);
        await server.RunAsync(cancellationToken);
        return CliApp.ExitOk;
    }
}
