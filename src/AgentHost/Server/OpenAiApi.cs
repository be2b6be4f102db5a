using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AgentHost.Llama;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Models;
using AgentHost.Extensions.AI;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.AI;
using AgentHost.SemanticKernel.Agents;

namespace AgentHost.Server;

/// <summary>
/// The OpenAI-compatible endpoints: <c>/v1/chat/completions</c>, <c>/v1/completions</c>, <c>/v1/models</c>,
/// <c>/health</c> and <c>/metrics</c>. Every failure is answered in OpenAI's error shape with its status;
/// a client that disconnects cancels its generation, which frees its slot at once.
/// </summary>
internal static class OpenAiApi
{
    public static void Map(WebApplication app, ServerOptions options)
    {
        // Created with the app, so that the queue gauge is there from the first scrape.
        app.Services.GetRequiredService<ServerMetrics>();
        app.Use(async (context, next) =>
        {
            if (Refuse(context.Request, options) is { } refusal)
            {
                if (refusal.Status == StatusCodes.Status401Unauthorized)
                    context.Response.Headers.WWWAuthenticate = "Bearer";
                await refusal.WriteAsync(context.Response);
                return;
            }
            await next(context);
        });

        app.MapGet("/health", () => Results.Json(new HealthBody("ok"), OpenAiJsonContext.Default.HealthBody));
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapGet("/v1/models", (ModelHost models) => Results.Json(
            new ModelList(models.Names.Select(n => new ModelBody(n, LlamaChatClient.ProviderName)).ToList()), OpenAiJsonContext.Default.ModelList));
        app.MapPost("/v1/chat/completions", (HttpContext context, ModelHost models, ServerMetrics metrics, ILoggerFactory logs) =>
            Guard(context, metrics, logs, "chat", () => ChatAsync(context, models, options)));
        app.MapPost("/v1/completions", (HttpContext context, ModelHost models, ServerMetrics metrics, ILoggerFactory logs) =>
            Guard(context, metrics, logs, "completions", () => CompletionAsync(context, models, options)));
        app.MapPost("/v1/embeddings", (HttpContext context, ModelHost models, ServerMetrics metrics, ILoggerFactory logs) =>
            Guard(context, metrics, logs, "embeddings", () => EmbeddingsAsync(context, models, options)));
        app.MapPost("/apply-template", (HttpContext context, ModelHost models, ServerMetrics metrics, ILoggerFactory logs) =>
            Guard(context, metrics, logs, "apply-template", () => ApplyTemplateAsync(context, models, options)));
        // A strategy that cannot run without a file (toolkens' head) is not offered: requests never name files.
        app.MapGet("/v1/strategies", () => Results.Json(new StrategyList(DecodingStrategies.All.Where(d => !d.Options.Any(o => o.NamesFile && o.Required)).Select(d => new StrategyBody(
            d.Name, d.Summary, d.Sampling.ToString().ToLowerInvariant(), d == DecodingStrategies.Greedy || d == DecodingStrategies.Sample,
            d.Options.Where(o => !o.NamesFile).Select(o => new StrategyOptionBody(o.Key, o.Help)).ToList())).ToList()), OpenAiJsonContext.Default.StrategyList));
        app.MapGet("/v1/agents", (IServiceProvider services) => Results.Json(new AgentList(
            services.GetService<AgentRunner>() is { } runner ? runner.Catalog.Names.Select(n => new AgentBody(n, runner.Catalog.Get(n).Description)).ToList() : []), OpenAiJsonContext.Default.AgentList));
        app.MapPost("/v1/agents/run", (HttpContext context, ServerMetrics metrics, ILoggerFactory logs) =>
            Guard(context, metrics, logs, "agents", () => AgentRunAsync(context, options)));
        WebPage.Map(app);
        app.MapFallback((HttpContext context) => new ApiError(StatusCodes.Status404NotFound, $"No endpoint {context.Request.Method} {context.Request.Path}.", code: "not_found").WriteAsync(context.Response));
    }

    /// <summary>
    /// Why a request is refused before any endpoint sees it, or null: a Host the server does not answer to
    /// (DNS rebinding), a browser request from another origin (a page elsewhere driving this server), a missing API
    /// key, or a POST body that is not JSON (a browser's cross-site "simple" POST is text/plain or a form, so it never
    /// reaches a model). The web page's static files need no key (they hold no secret; the page sends the key).
    /// </summary>
    private static ApiError? Refuse(HttpRequest request, ServerOptions options)
    {
        if (!options.IsAllowedHost(request.Host.Host))
            return new ApiError(StatusCodes.Status421MisdirectedRequest, $"This server does not answer to the host '{request.Host.Host}' (see Server:AllowedHosts).", code: "host_not_allowed");
        if (CrossOrigin(request) is { } origin)
            return new ApiError(StatusCodes.Status403Forbidden, $"Requests from another origin ({origin}) are refused: only the server's own page may call it from a browser.", code: "origin_not_allowed");
        if (options.ApiKey is { Length: > 0 } key && request.Path != "/health" && !WebPage.IsPageFile(request) && !HasKey(request, key))
            return new ApiError(StatusCodes.Status401Unauthorized, "A valid API key is required (Authorization: Bearer KEY).", code: "invalid_api_key");
        if (HttpMethods.IsPost(request.Method) && !IsJson(request.ContentType))
            return new ApiError(StatusCodes.Status415UnsupportedMediaType, $"The request body must be JSON (Content-Type: application/json), not '{request.ContentType}'.", code: "unsupported_media_type");
        return null;
    }

    /// <summary>
    /// The other origin a browser says a request comes from, or null: an <c>Origin</c> header that is not this server's
    /// own scheme, host and port (<c>null</c> included), or <c>Sec-Fetch-Site</c> other than same-origin / none (a
    /// user's own navigation) on anything but a navigation to the page. Non-browser clients send neither.
    /// </summary>
    private static string? CrossOrigin(HttpRequest request)
    {
        var origin = request.Headers.Origin.ToString();
        if (origin.Length > 0)
        {
            var port = request.Host.Port ?? (request.IsHttps ? 443 : 80);
            if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme != request.Scheme
                || !string.Equals(uri.Host, request.Host.Host.Trim('[', ']'), StringComparison.OrdinalIgnoreCase) && !string.Equals(uri.Host, request.Host.Host, StringComparison.OrdinalIgnoreCase)
                || uri.Port != port)
                return origin;
        }
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        if (site.Length > 0 && site is not ("same-origin" or "none")
            && !(WebPage.IsPageFile(request) && request.Headers["Sec-Fetch-Mode"] == "navigate"))
            return $"Sec-Fetch-Site: {site}";
        return null;
    }

    private static bool IsJson(string? contentType)
        => Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var media)
            && (media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) || media.Suffix.Equals("json", StringComparison.OrdinalIgnoreCase))
            && (!media.Charset.HasValue || media.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase));

    private static bool HasKey(HttpRequest request, string key)
    {
        var header = request.Headers.Authorization.ToString();
        const string prefix = "Bearer ";
        return header.StartsWith(prefix, StringComparison.Ordinal)
            && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[prefix.Length..].Trim()), Encoding.UTF8.GetBytes(key));
    }

    /// <summary>Runs a handler and turns every failure into one error response (or an error event once streaming began).</summary>
    private static async Task Guard(HttpContext context, ServerMetrics metrics, ILoggerFactory logs, string endpoint, Func<Task> handler)
    {
        ApiError? error = null;
        try
        {
            await handler();
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            metrics.CountRequest(endpoint, 499);   // the client went away; nobody is left to answer
            return;
        }
        catch (ApiError e) { error = e; }
        catch (AgentHostException e) { error = ApiError.From(e); }
        catch (BadHttpRequestException e)
        {
            // Kestrel's own verdicts on the body: too large (413), too slow (408), malformed framing (400).
            error = e.StatusCode switch
            {
                StatusCodes.Status413PayloadTooLarge => new ApiError(e.StatusCode, "The request body is too large.", code: "request_too_large"),
                StatusCodes.Status408RequestTimeout => new ApiError(e.StatusCode, "The request body arrived too slowly.", code: "request_timeout"),
                _ => new ApiError(StatusCodes.Status400BadRequest, $"The request could not be read: {e.Message}"),
            };
        }
        catch (JsonException e) { error = ApiError.BadRequest($"The request body is not valid JSON: {e.Message}"); }
        catch (Exception e)
        {
            logs.CreateLogger("AgentHost.Server").LogError(e, "Request failed");
            error = new ApiError(StatusCodes.Status500InternalServerError, "Internal server error.", "server_error");
        }

        if (error is not null)
        {
            metrics.CountError(error.Type);
            if (context.Response.HasStarted)
                await WriteEventAsync(context.Response, error.Body, CancellationToken.None);
            else
                await error.WriteAsync(context.Response);
        }
        metrics.CountRequest(endpoint, error?.Status ?? context.Response.StatusCode);
    }

    private static async Task<JsonElement> ReadBodyAsync(HttpContext context, ServerOptions options)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            limit.MaxRequestBodySize = options.MaxBodyBytes;
        if (context.Request.ContentLength > options.MaxBodyBytes)
            throw new ApiError(StatusCodes.Status413PayloadTooLarge, $"The request body is larger than {options.MaxBodyBytes} bytes.", code: "request_too_large");
        // The whole body within a bound: a client trickling bytes above Kestrel's minimum rate still cannot hold the request open.
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        deadline.CancelAfter(TimeSpan.FromSeconds(options.BodyTimeoutSeconds));
        try
        {
            using var document = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: deadline.Token);
            return document.RootElement.Clone();
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !context.RequestAborted.IsCancellationRequested)
        {
            throw new ApiError(StatusCodes.Status408RequestTimeout, $"The request body did not arrive within {options.BodyTimeoutSeconds} s (Server:BodyTimeoutSeconds).", code: "request_timeout");
        }
        catch (Exception e) when (e is OverflowException || e.InnerException is OverflowException)
        {
            // Kestrel's chunked-body parser computes a chunk size with checked arithmetic: a size line of more hex digits
            // than an int holds is an IOException around an OverflowException, not a BadHttpRequestException like other
            // malformed framing.
            throw ApiError.BadRequest("The request could not be read: a chunk size of the chunked body is out of range.");
        }
    }

    /// <summary>
    /// Admits a request for its model, or 429: one atomic count per model over every endpoint that uses it.
    /// Dispose the ticket when the request is done.
    /// </summary>
    private static async Task<(HostedModel Model, IDisposable Ticket)> AdmitAsync(ModelHost models, ServerOptions options, string model, HttpContext context)
    {
        var hosted = await models.GetAsync(model, context.RequestAborted);
        if (hosted.TryAdmit(options.MaxQueue) is { } ticket)
            return (hosted, ticket);
        context.Response.Headers.RetryAfter = "1";
        throw new ApiError(StatusCodes.Status429TooManyRequests, $"The queue of model '{hosted.Name}' is full ({options.MaxQueue} requests); retry shortly.", "rate_limit_error", "queue_full");
    }

    private static async Task ChatAsync(HttpContext context, ModelHost models, ServerOptions options)
    {
        var call = OpenAiRequests.ParseChat(await ReadBodyAsync(context, options));
        var (hosted, ticket) = await AdmitAsync(models, options, call.Model, context);
        using var admission = ticket;
        // Token-level fields need the model's own logits: a remote entry's endpoint is not asked to honour them.
        if (call.Options.AdditionalProperties is { } extra && hosted.Chat.GetService(typeof(LlamaModel)) is null
            && (extra.ContainsKey(ChatRequestMapper.TopLogprobsKey) || extra.ContainsKey(ChatRequestMapper.LogitBiasKey) || extra.ContainsKey(ChatRequestMapper.DecodingTraceKey)))
        {
            var field = extra.ContainsKey(ChatRequestMapper.TopLogprobsKey) ? "logprobs" : extra.ContainsKey(ChatRequestMapper.LogitBiasKey) ? "logit_bias" : ChatRequestMapper.DecodingTraceKey;
            throw ApiError.BadRequest($"'{field}' needs a local model; '{hosted.Name}' is a remote entry.", field);
        }
        var id = $"chatcmpl-{Guid.NewGuid():N}";
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var ct = context.RequestAborted;

        if (!call.Stream)
        {
            var response = await hosted.Chat.GetResponseAsync(call.Messages, call.Options, ct);
            var calls = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Select(c => ToolCall(c, null)).ToList();
            // Reasoning (<think> blocks of thinking models) goes beside the answer, as llama-server writes it.
            var reasoning = string.Concat(response.Messages.SelectMany(m => m.Contents).OfType<TextReasoningContent>().Select(r => r.Text));
            var message = new ResponseMessage(calls.Count > 0 && response.Text.Length == 0 ? null : response.Text, calls.Count > 0 ? calls : null)
            {
                ReasoningContent = reasoning.Length > 0 ? reasoning : null,
            };
            var logprobs = ChatLogprobs(hosted.Chat, response.AdditionalProperties);
            await context.Response.WriteAsJsonAsync(
                new ChatCompletionResponse(id, created, hosted.Name, [new ChatChoice(message, response.FinishReason?.Value, logprobs)], Usage(response.Usage), Decoding(response.AdditionalProperties))
                {
                    DecodingTrace = Trace(hosted.Chat, response.AdditionalProperties),
                },
                OpenAiJsonContext.Default.ChatCompletionResponse, cancellationToken: ct);
            return;
        }

        StartEvents(context.Response);
        ChatLogprobsBody? pending = null;   // the update's tokens, on the first chunk written for it
        IReadOnlyList<TraceEventBody>? events = null;   // the update's decoding events, likewise
        ChatCompletionChunk Chunk(Delta delta, string? finish = null)
        {
            var chunk = new ChatCompletionChunk(id, created, hosted.Name, [new ChunkChoice(delta, finish, pending)]) { DecodingTrace = events };
            pending = null;
            events = null;
            return chunk;
        }
        await WriteEventAsync(context.Response, Chunk(new Delta { Role = "assistant", Content = "" }), ct);
        var toolIndex = 0;
        await foreach (var update in hosted.Chat.GetStreamingResponseAsync(call.Messages, call.Options, ct))
        {
            pending = ChatLogprobs(hosted.Chat, update.AdditionalProperties);
            events = Trace(hosted.Chat, update.AdditionalProperties);
            foreach (var content in update.Contents)
            {
                switch (content)
                {
                    case TextContent { Text.Length: > 0 } text:
                        await WriteEventAsync(context.Response, Chunk(new Delta { Content = text.Text }), ct);
                        break;
                    case TextReasoningContent { Text.Length: > 0 } reasoning:
                        await WriteEventAsync(context.Response, Chunk(new Delta { ReasoningContent = reasoning.Text }), ct);
                        break;
                    case FunctionCallContent functionCall:
                        await WriteEventAsync(context.Response, Chunk(new Delta { ToolCalls = [ToolCall(functionCall, toolIndex++)] }), ct);
                        break;
                    case UsageContent usage when call.IncludeUsage:
                        await WriteEventAsync(context.Response, new ChatCompletionChunk(id, created, hosted.Name, [], Usage(usage.Details), Decoding(update.AdditionalProperties)), ct);
                        break;
                }
            }
            if (update.FinishReason is { } finish || pending is not null || events is not null)
                await WriteEventAsync(context.Response, Chunk(new Delta(), update.FinishReason?.Value), ct);
        }
        await context.Response.WriteAsync("data: [DONE]\n\n", ct);
    }

    /// <summary>
    /// <c>POST /v1/agents/run</c>: one turn of a served agent (as <c>/mcp</c> runs it: same runner, same models), with
    /// every call it and the agents it called made. Not streamed: the answer comes when the agent is done.
    /// </summary>
    private static async Task AgentRunAsync(HttpContext context, ServerOptions options)
    {
        var (agent, history) = OpenAiRequests.ParseAgentRun(await ReadBodyAsync(context, options));
        var runner = context.RequestServices.GetService<AgentRunner>()
            ?? throw new ApiError(StatusCodes.Status404NotFound, "This server serves no agents.", code: "agent_not_found", param: "agent");
        if (!runner.Catalog.Names.Contains(agent, StringComparer.Ordinal))
            throw new ApiError(StatusCodes.Status404NotFound, $"The agent '{agent}' does not exist. Available: {string.Join(", ", runner.Catalog.Names)}.", code: "agent_not_found", param: "agent");
        var result = await runner.RunAsync(agent, history, context.RequestAborted);
        await context.Response.WriteAsJsonAsync(
            new AgentRunResponse(result.Agent, result.Answer, result.Trace.Select(t => new AgentStepBody(t.Depth, t.Agent, t.Kind, t.Function, t.Text, t.Failed)).ToList()),
            OpenAiJsonContext.Default.AgentRunResponse, cancellationToken: context.RequestAborted);
    }

    /// <summary>
    /// <c>POST /apply-template</c> (as llama-server has it): the prompt a chat request would feed the model, rendered
    /// exactly as <c>/v1/chat/completions</c> renders it, with no generation (so no admission count and no slot).
    /// </summary>
    private static async Task ApplyTemplateAsync(HttpContext context, ModelHost models, ServerOptions options)
    {
        var call = OpenAiRequests.ParseApplyTemplate(await ReadBodyAsync(context, options));
        var hosted = await models.GetAsync(call.Chat.Model, context.RequestAborted);
        var client = hosted.Local("/apply-template");
        var prompt = client.RenderPrompt(call.Chat.Messages, call.Chat.Options, call.AddGenerationPrompt);
        var format = client.Format;
        await context.Response.WriteAsJsonAsync(
            new ApplyTemplateResponse(prompt.Text, format.Name, format.Family, format.ToolCalls.Name, prompt.Tokenize(client.Model).Length),
            OpenAiJsonContext.Default.ApplyTemplateResponse, cancellationToken: context.RequestAborted);
    }

    private static async Task CompletionAsync(HttpContext context, ModelHost models, ServerOptions options)
    {
        var call = OpenAiRequests.ParseCompletion(await ReadBodyAsync(context, options));
        var (hosted, ticket) = await AdmitAsync(models, options, call.Model, context);
        using var admission = ticket;
        var id = $"cmpl-{Guid.NewGuid():N}";
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var ct = context.RequestAborted;

        var vocabulary = hosted.Local("/v1/completions").Model.Vocabulary;
        var offset = 0;   // characters of the completion before the next token (the legacy text_offset)
        CompletionResponse Body(string text, GenerationResult? result = null, bool withUsage = true, IReadOnlyList<TokenLogprob>? logprobs = null) => new(id, created, hosted.Name,
            [new CompletionChoice(text, result?.StopReason.ToFinishReason().Value, logprobs is null ? null : CompletionLogprobs(vocabulary, logprobs, ref offset))],
            result is not null && withUsage ? Usage(result.Stats.ToUsage()) : null,
            result is null ? null : Decoding(LlamaChatClient.ToProperties(result)));

        if (!call.Stream)
        {
            var result = await hosted.Local("/v1/completions").CompleteAsync(call.Prompt, call.Options, ct);
            await context.Response.WriteAsJsonAsync(Body(result.Text, result, logprobs: result.Logprobs), OpenAiJsonContext.Default.CompletionResponse, cancellationToken: ct);
            return;
        }

        StartEvents(context.Response);
        GenerationResult finished = null!;   // the stream's last update always carries it
        await foreach (var update in hosted.Local("/v1/completions").CompleteStreamingAsync(call.Prompt, call.Options, ct))
        {
            if (update.Result is not null)
            {
                finished = update.Result;
                // Tokens recorded after the last piece (held back for a stop string, or an empty flush) come with the last event.
                await WriteEventAsync(context.Response, Body("", finished, call.IncludeUsage, finished.Logprobs is null ? null : update.Logprobs ?? []), ct);
            }
            else
            {
                await WriteEventAsync(context.Response, Body(update.Text, logprobs: update.Logprobs), ct);
            }
        }
        await context.Response.WriteAsync("data: [DONE]\n\n", ct);
    }

    private static async Task EmbeddingsAsync(HttpContext context, ModelHost models, ServerOptions options)
    {
        var call = OpenAiRequests.ParseEmbeddings(await ReadBodyAsync(context, options), options.MaxEmbeddingInputs);
        var (hosted, ticket) = await AdmitAsync(models, options, call.Model, context);
        using var admission = ticket;
        var embeddings = await hosted.Embedder("/v1/embeddings").GenerateAsync(call.Inputs, cancellationToken: context.RequestAborted);
        var data = embeddings.Select((embedding, index) => new EmbeddingBody(index, call.Base64
            ? Convert.ToBase64String(System.Runtime.InteropServices.MemoryMarshal.AsBytes(embedding.Vector.Span))
            : embedding.Vector.ToArray())).ToList();
        var tokens = embeddings.Usage?.InputTokenCount ?? 0;
        await context.Response.WriteAsJsonAsync(new EmbeddingResponse(data, hosted.Name, new EmbeddingUsage(tokens, tokens)), OpenAiJsonContext.Default.EmbeddingResponse, cancellationToken: context.RequestAborted);
    }

    /// <summary>The chat shape of a response's or update's token log-probabilities, or null when it has none.</summary>
    private static ChatLogprobsBody? ChatLogprobs(IChatClient chat, AdditionalPropertiesDictionary? properties)
    {
        if (properties?.GetValueOrDefault(ChatRequestMapper.LogprobsKey) is not IReadOnlyList<TokenLogprob> logprobs)
            return null;
        var vocabulary = (chat.GetService(typeof(LlamaModel)) as LlamaModel)?.Vocabulary
            ?? throw new InvalidOperationException("Log-probabilities came from a client without a local model.");
        var content = new List<ChatTokenLogprobBody>(logprobs.Count);
        foreach (var entry in logprobs)
        {
            var (token, bytes) = TokenText(vocabulary, entry.Token);
            var top = new List<ChatTopLogprobBody>(entry.Top.Count);
            foreach (var alternative in entry.Top)
            {
                var (text, altBytes) = TokenText(vocabulary, alternative.Token);
                top.Add(new ChatTopLogprobBody(text, alternative.Logprob, altBytes));
            }
            content.Add(new ChatTokenLogprobBody(token, entry.Logprob, bytes, top, entry.Entropy));
        }
        return new ChatLogprobsBody(content);
    }

    /// <summary>The wire shape of a response's or update's decoding events (<c>decoding_trace</c>), or null when it has none.</summary>
    private static List<TraceEventBody>? Trace(IChatClient chat, AdditionalPropertiesDictionary? properties)
    {
        if (properties?.GetValueOrDefault(ChatRequestMapper.DecodingTraceKey) is not IReadOnlyList<DecodingEvent> { Count: > 0 } events)
            return null;
        var vocabulary = (chat.GetService(typeof(LlamaModel)) as LlamaModel)?.Vocabulary
            ?? throw new InvalidOperationException("A decoding trace came from a client without a local model.");
        List<string> Texts(IEnumerable<int> tokens) => tokens.Select(t => TokenText(vocabulary, t).Text).ToList();
        return events.Select(e => e switch
        {
            DraftEvent d => new TraceEventBody("draft", d.Position) { Accepted = Texts(d.Accepted), Rejected = Texts(d.Rejected), Emitted = Texts(d.Emitted) },
            BranchEvent b => new TraceEventBody("branch", b.Position)
            {
                Entropy = b.Entropy, Winner = b.Winner, Kept = b.Kept,
                Trials = b.Trials.Select((tokens, i) => new TrialBody(Texts(tokens), b.Perplexities[i])).ToList(),
            },
            ToolTokenEvent t => new TraceEventBody("tool_token", t.Position) { Tool = t.Tool, Arguments = t.Arguments, Result = t.Result, Error = t.Error },
            GrammarEvent g => new TraceEventBody("grammar", g.Position),
            _ => throw new InvalidOperationException($"No wire shape for the decoding event {e.GetType().Name}."),
        }).ToList();
    }

    /// <summary>The legacy completions shape; <paramref name="offset"/> runs on over a stream's pieces.</summary>
    private static CompletionLogprobsBody CompletionLogprobs(TokenVocabulary vocabulary, IReadOnlyList<TokenLogprob> logprobs, ref int offset)
    {
        var tokens = new List<string>(logprobs.Count);
        var values = new List<double>(logprobs.Count);
        var tops = new List<Dictionary<string, double>>(logprobs.Count);
        var offsets = new List<int>(logprobs.Count);
        foreach (var entry in logprobs)
        {
            var (token, _) = TokenText(vocabulary, entry.Token);
            tokens.Add(token);
            values.Add(entry.Logprob);
            offsets.Add(offset);
            offset += token.Length;
            var top = new Dictionary<string, double>(entry.Top.Count);
            foreach (var alternative in entry.Top)
                top.TryAdd(TokenText(vocabulary, alternative.Token).Text, alternative.Logprob);   // two ids may share a text: the likelier one
            tops.Add(top);
        }
        return new CompletionLogprobsBody(tokens, values, tops, offsets);
    }

    /// <summary>A token's text (invalid UTF-8 as U+FFFD, as OpenAI writes it) and its bytes.</summary>
    private static (string Text, int[] Bytes) TokenText(TokenVocabulary vocabulary, int token)
    {
        var raw = vocabulary.GetBytes(token);
        var bytes = new int[raw.Length];
        for (var i = 0; i < raw.Length; i++)
            bytes[i] = raw[i];
        return (Encoding.UTF8.GetString(raw), bytes);
    }

    private static ToolCallBody ToolCall(FunctionCallContent call, int? index)
        => new(call.CallId, new FunctionCallBody(call.Name, JsonSerializer.Serialize(call.Arguments ?? new Dictionary<string, object?>(), AIJsonUtilities.DefaultOptions)), index);

    private static UsageBody Usage(UsageDetails? usage) => new(
        usage?.InputTokenCount ?? 0, usage?.OutputTokenCount ?? 0, usage?.TotalTokenCount ?? 0, new PromptTokensDetails(usage?.CachedInputTokenCount ?? 0));

    private static DecodingBody? Decoding(AdditionalPropertiesDictionary? properties) => properties is null ? null
        : new(properties.GetValueOrDefault(ChatRequestMapper.StrategyKey) as string, properties.GetValueOrDefault(LlamaChatClient.StatsKey) as IReadOnlyDictionary<string, double>);

    private static void StartEvents(HttpResponse response)
    {
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
    }

    private static async Task WriteEventAsync<T>(HttpResponse response, T payload, CancellationToken cancellationToken)
    {
        await response.WriteAsync($"data: {JsonSerializer.Serialize(payload, typeof(T), OpenAiJsonContext.Default)}\n\n", cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }
}
