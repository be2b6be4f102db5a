using System.Text.Json;
using AgentHost.Llama;
using AgentHost.Extensions.AI;
using AgentHost.SemanticKernel.ChatClient;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;

namespace AgentHost.SemanticKernel.Agents;

/// <summary>One step of an agent run: a function call or its result, at a nesting depth (0 = the agent asked).</summary>
/// <param name="Depth">0 for the agent that was asked, 1 for an agent it called, and so on.</param>
/// <param name="Agent">The agent that made the call.</param>
/// <param name="Kind"><c>call</c> or <c>result</c>.</param>
/// <param name="Function">The function (a plugin function or another agent).</param>
/// <param name="Text">The arguments (JSON) of a call, or the text of a result.</param>
/// <param name="Failed">Whether the call failed (its result is the error the model was given).</param>
public sealed record AgentTraceEntry(int Depth, string Agent, string Kind, string Function, string Text, bool Failed = false);

/// <summary>What an agent answered, and every call it (and the agents it called) made on the way.</summary>
/// <param name="Agent">The agent asked.</param>
/// <param name="Answer">Its final answer.</param>
/// <param name="Trace">Calls and results in the order they happened.</param>
/// <param name="Messages">The conversation the agent added (calls, results and the answer).</param>
public sealed record AgentRunResult(string Agent, string Answer, IReadOnlyList<AgentTraceEntry> Trace, IReadOnlyList<ChatMessage> Messages);

/// <summary>
/// Runs agents: the agent's instructions as the system message, its plugins' functions and the agents it
/// lists as tools (an agent is a function taking one <c>input</c> text), the tool loop bounded by its
/// <c>max_tool_rounds</c>, and agents calling agents bounded by <see cref="MaxDepth"/>. A failing, unknown
/// or invalid call (arguments are checked against the function's schema first) becomes an error result for
/// the model, never an exception for the user.
/// </summary>
/// <param name="catalog">The agents.</param>
/// <param name="kernel">The kernel whose plugins agents may use.</param>
/// <param name="clients">The chat client of a catalog model (null: the default model).</param>
public sealed class AgentRunner(AgentCatalog catalog, Kernel kernel, Func<string?, CancellationToken, Task<IChatClient>> clients)
{
    /// <summary>The agents this runner knows.</summary>
    public AgentCatalog Catalog => catalog;

    /// <summary>The kernel whose plugins agents may use.</summary>
    public Kernel Kernel => kernel;

    /// <summary>How deep agents may call agents (default 3: an agent, its helpers and theirs).</summary>
    public int MaxDepth { get; init; } = 3;

    /// <summary>Asks <paramref name="agent"/> one question.</summary>
    public Task<AgentRunResult> RunAsync(string agent, string input, CancellationToken cancellationToken = default)
        => RunAsync(agent, [new ChatMessage(ChatRole.User, input)], cancellationToken);

    /// <summary>Continues a conversation with <paramref name="agent"/> (the history holds user and assistant turns).</summary>
    public async Task<AgentRunResult> RunAsync(string agent, IReadOnlyList<ChatMessage> history, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(history);
        var trace = new List<AgentTraceEntry>();
        return await RunCoreAsync(catalog.Get(agent), history, 0, trace, cancellationToken).ConfigureAwait(false);
    }

    private async Task<AgentRunResult> RunCoreAsync(AgentDefinition agent, IReadOnlyList<ChatMessage> history, int depth, List<AgentTraceEntry> trace, CancellationToken cancellationToken)
    {
        var client = await clients(agent.Model, cancellationToken).ConfigureAwait(false);
        var lastInput = history.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";
        List<ChatMessage> messages = [new(ChatRole.System, agent.RenderInstructions(lastInput)), .. history];
        var tools = ResolveTools(agent, depth, trace);
        var options = new ChatOptions
        {
            MaxOutputTokens = agent.MaxTokens,
            Tools = tools.Count > 0 ? tools : null,
            ToolMode = tools.Count == 0 ? null : agent.ToolChoice switch
            {
                "required" => ChatToolMode.RequireAny,
                "none" => ChatToolMode.None,
                _ => ChatToolMode.Auto,
            },
            AdditionalProperties = agent.DecodingStrategy is null ? null : new() { [ChatRequestMapper.StrategyKey] = agent.DecodingStrategy },
        };

        // A fresh loop per run: its limits are this agent's, and errors go back to the model in detail.
        using var invoking = new FunctionInvokingChatClient(new NonDisposing(client))
        {
            MaximumIterationsPerRequest = agent.MaxToolRounds,
            IncludeDetailedErrors = true,
        };
        var response = await invoking.GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        return new AgentRunResult(agent.Name, response.Messages.LastOrDefault(m => m.Role == ChatRole.Assistant)?.Text ?? "", trace, [.. response.Messages]);
    }

    private List<AITool> ResolveTools(AgentDefinition agent, int depth, List<AgentTraceEntry> trace)
    {
        var tools = new List<AITool>();
        foreach (var entry in agent.Plugins)
        {
            var dot = entry.IndexOf('.', StringComparison.Ordinal);
            var pluginName = dot < 0 ? entry : entry[..dot];
            if (!kernel.Plugins.TryGetPlugin(pluginName, out var plugin))
                throw Invalid(agent, $"'plugins' lists '{pluginName}', which is not loaded. Loaded plugins: {string.Join(", ", kernel.Plugins.Select(p => p.Name))}");
            IEnumerable<KernelFunction> functions = plugin;
            if (dot >= 0)
            {
                functions = plugin.TryGetFunction(entry[(dot + 1)..], out var function) ? [function]
                    : throw Invalid(agent, $"'plugins' lists '{entry}', but plugin {pluginName} has no such function. It has: {string.Join(", ", plugin.Select(f => f.Name))}");
            }
            // Bound to the kernel so prompt functions find its chat client (SK marks this obsolete but has no replacement that binds one).
#pragma warning disable CS0618
            tools.AddRange(functions.Select(f => new TracedFunction(f.AsAIFunction(kernel).WithSchemaCheck(), agent.Name, depth, trace)));
#pragma warning restore CS0618
        }
        foreach (var name in agent.Agents)
        {
            var callee = catalog.Get(name);
            tools.Add(new TracedFunction(AgentFunction(callee, depth + 1, trace).WithSchemaCheck(), agent.Name, depth, trace));
        }
        return tools;
    }

    /// <summary>
    /// <paramref name="agent"/> as a function for callers outside the runner (an MCP client): one <c>input</c> text in,
    /// its answer out; each call is a fresh run.
    /// </summary>
    /// <exception cref="AgentHostException">No agent has that name.</exception>
    public AIFunction AsFunction(string agent)
        => AgentFunction(catalog.Get(agent), depth: 0, trace: null);

    /// <summary>Another agent as a function: one <c>input</c> text in, its answer out (its steps into <paramref name="trace"/>, or a fresh trace per call).</summary>
    private AIFunction AgentFunction(AgentDefinition callee, int depth, List<AgentTraceEntry>? trace)
        => AIFunctionFactory.Create(
            async (string input, CancellationToken cancellationToken) =>
            {
                if (depth > MaxDepth)
                    throw new InvalidOperationException($"Agent '{callee.Name}' was not called: agents may call agents only {MaxDepth} levels deep.");
                var result = await RunCoreAsync(callee, [new ChatMessage(ChatRole.User, input)], depth, trace ?? [], cancellationToken).ConfigureAwait(false);
                return result.Answer;
            },
            callee.Name,
            callee.Description);

    private static AgentHostException Invalid(AgentDefinition agent, string problem)
        => new(ErrorKind.InvalidArgument, $"Agent definition '{agent.Source ?? agent.Name}': {problem}.");

    /// <summary>Records each call and its result (or failure) in the trace as it happens, so nested agents' steps nest in order.</summary>
    private sealed class TracedFunction(AIFunction inner, string agent, int depth, List<AgentTraceEntry> trace) : DelegatingAIFunction(inner)
    {
        protected override async ValueTask<object?> InvokeCoreAsync(AIFunctionArguments arguments, CancellationToken cancellationToken)
        {
            lock (trace)
                trace.Add(new AgentTraceEntry(depth, agent, "call", Name, JsonSerializer.Serialize(arguments.ToDictionary(a => a.Key, a => a.Value))));
            try
            {
                var result = await base.InvokeCoreAsync(arguments, cancellationToken).ConfigureAwait(false);
                lock (trace)
                    trace.Add(new AgentTraceEntry(depth, agent, "result", Name, ResultText(result)));
                return result;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                lock (trace)
                    trace.Add(new AgentTraceEntry(depth, agent, "result", Name, e.Message, Failed: true));
                throw;   // the invoking loop turns it into an error result for the model
            }
        }

        private static string ResultText(object? result) => result switch
        {
            null => "",
            string text => text,
            JsonElement { ValueKind: JsonValueKind.String } element => element.GetString()!,
            JsonElement element => element.GetRawText(),
            _ => JsonSerializer.Serialize(result),
        };
    }

    /// <summary>The invoking loop disposes its inner client; the shared model client must outlive it.</summary>
    private sealed class NonDisposing(IChatClient inner) : DelegatingChatClient(inner)
    {
        protected override void Dispose(bool disposing)
        {
        }
    }
}
