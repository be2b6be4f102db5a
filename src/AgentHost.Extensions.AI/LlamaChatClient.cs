using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;
using AgentHost.Llama;
using AgentHost.Llama.ToolTokens;
using AgentHost.Extensions.AI.Chat;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace AgentHost.Extensions.AI;

/// <summary>
/// An <see cref="IChatClient"/> on a local model: renders the conversation in the model's chat format,
/// decodes with any AgentHost strategy (chosen per request through <see cref="ChatOptions"/>, see
/// <see cref="ChatRequestMapper"/>) and reuses the KV cache of earlier turns. Safe for concurrent use: every
/// request, whatever its strategy, is a slot of the client's <see cref="DecodeEngine"/> and is decoded in one shared
/// batch with the others.
/// </summary>
public sealed partial class LlamaChatClient : IChatClient
{
    /// <summary>Provider name in <see cref="ChatClientMetadata"/>.</summary>
    public const string ProviderName = "agenthost";

    /// <summary>Key of the strategy's statistics in a response's <c>AdditionalProperties</c>.</summary>
    public const string StatsKey = "decoding_stats";

    /// <summary>Key, in a response's <c>AdditionalProperties</c>, of how many prompt tokens the offered tools cost.</summary>
    public const string ToolTokensKey = "tool_tokens";

    private readonly LlamaChatClientOptions _options;
    private readonly DecodeEngine _engine;
    private readonly ChatClientMetadata _metadata;
    private readonly IReadOnlyList<int> _stopTokens;
    private readonly ILogger _logger;
    private readonly GenerationTelemetry _telemetry;

    /// <summary>Creates a client on <paramref name="model"/> (not owned: the caller disposes the model after the client).</summary>
    /// <param name="model">The model.</param>
    /// <param name="options">How to serve it; defaults when null.</param>
    /// <param name="logger">Receives per-request facts such as the tools' token cost.</param>
    /// <param name="meterFactory">Creates the <see cref="AgentHostTelemetry.MeterName"/> meter (a container's, so its listeners see this client); null for a process-wide one.</param>
    public LlamaChatClient(LlamaModel model, LlamaChatClientOptions? options = null, ILogger? logger = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        _logger = logger ?? NullLogger.Instance;
        _options = options ?? new LlamaChatClientOptions();
        DecodingStrategies.Find(_options.DefaultStrategy);   // a bad default fails here, not on the first request
        var catalog = _options.FormatsDirectory is null ? ChatFormatCatalog.Default : new ChatFormatCatalog(_options.FormatsDirectory);
        Format = catalog.Resolve(model, _options.ChatFormat);
        _stopTokens = Format.GetStopTokens(model);
        _engine = new DecodeEngine(model, _options.HiddenStates, _options.ContinuousBatching);
        _metadata = new ChatClientMetadata(ProviderName, null, model.Name);
        _telemetry = new GenerationTelemetry(meterFactory);
    }

    /// <summary>The model this client decodes with.</summary>
    public LlamaModel Model { get; }

    /// <summary>The chat format conversations are rendered in.</summary>
    public ChatFormat Format { get; }

    /// <summary>Requests waiting or decoding (the queue depth).</summary>
    public int PendingRequests => _engine.Pending;

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        using var telemetry = _telemetry.Start(GenerationTelemetry.Chat, Model.Name, options);
        var call = Prepare(messages, options, cancellationToken);
        var result = await RunAsync(call, cancellationToken).ConfigureAwait(false);

        IList<AIContent> contents = call.Reader is { } reader ? [.. reader.ParseAll(result.Text)] : [new TextContent(result.Text)];
        EnsureCallsComplete(call, result, contents);
        EnsureJsonComplete(call, options, result, contents);
        var finishReason = result.StopReason.ToFinishReason(contents.Any(c => c is FunctionCallContent));
        telemetry.Finish(result, finishReason);
        var properties = ToProperties(result, call.ToolTokens);
        if (call.Request.Trace is { } trace)
            properties[ChatRequestMapper.DecodingTraceKey] = trace.Events;
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, contents) { MessageId = call.Id })
        {
            ResponseId = call.Id,
            ModelId = Model.Name,
            CreatedAt = call.Created,
            FinishReason = finishReason,
            Usage = result.Stats.ToUsage(),
            AdditionalProperties = properties,
            RawRepresentation = result,
        };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var telemetry = _telemetry.Start(GenerationTelemetry.Chat, Model.Name, options);
        var call = Prepare(messages, options, cancellationToken);
        GenerationResult? result = null;
        var calls = 0;
        List<TokenLogprob>? logprobs = null;   // the tokens' log-probabilities not yet handed out (requests that ask for them)
        await foreach (var update in RunStreamingAsync(call, cancellationToken).ConfigureAwait(false))
        {
            if (update.Logprobs is { Count: > 0 } more)
                (logprobs ??= []).AddRange(more);
            if (update.Result is not null)
            {
                result = update.Result;
                break;
            }
            // Reasoning streams as TextReasoningContent; tool calls as whole FunctionCallContent items once the parser has seen a call end.
            IList<AIContent> contents = call.Reader is { } reader ? [.. reader.Push(update.Text)] : [new TextContent(update.Text)];
            calls += contents.Count(c => c is FunctionCallContent);
            if (contents.Count > 0)
            {
                var chunk = Update(call, contents);
                if (logprobs is { Count: > 0 })
                {
                    // Each chunk carries the tokens decoded since the previous chunk (text a parser holds back waits with its tokens).
                    (chunk.AdditionalProperties ??= [])[ChatRequestMapper.LogprobsKey] = logprobs.ToArray();
                    logprobs.Clear();
                }
                if (call.Request.Trace?.TakeNew() is { } events)
                    (chunk.AdditionalProperties ??= [])[ChatRequestMapper.DecodingTraceKey] = events;
                yield return chunk;
            }
        }

        List<AIContent> rest = [.. call.Reader?.Complete() ?? []];
        calls += rest.Count(c => c is FunctionCallContent);
        EnsureCallsComplete(call, result!, rest, calls > 0);
        var last = Update(call, [.. rest, new UsageContent(result!.Stats.ToUsage())]);
        var finishReason = result.StopReason.ToFinishReason(calls > 0);
        last.FinishReason = finishReason;
        last.AdditionalProperties = ToProperties(result, call.ToolTokens);
        // The last chunk carries the rest; the whole list is the result's (RawRepresentation).
        if (logprobs is { Count: > 0 })
            last.AdditionalProperties[ChatRequestMapper.LogprobsKey] = logprobs.ToArray();
        else
            last.AdditionalProperties.Remove(ChatRequestMapper.LogprobsKey);
        if (call.Request.Trace?.TakeNew() is { } lastEvents)
            last.AdditionalProperties[ChatRequestMapper.DecodingTraceKey] = lastEvents;
        last.RawRepresentation = result;
        telemetry.Finish(result, finishReason);
        yield return last;
    }

    /// <summary>
    /// Continues <paramref name="prompt"/> as plain text (no chat format), with the same options, slots and
    /// prompt cache as chats.
    /// </summary>
    public async Task<GenerationResult> CompleteAsync(string prompt, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        using var telemetry = _telemetry.Start(GenerationTelemetry.TextCompletion, Model.Name, options);
        var result = await RunAsync(PrepareCompletion(prompt, options), cancellationToken).ConfigureAwait(false);
        telemetry.Finish(result, result.StopReason.ToFinishReason());
        return result;
    }

    /// <summary>As <see cref="CompleteAsync"/>, streaming the text; the last update carries the result.</summary>
    public async IAsyncEnumerable<GenerationUpdate> CompleteStreamingAsync(string prompt, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var telemetry = _telemetry.Start(GenerationTelemetry.TextCompletion, Model.Name, options);
        await foreach (var update in RunStreamingAsync(PrepareCompletion(prompt, options), cancellationToken).ConfigureAwait(false))
        {
            if (update.Result is { } result)
                telemetry.Finish(result, result.StopReason.ToFinishReason());
            yield return update;
        }
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
            return null;
        if (serviceType == typeof(ChatClientMetadata))
            return _metadata;
        if (serviceType == typeof(LlamaModel))
            return Model;
        if (serviceType == typeof(ChatFormat))
            return Format;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Frees the engine's context (not the model).</summary>
    public void Dispose() => _engine.Dispose();

    /// <summary>Runs a generation in the engine's shared batch.</summary>
    private Task<GenerationResult> RunAsync(PreparedCall call, CancellationToken cancellationToken)
        => _engine.GenerateAsync(call.Strategy, call.Request, cancellationToken);

    /// <summary>As <see cref="RunAsync"/>, streaming.</summary>
    private IAsyncEnumerable<GenerationUpdate> RunStreamingAsync(PreparedCall call, CancellationToken cancellationToken)
        => _engine.GenerateStreamingAsync(call.Strategy, call.Request, cancellationToken);

    private PreparedCall PrepareCompletion(string prompt, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var descriptor = ChatRequestMapper.ChooseStrategy(options, _options.DefaultStrategy);
        var strategy = CreateStrategy(options, descriptor);
        var tokens = prompt.Length == 0 ? [] : Model.Tokenize(prompt, Model.Vocabulary.AddBos);
        var request = ChatRequestMapper.CreateRequest(prompt, tokens, options, _options, [], descriptor);
        request.Validate();   // before waiting for a slot
        return new PreparedCall(descriptor, strategy, request, tokens, null, false, 0, $"cmpl-{Guid.NewGuid():N}", DateTimeOffset.UtcNow);
    }

    /// <summary>
    /// The request's strategy from the engine's factory, in this client's context: its file options policy and
    /// matrix file, and, for strategies that call tools themselves (tool tokens), the request's invocable functions.
    /// </summary>
    private IDecodingStrategy CreateStrategy(ChatOptions? options, StrategyDescriptor descriptor)
    {
        return ChatRequestMapper.CreateStrategy(options, descriptor, new StrategyContext
        {
            AllowFileOptions = _options.AllowFileOptions,
            HiddenStates = _options.HiddenStates,
            Defaults = _options.RecyclingMatrixFile is { } matrix ? new Dictionary<string, string> { [RecyclingStrategy.MatrixOption] = matrix } : new Dictionary<string, string>(),
            ResolveTools = names => RequestTools(options, names),
        });
    }

    /// <summary>The request's invocable functions with these names, in this order, as tools a strategy can call.</summary>
    private static IReadOnlyList<ToolDefinition> RequestTools(ChatOptions? options, IReadOnlyList<string> names)
    {
        var functions = options?.Tools?.OfType<AIFunction>().ToDictionary(f => f.Name, StringComparer.Ordinal) ?? [];
        return [.. names.Select(name => functions.TryGetValue(name, out var function) ? function.AsToolDefinition()
            : throw new AgentHostException(ErrorKind.InvalidArgument, $"The tool-token head calls '{name}', which is not among the request's tools (invocable functions are needed)."))];
    }

    /// <summary>
    /// The prompt a chat request with these messages and options would feed the model (no generation): the options'
    /// instructions as a leading system message, the tools on offer (none when the tool mode is None or the strategy
    /// calls tools itself), rendered by <see cref="Format"/>. <see cref="ChatPrompt.Tokenize"/> gives its tokens.
    /// </summary>
    /// <param name="messages">The conversation.</param>
    /// <param name="options">The request's options, or null.</param>
    /// <param name="addGenerationPrompt">Whether to open the assistant's turn at the end, as a request does.</param>
    /// <returns>The rendered prompt.</returns>
    /// <exception cref="AgentHostException">The format refuses the conversation (e.g. a template's <c>raise_exception</c>),
    /// or the options name an unknown strategy (<see cref="ErrorKind.InvalidArgument"/>).</exception>
    public ChatPrompt RenderPrompt(IEnumerable<ChatMessage> messages, ChatOptions? options = null, bool addGenerationPrompt = true)
    {
        var (conversation, tools, _) = Conversation(messages, options);
        return Format.Render(conversation, tools, addGenerationPrompt);
    }

    private (List<ChatMessage> Conversation, List<AIFunctionDeclaration>? Tools, StrategyDescriptor Descriptor) Conversation(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var conversation = messages.ToList();
        if (options?.Instructions is { Length: > 0 } instructions)
            conversation.Insert(0, new ChatMessage(ChatRole.System, instructions));
        var descriptor = ChatRequestMapper.ChooseStrategy(options, _options.DefaultStrategy);
        // A strategy that calls the tools from inside decoding (tool tokens): nothing is rendered into the prompt or parsed back.
        return (conversation, descriptor.CallsTools ? null : ToolsOnOffer(options), descriptor);
    }

    private PreparedCall Prepare(IEnumerable<ChatMessage> messages, ChatOptions? options, CancellationToken cancellationToken)
    {
        var (conversation, tools, descriptor) = Conversation(messages, options);
        var strategy = CreateStrategy(options, descriptor);
        // The call grammar first: it is bounded, and it refuses what no prompt could fix (limits, unsatisfiable schemas).
        var grammar = ToolGrammar.For(Format.ToolCalls, options, tools, cancellationToken);
        var prompt = Format.Render(conversation, tools, addGenerationPrompt: true);
        var tokens = prompt.Tokenize(Model);
        var toolCost = tools is null ? 0 : ToolCost(conversation, tools, tokens.Length);
        var request = ChatRequestMapper.CreateRequest(prompt.Text, tokens, options, _options, Format.StopSequences, descriptor) with
        {
            StopTokens = _stopTokens,
            Grammar = grammar,
        };
        request.Validate();   // before waiting for a slot
        var reader = ReplyReader.For(Format.ToolCalls, prompt.Text, tools?.Select(t => t.Name));
        return new PreparedCall(descriptor, strategy, request, tokens, reader, options?.ToolMode is RequiredChatToolMode, toolCost, $"chatcmpl-{Guid.NewGuid():N}", DateTimeOffset.UtcNow);
    }

    /// <summary>
    /// The prompt tokens the tool list costs (the prompt with tools minus the prompt without), logged; a clear
    /// <see cref="ErrorKind.ContextOverflow"/> naming that cost when the prompt with tools does not fit the context.
    /// </summary>
    private int ToolCost(List<ChatMessage> conversation, List<AIFunctionDeclaration> tools, int promptTokens)
    {
        var cost = promptTokens - Format.Render(conversation, null, addGenerationPrompt: true).Tokenize(Model).Length;
        LogToolCost(_logger, tools.Count, cost, Model.ContextSize);
        if (promptTokens < Model.ContextSize)
            return cost;
        var fix = "offer only the functions the request needs, or raise the model's ContextSize";
        throw new AgentHostException(ErrorKind.ContextOverflow, cost >= Model.ContextSize
            ? $"The {tools.Count} tools offered cost {cost} prompt tokens alone, more than the model's context of {Model.ContextSize} tokens; {fix}."
            : $"The prompt is {promptTokens} tokens, {cost} of them for the {tools.Count} tools offered, but the model's context holds {Model.ContextSize}; {fix}.");
    }

    /// <summary>
    /// A tool call cut off by max tokens or a full context is never returned as the raw start of a call: after complete
    /// calls it is dropped (the calls stand), otherwise (or when a required call never came) it is an error.
    /// </summary>
    /// <param name="call">The request.</param>
    /// <param name="result">The generation.</param>
    /// <param name="tail">The reply's contents (or, streaming, its last ones); the unfinished call's text is removed from its end.</param>
    /// <param name="anyCall">Whether the reply holds a complete call; by default, whether <paramref name="tail"/> does.</param>
    private void EnsureCallsComplete(PreparedCall call, GenerationResult result, IList<AIContent> tail, bool? anyCall = null)
    {
        if (call.Reader?.ToolCalls is not { } parser || result.StopReason is not (StopReason.MaxTokens or StopReason.ContextFull))
            return;
        var calls = anyCall ?? tail.Any(c => c is FunctionCallContent);
        if (parser.UnfinishedCall is null && (calls || !call.ToolRequired))
            return;
        if (calls)
        {
            DropTrailingText(tail, parser.UnfinishedCall!);
            LogUnfinishedCallDropped(_logger, result.StopReason);
            return;
        }
        throw result.StopReason == StopReason.MaxTokens
            ? new AgentHostException(ErrorKind.InvalidArgument,
                $"The tool call was cut off by the limit of {call.Request.MaxTokens} output tokens before it was complete; raise max tokens (ChatOptions.MaxOutputTokens, max_tokens).")
            : new AgentHostException(ErrorKind.ContextOverflow,
                $"The tool call was cut off because the model's context of {Model.ContextSize} tokens is full; shorten the conversation, offer fewer tools, or raise ContextSize.");
    }

    /// <summary>
    /// A reply under a JSON response format that max tokens or a full context cut off before the JSON parses is an error
    /// saying so (see <see cref="LlamaChatClientOptions.CutOffJsonIsError"/>): MEAI's typed helpers would otherwise fail on
    /// the partial text with only a JSON parse error.
    /// </summary>
    private void EnsureJsonComplete(PreparedCall call, ChatOptions? options, GenerationResult result, IList<AIContent> contents)
    {
        if (!_options.CutOffJsonIsError || options?.ResponseFormat is not ChatResponseFormatJson
            || result.StopReason is not (StopReason.MaxTokens or StopReason.ContextFull) || contents.Any(c => c is FunctionCallContent))
            return;
        var text = string.Concat(contents.OfType<TextContent>().Select(c => c.Text));
        try
        {
            using var _ = JsonDocument.Parse(text);
            return;   // cut exactly at the end of a complete value
        }
        catch (JsonException)
        {
        }
        throw result.StopReason == StopReason.MaxTokens
            ? new AgentHostException(ErrorKind.InvalidArgument,
                $"The JSON reply was cut off by the limit of {call.Request.MaxTokens} output tokens before it was complete (finish reason length), so it is not a value of the requested schema; raise max tokens (ChatOptions.MaxOutputTokens, max_tokens).")
            : new AgentHostException(ErrorKind.ContextOverflow,
                $"The JSON reply was cut off because the model's context of {Model.ContextSize} tokens is full (finish reason length), so it is not a value of the requested schema; shorten the conversation or raise ContextSize.");
    }

    /// <summary>Removes <paramref name="text"/> from the end of the last text content (the whole item when nothing else is left).</summary>
    private static void DropTrailingText(IList<AIContent> contents, string text)
    {
        for (var i = contents.Count - 1; i >= 0; i--)
        {
            if (contents[i] is not TextContent last)
                continue;
            if (!last.Text.EndsWith(text, StringComparison.Ordinal))
                return;
            var kept = last.Text[..^text.Length];
            if (string.IsNullOrWhiteSpace(kept))
                contents.RemoveAt(i);
            else
                contents[i] = new TextContent(kept);
            return;
        }
    }

    /// <summary>The tools rendered into the prompt: none when the mode is None or no tools are given.</summary>
    private static List<AIFunctionDeclaration>? ToolsOnOffer(ChatOptions? options)
    {
        if (options?.Tools is not { Count: > 0 } tools || options.ToolMode is NoneChatToolMode)
            return null;
        var declarations = tools.OfType<AIFunctionDeclaration>().ToList();
        return declarations.Count > 0 ? declarations : null;
    }

    private ChatResponseUpdate Update(PreparedCall call, IList<AIContent> contents) => new(ChatRole.Assistant, contents)
    {
        ResponseId = call.Id,
        MessageId = call.Id,
        ModelId = Model.Name,
        CreatedAt = call.Created,
    };

    /// <summary>
    /// What a response carries besides text and usage: the strategy, the stop reason, the seed and the
    /// statistics (<see cref="StatsKey"/>: decode calls, cached prompt tokens, timings and the strategy's own).
    /// </summary>
    /// <param name="result">The generation.</param>
    /// <param name="toolTokens">Prompt tokens the offered tools cost (<see cref="ToolTokensKey"/>); 0 leaves the key out.</param>
    public static AdditionalPropertiesDictionary ToProperties(GenerationResult result, int toolTokens = 0)
    {
        var stats = new Dictionary<string, double>(result.Stats.Extra)
        {
            ["decode_calls"] = result.Stats.DecodeCalls,
            ["cached_prompt_tokens"] = result.Stats.CachedPromptTokens,
            ["prefill_ms"] = result.Stats.PrefillTime.TotalMilliseconds,
            ["elapsed_ms"] = result.Stats.Elapsed.TotalMilliseconds,
            ["tokens_per_second"] = result.Stats.TokensPerSecond,
        };
        var properties = new AdditionalPropertiesDictionary
        {
            [ChatRequestMapper.StrategyKey] = result.Strategy,
            ["stop_reason"] = result.StopReason.ToString(),
            [StatsKey] = stats,
        };
        if (result.Stats.Seed is { } seed)
            properties["seed"] = seed;
        if (toolTokens > 0)
            properties[ToolTokensKey] = toolTokens;
        if (result.Logprobs is { } logprobs)
            properties[ChatRequestMapper.LogprobsKey] = logprobs;
        return properties;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The reply stopped ({Reason}) inside a tool call after complete ones; the unfinished call was dropped")]
    private static partial void LogUnfinishedCallDropped(ILogger logger, StopReason reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "The {Count} tools offered cost {Tokens} prompt tokens of the {ContextSize}-token context")]
    private static partial void LogToolCost(ILogger logger, int count, int tokens, int contextSize);

    private sealed record PreparedCall(StrategyDescriptor Descriptor, IDecodingStrategy Strategy, GenerationRequest Request, int[] PromptTokens, ReplyReader? Reader, bool ToolRequired, int ToolTokens, string Id, DateTimeOffset Created);
}
