using System.Runtime.CompilerServices;
using System.Threading.Channels;
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
/// <see cref="ChatRequestMapper"/>) and reuses the KV cache of earlier turns. Safe for concurrent use:
/// requests rent a session slot each and the model's scheduler serialises their decodes.
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
    private readonly SessionPool _pool;
    private readonly BatchedGenerator? _batcher;
    private readonly ChatClientMetadata _metadata;
    private readonly IReadOnlyList<int> _stopTokens;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ToolTokenHead> _heads = new(StringComparer.Ordinal);
    private readonly ILogger _logger;

    /// <summary>Creates a client on <paramref name="model"/> (not owned: the caller disposes the model after the client).</summary>
    /// <param name="model">The model.</param>
    /// <param name="options">How to serve it; defaults when null.</param>
    /// <param name="logger">Receives per-request facts such as the tools' token cost.</param>
    public LlamaChatClient(LlamaModel model, LlamaChatClientOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        _logger = logger ?? NullLogger.Instance;
        _options = options ?? new LlamaChatClientOptions();
        DecodingStrategies.Find(_options.DefaultStrategy);
        var catalog = _options.FormatsDirectory is null ? ChatFormatCatalog.Default : new ChatFormatCatalog(_options.FormatsDirectory);
        Format = catalog.Resolve(model, _options.ChatFormat);
        _stopTokens = Format.GetStopTokens(model);
        _pool = new SessionPool(model, _options.Slots, _options.HiddenStates);
        _batcher = _options.ContinuousBatching ? new BatchedGenerator(model) : null;
        _metadata = new ChatClientMetadata(ProviderName, null, model.Name);
    }

    /// <summary>The model this client decodes with.</summary>
    public LlamaModel Model { get; }

    /// <summary>The chat format conversations are rendered in.</summary>
    public ChatFormat Format { get; }

    /// <summary>Requests waiting for or holding a session slot (the queue depth).</summary>
    public int PendingRequests => _pool.Pending + (_batcher?.Pending ?? 0);

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = Prepare(messages, options, cancellationToken);
        var result = await RunAsync(call.Strategy, call.Request, call.PromptTokens, null, cancellationToken).ConfigureAwait(false);

        IList<AIContent> contents = call.ToolParser is { } parser ? [.. parser.ParseAll(result.Text)] : [new TextContent(result.Text)];
        EnsureCallsComplete(call, result, contents);
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, contents) { MessageId = call.Id })
        {
            ResponseId = call.Id,
            ModelId = Model.Name,
            CreatedAt = call.Created,
            FinishReason = ToFinishReason(result.StopReason, contents),
            Usage = ToUsage(result.Stats),
            AdditionalProperties = ToProperties(result, call.ToolTokens),
        };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var call = Prepare(messages, options, cancellationToken);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var pieces = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var generation = RunAsync(call.Strategy, call.Request, call.PromptTokens, piece => pieces.Writer.TryWrite(piece), stop.Token);
        // Errors surface from awaiting the generation below, with their own type.
        _ = generation.ContinueWith(_ => pieces.Writer.TryComplete(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        GenerationResult result;
        var calls = 0;
        try
        {
            await foreach (var piece in pieces.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                // Tool calls stream as whole FunctionCallContent items once the parser has seen a call end.
                IList<AIContent> contents = call.ToolParser is { } parser ? [.. parser.Push(piece)] : [new TextContent(piece)];
                calls += contents.Count(c => c is FunctionCallContent);
                if (contents.Count > 0)
                    yield return Update(call, contents);
            }
            result = await generation.ConfigureAwait(false);
        }
        finally
        {
            // A consumer that stops early (or cancels) must not leave the slot decoding for nobody.
            if (!generation.IsCompleted)
            {
                await stop.CancelAsync().ConfigureAwait(false);
                await generation.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            }
        }

        List<AIContent> rest = [.. call.ToolParser?.Complete() ?? []];
        calls += rest.Count(c => c is FunctionCallContent);
        EnsureCallsComplete(call, result, rest, calls > 0);
        var last = Update(call, [.. rest, new UsageContent(ToUsage(result.Stats))]);
        last.FinishReason = calls > 0 ? ChatFinishReason.ToolCalls : ToFinishReason(result.StopReason);
        last.AdditionalProperties = ToProperties(result, call.ToolTokens);
        yield return last;
    }

    /// <summary>
    /// Continues <paramref name="prompt"/> as plain text (no chat format), with the same options, slots and
    /// prompt cache as chats; <paramref name="onText"/> receives the streamed text.
    /// </summary>
    public async Task<GenerationResult> CompleteAsync(string prompt, ChatOptions? options = null, Action<string>? onText = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var strategyName = ChatRequestMapper.ChooseStrategy(options, _options.DefaultStrategy);
        var strategy = ChatRequestMapper.CreateStrategy(options, _options);
        var tokens = prompt.Length == 0 ? [] : Model.Tokenize(prompt, Model.Vocabulary.AddBos);
        var request = ChatRequestMapper.CreateRequest(prompt, tokens, options, _options, [], strategyName);
        request.Validate();   // before waiting for a slot
        return await RunAsync(strategy, request, tokens, onText, cancellationToken).ConfigureAwait(false);
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

    /// <summary>Frees the session slots (not the model).</summary>
    public void Dispose()
    {
        _batcher?.Dispose();
        _pool.Dispose();
    }

    /// <summary>Runs a generation: batched with other requests when the client batches and the request allows it, else on a slot.</summary>
    private async Task<GenerationResult> RunAsync(IDecodingStrategy strategy, GenerationRequest request, int[] promptTokens, Action<string>? onText, CancellationToken cancellationToken)
    {
        if (_batcher is not null && BatchedGenerator.CanRun(strategy.Name, request))
            return await _batcher.GenerateAsync(request, sample: strategy.Name == "sample", onText, cancellationToken).ConfigureAwait(false);
        using var lease = await _pool.RentAsync(promptTokens, cancellationToken).ConfigureAwait(false);
        var result = await lease.Session.GenerateAsync(strategy, request, onText, cancellationToken).ConfigureAwait(false);
        if (strategy is RecyclingStrategy { MatrixFile: not null } recycling)
            await lease.Session.RunAsync(_ => recycling.SaveMatrix(), cancellationToken).ConfigureAwait(false); // the host's warm start for the next run
        return result;
    }

    private PreparedCall Prepare(IEnumerable<ChatMessage> messages, ChatOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var conversation = messages.ToList();
        if (options?.Instructions is { Length: > 0 } instructions)
            conversation.Insert(0, new ChatMessage(ChatRole.System, instructions));

        var strategyName = ChatRequestMapper.ChooseStrategy(options, _options.DefaultStrategy);
        var toolTokens = strategyName == ToolTokenStrategy.StrategyName;
        var strategy = toolTokens ? CreateToolTokenStrategy(options) : ChatRequestMapper.CreateStrategy(options, _options);
        // Tool tokens call the tools from inside decoding: nothing is rendered into the prompt or parsed back.
        var tools = toolTokens ? null : ToolsOnOffer(options);
        // The call grammar first: it is bounded, and it refuses what no prompt could fix (limits, unsatisfiable schemas).
        var grammar = ToolGrammar.For(Format.ToolCalls, options, tools, cancellationToken);
        var prompt = Format.Render(conversation, tools, addGenerationPrompt: true);
        var tokens = prompt.Tokenize(Model);
        var toolCost = tools is null ? 0 : ToolCost(conversation, tools, tokens.Length);
        var request = ChatRequestMapper.CreateRequest(prompt.Text, tokens, options, _options, Format.StopSequences, strategyName) with
        {
            StopTokens = _stopTokens,
            Grammar = grammar,
        };
        request.Validate();   // before waiting for a slot
        var parser = tools is null ? null : Format.ToolCalls.CreateParser(tools.Select(t => t.Name));
        return new PreparedCall(strategy, request, tokens, parser, options?.ToolMode is RequiredChatToolMode, toolCost, $"chatcmpl-{Guid.NewGuid():N}", DateTimeOffset.UtcNow);
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
        if (call.ToolParser is not { } parser || result.StopReason is not (StopReason.MaxTokens or StopReason.ContextFull))
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

    /// <summary>
    /// Tool tokens as a function-calling mode: the head named by <c>toolkens_head</c> fires the functions in
    /// <c>ChatOptions.Tools</c> (by the head's tool names, schemas checked) from inside decoding and writes their
    /// results into the reply. Needs <see cref="LlamaChatClientOptions.HiddenStates"/>.
    /// </summary>
    private ToolTokenStrategy CreateToolTokenStrategy(ChatOptions? options)
    {
        ChatRequestMapper.EnsureFileOptionsAllowed(options, _options);
        if (!_options.AllowFileOptions)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Strategy toolkens is not available here: it needs a head file ('{ChatRequestMapper.ToolTokensHeadKey}'), which this host does not take from requests.");
        if (!_options.HiddenStates)
            throw new AgentHostException(ErrorKind.InvalidArgument, "Strategy toolkens needs a client created with HiddenStates = true.");
        var path = ChatRequestMapper.GetString(options, ChatRequestMapper.ToolTokensHeadKey)
            ?? throw new AgentHostException(ErrorKind.InvalidArgument, $"Strategy toolkens needs '{ChatRequestMapper.ToolTokensHeadKey}': a head file from 'toolkens train'.");
        var head = _heads.GetOrAdd(Path.GetFullPath(path), ToolTokenHead.Load);
        head.EnsureMatches(Model);
        var functions = options!.Tools?.OfType<AIFunction>().ToDictionary(f => f.Name, StringComparer.Ordinal) ?? [];
        var tools = head.Tools.Select(slot => functions.TryGetValue(slot.Name, out var function) ? function.AsToolDefinition()
            : throw new AgentHostException(ErrorKind.InvalidArgument, $"The tool-token head calls '{slot.Name}', which is not among the request's tools (invocable functions are needed).")).ToList();
        head.EnsureMatches(tools);
        return new ToolTokenStrategy(head, tools, new ToolTokenOptions { Bias = ChatRequestMapper.GetFloat(options, ChatRequestMapper.ToolTokensBiasKey) });
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

    private static ChatFinishReason ToFinishReason(StopReason reason, IList<AIContent> contents)
        => contents.Any(c => c is FunctionCallContent) ? ChatFinishReason.ToolCalls : ToFinishReason(reason);

    private static ChatFinishReason ToFinishReason(StopReason reason) => reason switch
    {
        StopReason.MaxTokens or StopReason.ContextFull => ChatFinishReason.Length,
        _ => ChatFinishReason.Stop,
    };

    private static UsageDetails ToUsage(GenerationStats stats) => new()
    {
        InputTokenCount = stats.PromptTokens,
        OutputTokenCount = stats.GeneratedTokens,
        TotalTokenCount = stats.PromptTokens + stats.GeneratedTokens,
        CachedInputTokenCount = stats.CachedPromptTokens,
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
        return properties;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The reply stopped ({Reason}) inside a tool call after complete ones; the unfinished call was dropped")]
    private static partial void LogUnfinishedCallDropped(ILogger logger, StopReason reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "The {Count} tools offered cost {Tokens} prompt tokens of the {ContextSize}-token context")]
    private static partial void LogToolCost(ILogger logger, int count, int tokens, int contextSize);

    private sealed record PreparedCall(IDecodingStrategy Strategy, GenerationRequest Request, int[] PromptTokens, ToolCallParser? ToolParser, bool ToolRequired, int ToolTokens, string Id, DateTimeOffset Created);
}
