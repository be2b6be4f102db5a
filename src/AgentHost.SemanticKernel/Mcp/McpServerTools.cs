using System.Text.Json;
using AgentHost.Llama;
using AgentHost.SemanticKernel.Agents;
using AgentHost.SemanticKernel.ChatClient;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace AgentHost.SemanticKernel.Mcp;

/// <summary>
/// What AgentHost serves over MCP: every function of a kernel's plugins (named <c>Plugin_Function</c>, as a model
/// sees it, with the JSON schema of its parameters) and every agent of a runner (a tool taking one <c>input</c> text).
/// Arguments are checked against the schema first; any failure becomes an MCP error result (<c>isError</c>) with
/// its message, never a failed server.
/// </summary>
public static class McpServerTools
{
    /// <summary>The tools of <paramref name="kernel"/>'s plugins and, when given, <paramref name="agents"/>' agents.</summary>
    /// <param name="kernel">The kernel whose plugins are served; prompt functions run on its chat client.</param>
    /// <param name="agents">The agents to serve, or null for none.</param>
    /// <returns>The tools, plugins first.</returns>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidPlugin"/>: an agent is named like a plugin function.</exception>
    public static IReadOnlyList<McpServerTool> Create(Kernel kernel, AgentRunner? agents)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        var functions = new List<AIFunction>();
#pragma warning disable CS0618   // binds each function to the kernel (prompt functions need its services); SK 1.82 has no other way
        functions.AddRange(kernel.Plugins.SelectMany(p => p).Select(f => f.AsAIFunction(kernel)));
#pragma warning restore CS0618
        if (agents is not null)
            functions.AddRange(agents.Catalog.Names.Select(agents.AsFunction));

        var tools = new List<McpServerTool>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var function in functions)
        {
            if (!names.Add(function.Name))
                throw new AgentHostException(ErrorKind.InvalidPlugin, $"Two MCP tools would be named '{function.Name}': rename the agent or the plugin function.");
            tools.Add(McpServerTool.Create(new Served(function.WithSchemaCheck())));
        }
        return tools;
    }

    /// <summary>An MCP server's options: AgentHost's identity and the tools of <see cref="Create"/>, the same over stdio and HTTP.</summary>
    /// <param name="kernel">The kernel whose plugins are served.</param>
    /// <param name="agents">The agents to serve, or null for none.</param>
    /// <returns>The options for <see cref="McpServer.Create"/> or a hosted server.</returns>
    public static McpServerOptions CreateOptions(Kernel kernel, AgentRunner? agents)
    {
        var options = new McpServerOptions
        {
            ServerInfo = new Implementation { Name = "agenthost", Version = typeof(McpServerTools).Assembly.GetName().Version?.ToString() ?? "0" },
            ToolCollection = [],
        };
        foreach (var tool in Create(kernel, agents))
            options.ToolCollection.Add(tool);
        return options;
    }

    /// <summary>
    /// A served function: a text result as plain text (SK hands it back as a JSON string, which clients would show
    /// quoted), and every failure as an <see cref="McpException"/>, the one exception whose message the SDK passes on.
    /// </summary>
    private sealed class Served(AIFunction inner) : DelegatingAIFunction(inner)
    {
        protected override async ValueTask<object?> InvokeCoreAsync(AIFunctionArguments arguments, CancellationToken cancellationToken)
        {
            try
            {
                var result = await base.InvokeCoreAsync(arguments, cancellationToken).ConfigureAwait(false);
                return result is JsonElement { ValueKind: JsonValueKind.String } text ? text.GetString() : result;
            }
            catch (Exception e) when (e is not (OperationCanceledException or McpException))
            {
                throw new McpException($"{Name} failed: {e.Message}", e);
            }
        }
    }
}
