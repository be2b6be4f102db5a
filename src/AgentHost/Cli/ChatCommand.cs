using AgentHost.Llama;
using System.CommandLine;
using System.Globalization;
using AgentHost.Llama.Hosting;
using AgentHost.SemanticKernel.ToolTokens;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Models;
using AgentHost.Llama.ToolTokens;
using AgentHost.Extensions.AI;
using AgentHost.Extensions.AI.Chat;
using AgentHost.Extensions.AI.Remote;
using AgentHost.SemanticKernel.ChatClient;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
using FunctionCallContent = Microsoft.Extensions.AI.FunctionCallContent;
using FunctionResultContent = Microsoft.Extensions.AI.FunctionResultContent;

namespace AgentHost.Cli;

/// <summary>
/// <c>chat</c>: an interactive conversation with a model. Reads one user turn per line from stdin (a
/// terminal or a pipe), streams each reply to stdout and keeps the history, whose shared prefix the
/// prompt cache does not decode again. Slash commands steer the session.
/// </summary>
internal sealed class ChatCommand(ILlamaModelProvider models, AppPlugins plugins, AppAgents agents, AgentHostOptions hostOptions, ToolTokenTools toolTokenTools) : ICommand
{
    private const string CommandHelp = "commands: /reset (forget the conversation), /strategy NAME, /stats (last reply), /help, /exit";

    private static readonly Option<string?> _system = CliOption.Text("--system", "System message that starts the conversation.", "TEXT");
    private static readonly Option<string> _strategy = SharedOptions.Strategy();
    private static readonly Option<int> _maxTokens = SharedOptions.MaxTokens(256, "Most tokens per reply.");
    private static readonly Option<string?> _format = CliOption.Text("--format", "Chat format name (default: detected from the model).", "NAME");
    private static readonly Option<string?> _agent = CliOption.Text("--agent", "Chat with an agent from prompts/agents (its instructions, tools and strategy); the trace of its calls goes to stderr.", "NAME");
    private static readonly Option<string> _tools = CliOption.Text("--tools", "Offer the configured plugins as tools: none, auto or required.", "MODE", "none", "none", "auto", "required");
    private static readonly Option<string[]> _plugin = CliOption.Repeated("--plugin", "With --tools: offer only this plugin (Math) or function (Math.Add); default all.", "NAME");
    private static readonly Option<bool> _printPrompt = CliOption.Flag("--print-prompt",
        "Generate nothing: print the prompt the model would see for --system, the tools and one user turn per input line, control tokens marked (--json: its pieces and token count).");

    public string Name => "chat";

    public string Summary => "Chat with a model: one turn per input line, replies streamed; /reset, /strategy NAME, /stats, /exit.";

    public IReadOnlyList<Symbol> Options { get; } =
    [
        SharedOptions.Model,
        _system,
        _strategy,
        _maxTokens,
        SharedOptions.Temperature,
        SharedOptions.TopK,
        SharedOptions.TopP,
        SharedOptions.Seed,
        _format,
        _agent,
        _tools,
        _plugin,
        _printPrompt,
        SharedOptions.Json,
        .. StrategyArguments.Options,
    ];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var knobs = StrategyArguments.Values(parse);
        var head = knobs.GetValueOrDefault(ToolTokenStrategy.HeadKey);
        var strategy = parse.Has(_strategy) ? parse.GetValue(_strategy)! : head is null ? DecodingStrategies.Greedy.Name : ToolTokenStrategy.StrategyName;
        // Validates the strategy and that every knob applies to it (a head's tools are the built-in ones).
        StrategyArguments.Create(parse, [strategy], new StrategyContext { ResolveTools = toolTokenTools.Resolve });
        var headTools = head is null ? null : toolTokenTools.Functions(ToolTokenHead.Load(head).Tools.Select(t => t.Name));
        var baseOptions = new ChatOptions
        {
            MaxOutputTokens = parse.GetValue(_maxTokens),
            Temperature = parse.Given(SharedOptions.Temperature),
            TopK = parse.Given(SharedOptions.TopK),
            TopP = parse.Given(SharedOptions.TopP),
            Seed = parse.GetValue(SharedOptions.Seed) is { } seed ? unchecked((long)seed) : null,
        };

        var printPrompt = parse.GetValue(_printPrompt);
        if (parse.GetValue(SharedOptions.Json) && !printPrompt)
            throw CliOption.Usage("--json applies to chat only with --print-prompt.");
        if (parse.GetValue(_agent) is { } agentName)
        {
            if (printPrompt)
                throw CliOption.Usage("--print-prompt does not apply with --agent: an agent builds its own conversation.");
            return await RunAgentChatAsync(parse, agentName, cancellationToken);
        }
        baseOptions.ToolMode = parse.GetValue(_tools) switch
        {
            "none" => null,
            "auto" => ChatToolMode.Auto,
            "required" => ChatToolMode.RequireAny,
            var other => throw CliOption.Usage($"--tools must be none, auto or required, not '{other}'."),
        };

        using var modelClient = await ModelChatClients.CreateAsync(models, hostOptions, parse.GetValue(SharedOptions.Model),
            new LlamaChatClientOptions { ChatFormat = parse.GetValue(_format), FormatsDirectory = hostOptions.FormatsDirectory(), HiddenStates = head is not null },
            cancellationToken: cancellationToken);
        if (modelClient is RemoteChatClient remote)
        {
            if (printPrompt)
                throw CliOption.Usage($"--print-prompt needs a local model: remote model '{remote.Name}''s endpoint formats the chat itself.");
            if (parse.Has(_format))
                throw CliOption.Usage($"--format does not apply to remote model '{remote.Name}': its endpoint formats the chat itself.");
            remote.ToEndpointOptions(WithStrategy(baseOptions, strategy, knobs, headTools));   // a token-level strategy is refused now, not at the first turn
        }
        IChatClient client = modelClient;
        if (baseOptions.ToolMode is not null)
        {
            var kernel = new Kernel();
            var selected = parse.GetValue(_plugin)!;
            // Every MCP server, or only those --plugin names (Plugin or Plugin.Function).
            await plugins.ImportAsync(kernel, selected.Length == 0 ? null : selected.Select(name => name.Split('.', 2)[0]), cancellationToken);
#pragma warning disable CS0618   // binds each function to the kernel (prompt functions need its services); SK 1.82 has no other way
            baseOptions.Tools = [.. SelectFunctions(kernel, selected).Select(f => f.AsAIFunction(kernel).WithSchemaCheck())];
#pragma warning restore CS0618
            client = new FunctionInvokingChatClient(modelClient) { IncludeDetailedErrors = true, MaximumIterationsPerRequest = 4 };
        }
        var system = parse.GetValue(_system);
        var history = NewHistory(system);
        if (printPrompt)
            return await PrintPromptAsync((LlamaChatClient)modelClient, history, WithStrategy(baseOptions, strategy, knobs, headTools), parse.GetValue(SharedOptions.Json), cancellationToken);
        var interactive = !Console.IsInputRedirected;
        if (interactive)
            Console.Error.WriteLine($"chatting with {Describe(modelClient)} ({strategy}{(baseOptions.Tools is { } tools ? $", {tools.Count} tools" : "")}); {CommandHelp}");

        ChatResponse? last = null;
        var failures = 0;
        while (true)
        {
            if (interactive)
                Console.Out.Write("> ");
            var input = await BoundedFile.ReadLineAsync(Console.In, BoundedFile.MaxLineChars, cancellationToken);
            if (input is null)
                break;
            input = input.Trim();
            if (input.Length == 0)
                continue;

            if (input.StartsWith('/'))
            {
                var parts = input.Split(' ', 2, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                switch (parts[0])
                {
                    case "/exit" or "/quit":
                        return failures == 0 ? CliApp.ExitOk : CliApp.ExitError;
                    case "/reset":
                        history = NewHistory(system);
                        Console.Error.WriteLine("[conversation reset]");
                        break;
                    case "/strategy" when parts.Length == 2:
                        try
                        {
                            strategy = head is not null && parts[1] == ToolTokenStrategy.StrategyName ? parts[1] : DecodingStrategies.Find(parts[1]).Name;
                            Console.Error.WriteLine($"[strategy: {strategy}]");
                        }
                        catch (AgentHost.Llama.AgentHostException ex)
                        {
                            Console.Error.WriteLine($"error: {ex.Message}");
                        }
                        break;
                    case "/stats":
                        Console.Error.WriteLine(last is null ? "[no reply yet]" : FormatStats(last));
                        break;
                    case "/help":
                        Console.Error.WriteLine(CommandHelp);
                        break;
                    default:
                        Console.Error.WriteLine($"error: unknown command '{input}'; {CommandHelp}");
                        break;
                }
                continue;
            }

            var options = WithStrategy(baseOptions, strategy, knobs, headTools);
            if (!await TakeTurnAsync(history, input, async () =>
            {
                last = await StreamReplyAsync(client, history, options, cancellationToken);
                return last.Messages;
            }))
            {
                failures++;
            }
        }
        return failures == 0 ? CliApp.ExitOk : CliApp.ExitError;
    }

    /// <summary>
    /// <c>chat --print-prompt</c>: one user turn per input line (blank lines skipped), rendered exactly as a turn would
    /// be fed to the model, printed with its control tokens marked: coloured on a terminal (control tokens reversed,
    /// the format's other markup dimmed, content plain), else each control token inside ⟦ ⟧; <c>--json</c> gives the
    /// pieces (content, markup, control tokens with their ids) and the token count.
    /// </summary>
    private static async Task<int> PrintPromptAsync(LlamaChatClient client, List<ChatMessage> history, ChatOptions options, bool json, CancellationToken cancellationToken)
    {
        while (await BoundedFile.ReadLineAsync(Console.In, BoundedFile.MaxLineChars, cancellationToken) is { } line)
        {
            if (line.Trim().Length > 0)
                history.Add(new ChatMessage(ChatRole.User, line.Trim()));
        }
        var prompt = client.RenderPrompt(history, options);
        var pieces = prompt.Annotate(client.Model);
        var format = client.Format;
        if (json)
        {
            Console.Out.WriteLine(JsonOutput.Serialize(new Dictionary<string, object?>
            {
                ["model"] = client.Model.Name,
                ["format"] = format.Name,
                ["family"] = format.Family,
                ["tool_call_format"] = format.ToolCalls.Name,
                ["tokens"] = prompt.Tokenize(client.Model).Length,
                ["prompt"] = prompt.Text,
                ["pieces"] = pieces.Select(p => new Dictionary<string, object?>
                {
                    ["kind"] = p.Kind switch { PromptPieceKind.Content => "content", PromptPieceKind.Markup => "markup", _ => "control_token" },
                    ["text"] = p.Text,
                    ["token"] = p.Kind == PromptPieceKind.ControlToken ? p.Token : null,
                }).ToList(),
            }));
            return CliApp.ExitOk;
        }

        var colour = !Console.IsOutputRedirected && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));
        var text = new System.Text.StringBuilder();
        foreach (var piece in pieces)
        {
            text.Append((piece.Kind, colour) switch
            {
                (PromptPieceKind.ControlToken, true) => $"\u001b[7;36m{piece.Text}\u001b[0m",
                (PromptPieceKind.ControlToken, false) => $"⟦{piece.Text}⟧",
                (PromptPieceKind.Markup, true) => $"\u001b[2;33m{piece.Text}\u001b[0m",
                _ => piece.Text,
            });
        }
        Console.Out.WriteLine(text.ToString());
        Console.Error.WriteLine($"[{client.Model.Name}: {format}, tool calls {format.ToolCalls.Name}, {prompt.Tokenize(client.Model).Length} tokens]");
        return CliApp.ExitOk;
    }

    private static string Describe(IChatClient client) => client switch
    {
        LlamaChatClient llama => $"{llama.Model.Name}, {llama.Format.Name} format",
        RemoteChatClient remote => $"{remote.Name}, remote at {remote.Endpoint}",
        _ => client.GetService<ChatClientMetadata>()?.DefaultModelId ?? "a model",
    };

    internal static IEnumerable<KernelFunction> SelectFunctions(Kernel kernel, IReadOnlyList<string> names)
    {
        if (names.Count == 0)
            return kernel.Plugins.SelectMany(p => p);
        return names.SelectMany(name =>
        {
            var parts = name.Split('.', 2);
            if (!kernel.Plugins.TryGetPlugin(parts[0], out var plugin))
                throw CliOption.Usage($"--plugin {name}: no plugin '{parts[0]}' is loaded (loaded: {string.Join(", ", kernel.Plugins.Select(p => p.Name))}).");
            if (parts.Length == 1)
                return plugin;
            return plugin.TryGetFunction(parts[1], out var function) ? [function]
                : throw CliOption.Usage($"--plugin {name}: plugin {plugin.Name} has no function '{parts[1]}' (it has: {string.Join(", ", plugin.Select(f => f.Name))}).");
        });
    }

    /// <summary>Chat with an agent: each turn runs the agent (tools, other agents) over the conversation so far.</summary>
    private async Task<int> RunAgentChatAsync(ParseResult parse, string agentName, CancellationToken cancellationToken)
    {
        foreach (var other in new Option[] { _strategy, _tools, _system, _format })
        {
            if (parse.Has(other))
                throw CliOption.Usage($"{other.Name} does not apply with --agent: the agent's definition sets it.");
        }
        using var session = await agents.OpenAsync(parse.GetValue(SharedOptions.Model), agentName, cancellationToken);   // an unknown agent is a usage error here
        var history = new List<ChatMessage>();
        var failures = 0;
        while (await BoundedFile.ReadLineAsync(Console.In, BoundedFile.MaxLineChars, cancellationToken) is { } input)
        {
            input = input.Trim();
            if (input.Length == 0)
                continue;
            if (input is "/exit" or "/quit")
                break;
            if (input == "/reset")
            {
                history.Clear();
                Console.Error.WriteLine("[conversation reset]");
                continue;
            }
            if (!await TakeTurnAsync(history, input, async () =>
            {
                var result = await session.Runner.RunAsync(agentName, history, cancellationToken);
                RunCommand.PrintTrace(result.Trace);
                Console.Out.WriteLine(result.Answer);
                return result.Messages;
            }))
            {
                failures++;
            }
        }
        return failures == 0 ? CliApp.ExitOk : CliApp.ExitError;
    }

    /// <summary>
    /// One user turn: on success the reply's messages join the history; on a user-facing error (e.g. a full
    /// context: /reset helps) the turn is dropped, the error printed, and the session goes on.
    /// </summary>
    private static async Task<bool> TakeTurnAsync(List<ChatMessage> history, string input, Func<Task<IEnumerable<ChatMessage>>> reply)
    {
        history.Add(new ChatMessage(ChatRole.User, input));
        try
        {
            history.AddRange(await reply());
            return true;
        }
        catch (AgentHost.Llama.AgentHostException ex)
        {
            history.RemoveAt(history.Count - 1);
            Console.Error.WriteLine($"error: {ex.Message}");
            return false;
        }
    }

    private static List<ChatMessage> NewHistory(string? system)
        => system is null ? [] : [new ChatMessage(ChatRole.System, system)];

    /// <summary>The options of one turn: the current strategy, with only the knobs it declares.</summary>
    private static ChatOptions WithStrategy(ChatOptions baseOptions, string strategy, Dictionary<string, string> knobs, IReadOnlyList<AIFunction>? headTools)
    {
        var options = baseOptions.Clone();
        var descriptor = DecodingStrategies.Find(strategy);
        options.AdditionalProperties = new() { [ChatRequestMapper.StrategyKey] = strategy };
        foreach (var option in descriptor.Options)
        {
            if (knobs.TryGetValue(option.Key, out var value))
                options.AdditionalProperties[option.Key] = value;
        }
        // A strategy that fires tools itself (tool tokens) gets the built-in tools its head names, not the offered plugins.
        if (descriptor.CallsTools)
        {
            options.Tools = [.. headTools ?? []];
            options.ToolMode = null;
        }
        if (descriptor.Sampling == SamplingUse.Never)
        {
            options.Temperature = null;
            options.TopK = null;
            options.TopP = null;
            options.Seed = null;
        }
        return options;
    }

    private static async Task<ChatResponse> StreamReplyAsync(IChatClient client, List<ChatMessage> history, ChatOptions options, CancellationToken cancellationToken)
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync(history, options, cancellationToken))
        {
            updates.Add(update);
            Console.Out.Write(update.Text);
        }
        Console.Out.WriteLine();
        Console.Out.Flush();
        var response = updates.ToChatResponse();
        foreach (var content in response.Messages.SelectMany(m => m.Contents))
        {
            if (content is FunctionCallContent call)
                Console.Error.WriteLine($"[tool] -> {call.Name} {System.Text.Json.JsonSerializer.Serialize(call.Arguments)}");
            else if (content is FunctionResultContent result)
                Console.Error.WriteLine($"[tool] <- {(result.Exception is null ? "" : "failed: ")}{result.Result}");
        }
        // Folding updates keeps usage but not the strategy and its statistics, which ride on the last update.
        response.AdditionalProperties = updates[^1].AdditionalProperties;
        return response;
    }

    private static string FormatStats(ChatResponse response)
    {
        var usage = response.Usage;
        var properties = response.AdditionalProperties;
        var parts = new List<string>
        {
            $"strategy {properties?.GetValueOrDefault(ChatRequestMapper.StrategyKey) ?? "of the endpoint"}",
            $"prompt {usage?.InputTokenCount} tokens ({usage?.CachedInputTokenCount} from cache)",
            $"reply {usage?.OutputTokenCount} tokens",
            $"finish {response.FinishReason}",
        };
        if (properties?.GetValueOrDefault(LlamaChatClient.StatsKey) is Dictionary<string, double> stats)
            parts.AddRange(stats.Select(s => $"{s.Key} {s.Value.ToString("0.##", CultureInfo.InvariantCulture)}"));
        return $"[{string.Join(", ", parts)}]";
    }
}
