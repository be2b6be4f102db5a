using System.Text.Json;
using System.Text.Json.Nodes;
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
        // A tools/call whose params the SDK cannot bind (no name, arguments that are not an object, text that is not
        // valid UTF-16) would be JSON-RPC -32603 "An error occurred.": it becomes an isError result saying what was wrong.
        options.Filters.Message.IncomingFilters.Add(next => (context, cancellationToken) =>
        {
            if (context.JsonRpcMessage is JsonRpcRequest { Method: RequestMethods.ToolsCall } request && InvalidCall(request.Params) is { } replacement)
                request.Params = replacement;
            return next(context, cancellationToken);
        });
        options.Filters.Request.CallToolFilters.Add(next => (context, cancellationToken) =>
            context.Params?.Meta?[InvalidCallKey] is JsonValue problem && problem.TryGetValue<string>(out var text)
                ? ValueTask.FromResult(new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = text }] })
                : next(context, cancellationToken));
        return options;
    }

    private const string InvalidCallKey = "agenthost/invalid-call";

    /// <summary>
    /// Checks a tools/call's params as the SDK will bind them; when they cannot be bound, returns a call that binds
    /// (an empty name and arguments) carrying the problem in <c>_meta</c>, for the call filter to answer; else null.
    /// </summary>
    private static JsonObject? InvalidCall(JsonNode? parameters)
    {
        string? problem;
        try
        {
            problem = parameters is JsonObject call ? InvalidCallProblem(call) : $"The tool call's params must be an object, not {Kind(parameters)}.";
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException)
        {
            problem = "The tool call holds a name or key that is not valid text (a lone surrogate or an invalid escape).";
        }
        return problem is null ? null : new JsonObject
        {
            ["name"] = "",
            ["arguments"] = new JsonObject(),
            ["_meta"] = new JsonObject { [InvalidCallKey] = problem },
        };
    }

    private static string? InvalidCallProblem(JsonObject call)
    {
        string? name;
        try
        {
            name = call["name"] is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException)
        {
            return "The tool call's name is not valid text (it holds a lone surrogate or an invalid escape).";
        }
        if (name is null)
        {
            return call.ContainsKey("name")
                ? $"The tool call's name must be a string, not {Kind(call["name"])}."
                : "The tool call has no tool name ('name').";
        }
        var label = name.Length > 64 ? name[..64] + "..." : name;
        if (call["arguments"] is { } arguments && arguments.GetValueKind() != JsonValueKind.Null)
        {
            if (arguments is not JsonObject)
                return $"{label}: the arguments must be a JSON object of named values, not {Kind(arguments)}.";
            if (FirstInvalidText(arguments, "arguments") is { } where)
                return $"{label}: {where} is not valid text (it holds a lone surrogate or an invalid escape).";
        }
        if (call["_meta"] is { } meta && meta is not JsonObject)
            return $"{label}: '_meta' must be an object, not {Kind(meta)}.";
        return null;
    }

    // The path of the first string (key or value) that cannot be read as .NET text, or null.
    private static string? FirstInvalidText(JsonNode node, string path)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, child) in obj)
                {
                    if (child is not null && FirstInvalidText(child, $"{path}.{key}") is { } found)
                        return found;
                }
                return null;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    if (array[i] is { } child && FirstInvalidText(child, $"{path}[{i}]") is { } found)
                        return found;
                }
                return null;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                try
                {
                    _ = value.GetValue<string>();
                    return null;
                }
                catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException)
                {
                    return path;
                }
            default:
                return null;
        }
    }

    private static string Kind(JsonNode? node) => node?.GetValueKind() switch
    {
        null or JsonValueKind.Null => "null",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        _ => "a boolean",
    };

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
