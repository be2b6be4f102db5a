using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using AgentHost.Extensions.AI.Chat;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests;
using AgentHost.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.SemanticKernel;
using OpenAI;
using OpenAI.Chat;

namespace AgentHost.Tests;

/// <summary>A real Kestrel on loopback serving stories260K, driven by real clients.</summary>
internal sealed class TestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestServer(WebApplication app, string address)
    {
        _app = app;
        Address = address;
        Http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(2) };
    }

    public string Address { get; }

    public HttpClient Http { get; }

    public static async Task<TestServer> StartAsync(Action<ServerOptions>? configure = null, int contextSize = 512, Action<AgentHostOptions>? catalog = null, Func<IServiceProvider, ModelContextProtocol.Server.McpServerOptions>? mcpTools = null)
    {
        var options = new AgentHostOptions { ModelsDir = TestModels.Directory, AllowDownload = false, CacheDir = Path.Combine(Path.GetTempPath(), "agenthost-server-tests-cache") };
        options.Models["stories260k"] = new ModelSettings
        {
            File = "stories260K.gguf", ContextSize = contextSize, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 16,
        };
        catalog?.Invoke(options);
        var serverOptions = new ServerOptions { Urls = "http://127.0.0.1:0", DefaultMaxTokens = 64 };
        configure?.Invoke(serverOptions);
        var app = AgentHostServer.Build(options, serverOptions, mcpTools: mcpTools);
        await app.StartAsync();
        return new TestServer(app, AgentHostServer.Addresses(app)[0]);
    }

    public OpenAIClient OpenAi(string key = "unused") => new(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(Address + "/v1") });

    public async Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> PostAsync(string path, string json)
    {
        var response = await Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), response);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

public sealed class ServerTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private const string Story = """{"model": "stories260k", "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 24}""";

    [Fact]
    public async Task OpenAiSdkChatAndStreamingAgree()
    {
        var chat = _server.OpenAi().GetChatClient("stories260k");
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 30 };

        ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage("Tell me a story about a dog.")], options);
        var streamed = new StringBuilder();
        ChatFinishReason? streamedFinish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Tell me a story about a dog.")], options))
        {
            foreach (var part in update.ContentUpdate)
                streamed.Append(part.Text);
            streamedFinish ??= update.FinishReason;
        }

        Assert.False(string.IsNullOrWhiteSpace(completion.Content[0].Text));
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(30, completion.Usage.OutputTokenCount);
        Assert.Equal(completion.Usage.InputTokenCount + 30, completion.Usage.TotalTokenCount);
        Assert.Equal("stories260k", completion.Model);
        Assert.Equal(completion.Content[0].Text, streamed.ToString());
        Assert.Equal(ChatFinishReason.Length, streamedFinish);
    }

    private const string AddSchema = """{"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}""";

    [Fact]
    public async Task ToolsRoundTripThroughTheOpenAiSdkStreamingAndNot()
    {
        var chat = _server.OpenAi().GetChatClient("stories260k");
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 96, ToolChoice = ChatToolChoice.CreateRequiredChoice() };
        options.Tools.Add(ChatTool.CreateFunctionTool("add", "Adds two numbers.", BinaryData.FromString(AddSchema)));
        List<OpenAI.Chat.ChatMessage> messages = [new UserChatMessage("What is 3 plus 4?")];

        ChatCompletion first = await chat.CompleteChatAsync(messages, options);

        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal("add", call.FunctionName);
        using var arguments = JsonDocument.Parse(call.FunctionArguments.ToString());
        Assert.True(Json.Schema.JsonSchema.FromText(AddSchema).Evaluate(arguments.RootElement).IsValid, call.FunctionArguments.ToString());
        var sum = arguments.RootElement.GetProperty("a").GetInt64() + arguments.RootElement.GetProperty("b").GetInt64();

        // The result goes back as a tool message; with tool choice auto the model answers in text.
        messages.Add(new AssistantChatMessage(first));
        messages.Add(new ToolChatMessage(call.Id, sum.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        options.ToolChoice = ChatToolChoice.CreateAutoChoice();
        ChatCompletion second = await chat.CompleteChatAsync(messages, options);
        Assert.NotEqual(ChatFinishReason.ToolCalls, second.FinishReason);
        Assert.False(string.IsNullOrWhiteSpace(second.Content[0].Text));

        // Streaming: the call arrives in a tool-call delta with the same name and arguments.
        options.ToolChoice = ChatToolChoice.CreateRequiredChoice();
        var name = "";
        var streamedArguments = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("What is 3 plus 4?")], options))
        {
            foreach (var part in update.ToolCallUpdates)
            {
                name += part.FunctionName;
                streamedArguments.Append(part.FunctionArgumentsUpdate?.ToString());
            }
            finish ??= update.FinishReason;
        }
        Assert.Equal("add", name);
        Assert.Equal(call.FunctionArguments.ToString(), streamedArguments.ToString());
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
    }

    [Fact]
    public async Task JsonSchemaResponseFormatGivesOutputThatValidates()
    {
        const string Schema = """{"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}, "pets": {"type": "array", "items": {"enum": ["dog", "cat"]}, "maxItems": 3}}, "required": ["name", "age", "pets"]}""";
        var options = new ChatCompletionOptions
        {
            MaxOutputTokenCount = 128,
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("person", BinaryData.FromString(Schema)),
        };

        ChatCompletion completion = await _server.OpenAi().GetChatClient("stories260k").CompleteChatAsync([new UserChatMessage("Describe Tom.")], options);

        using var output = JsonDocument.Parse(completion.Content[0].Text);
        Assert.True(Json.Schema.JsonSchema.FromText(Schema).Evaluate(output.RootElement).IsValid, completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
    }

    [Fact]
    public async Task SemanticKernelOpenAiConnectorRunsAgainstTheServer()
    {
        var kernel = Kernel.CreateBuilder()
            .AddOpenAIChatCompletion("stories260k", new Uri(_server.Address + "/v1"), apiKey: "unused")
            .Build();
        var settings = new Microsoft.SemanticKernel.Connectors.OpenAI.OpenAIPromptExecutionSettings { MaxTokens = 20 };

        var result = await kernel.InvokePromptAsync("Tell me a story about a cat.", new KernelArguments(settings));

        ChatCompletion direct = await _server.OpenAi().GetChatClient("stories260k").CompleteChatAsync(
            [new UserChatMessage("Tell me a story about a cat.")], new ChatCompletionOptions { MaxOutputTokenCount = 20 });
        Assert.Equal(direct.Content[0].Text, result.ToString());
    }

    [Fact]
    public async Task SemanticKernelOpenAiConnectorCallsAPluginThroughTheServer()
    {
        var kernel = Kernel.CreateBuilder()
            .AddOpenAIChatCompletion("stories260k", new Uri(_server.Address + "/v1"), apiKey: "unused")
            .Build();
        var calls = new List<(long A, long B)>();
        kernel.Plugins.AddFromFunctions("Math", [KernelFunctionFactory.CreateFromMethod((long a, long b) => { calls.Add((a, b)); return a + b; }, "Add", "Adds two numbers.")]);
        var settings = new Microsoft.SemanticKernel.Connectors.OpenAI.OpenAIPromptExecutionSettings
        {
            MaxTokens = 96,
            FunctionChoiceBehavior = FunctionChoiceBehavior.Required(),
        };

        var result = await kernel.InvokePromptAsync("What is 3 plus 4?", new KernelArguments(settings));

        Assert.NotEmpty(calls);
        Assert.False(string.IsNullOrWhiteSpace(result.ToString()));
    }

    [Fact]
    public async Task CompletionsModelsHealthAndMetrics()
    {
        var (status, body, _) = await _server.PostAsync("/v1/completions", """{"model": "stories260k", "prompt": "Once upon a time", "max_tokens": 10}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        Assert.StartsWith(", there was a little girl", body.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal(10, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        var models = JsonDocument.Parse(await _server.Http.GetStringAsync("/v1/models")).RootElement;
        Assert.Equal("stories260k", models.GetProperty("data")[0].GetProperty("id").GetString());
        Assert.Contains("ok", await _server.Http.GetStringAsync("/health"));

        var metrics = PrometheusText.Parse(await _server.Http.GetStringAsync("/metrics"));
        Assert.Equal(1, metrics.Value("agenthost_requests_total", ("endpoint", "completions"), ("status", "200")));
        Assert.Equal(10, metrics.Value("agenthost_completion_tokens_total", ("model", "stories260k")));
        Assert.Equal(0, metrics.Value("agenthost_queue_depth", ("model", "stories260k")));
        // Tokens per second: a histogram of the generations since OpenTelemetry's exporter serves /metrics (was a since-start gauge).
        Assert.Equal("histogram", metrics.Types["agenthost_tokens_per_second"]);
        Assert.Equal(1, metrics.Value("agenthost_tokens_per_second_count", ("model", "stories260k")));
    }

    [Fact]
    public async Task MetricsComeFromThisServersMetersOnly()
    {
        await using var other = await TestServer.StartAsync();
        var (status, _, _) = await other.PostAsync("/v1/chat/completions", Story);
        Assert.Equal(HttpStatusCode.OK, status);
        await other.PostAsync("/v1/embeddings", """{"model": "stories260k", "input": "The cat sat."}""");

        var mine = PrometheusText.Parse(await _server.Http.GetStringAsync("/metrics"));
        var theirs = PrometheusText.Parse(await other.Http.GetStringAsync("/metrics"));

        Assert.Empty(mine.Find("agenthost_completion_tokens_total"));
        Assert.Equal(24, theirs.Value("agenthost_completion_tokens_total", ("model", "stories260k")));
        Assert.Equal(1, theirs.Value("agenthost_generations_total", ("model", "stories260k"), ("operation", "chat"), ("strategy", "greedy")));
        var embeddings = Assert.Single(theirs.Find("agenthost_generations_total", ("model", "stories260k"), ("operation", "embeddings")));
        Assert.Equal(1, embeddings.Value);
        Assert.False(embeddings.Labels.ContainsKey("strategy"));
        Assert.Equal("gauge", theirs.Types["agenthost_active_generations"]);
        Assert.Equal(0, theirs.Value("agenthost_active_generations", ("model", "stories260k")));
    }

    [Fact]
    public async Task EmbeddingsOverHttpInFloatAndBase64AndThroughTheOpenAiSdk()
    {
        var (status, body, _) = await _server.PostAsync("/v1/embeddings", """{"model": "stories260k", "input": ["The cat sat.", "The cat sat.", "A big red car."]}""");

        Assert.Equal(HttpStatusCode.OK, status);
        var data = body.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal([0, 1, 2], data.Select(d => d.GetProperty("index").GetInt32()));
        var vectors = data.Select(d => d.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToList();
        Assert.Equal(vectors[0], vectors[1]);
        Assert.NotEqual(vectors[0], vectors[2]);
        Assert.Equal(1.0, Math.Sqrt(vectors[0].Sum(v => (double)v * v)), 4);
        Assert.True(body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() > 0);

        var (_, base64Body, _) = await _server.PostAsync("/v1/embeddings", """{"model": "stories260k", "input": "The cat sat.", "encoding_format": "base64"}""");
        var bytes = Convert.FromBase64String(base64Body.GetProperty("data")[0].GetProperty("embedding").GetString()!);
        Assert.Equal(vectors[0], System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray());

        var sdk = await _server.OpenAi().GetEmbeddingClient("stories260k").GenerateEmbeddingAsync("The cat sat.");
        Assert.Equal(vectors[0], sdk.Value.ToFloats().ToArray());

        var (badStatus, badBody, _) = await _server.PostAsync("/v1/embeddings", """{"model": "stories260k", "input": [1, 2, 3]}""");
        Assert.Equal(HttpStatusCode.BadRequest, badStatus);
        Assert.Equal("input", badBody.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task DecodingOptionsAndTheirStatisticsTravelAsExtraFields()
    {
        var (status, body, _) = await _server.PostAsync("/v1/chat/completions",
            """{"model": "stories260k", "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 24, "decoding_strategy": "recycling", "recycling_tree": "chain-2"}""");

        Assert.Equal(HttpStatusCode.OK, status);
        var decoding = body.GetProperty("decoding");
        Assert.Equal("recycling", decoding.GetProperty("strategy").GetString());
        Assert.True(decoding.GetProperty("stats").GetProperty("forwards").GetDouble() > 0);
        // Mean accepted tokens per forward: a histogram per generation (was a since-start gauge).
        var metrics = PrometheusText.Parse(await _server.Http.GetStringAsync("/metrics"));
        Assert.Equal(1, metrics.Value("agenthost_speculative_mat_count", ("model", "stories260k")));
        Assert.True(metrics.Value("agenthost_speculative_mat_sum", ("model", "stories260k")) >= 1);
    }

    [Theory]
    [InlineData("{not json", 400, null, "not valid JSON")]
    [InlineData("""{"model": "stories260k"}""", 400, "messages", "'messages' is required")]
    [InlineData("""{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}""", 400, "temperature", "'temperature' must be a number")]
    [InlineData("""{"model": "stories260k", "messages": [{"role": "wizard", "content": "hi"}]}""", 400, "messages[0].role", "must be system")]
    [InlineData("""{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "n": 2}""", 400, "n", "'n' must be 1")]
    [InlineData("""{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "decoding_strategy": "beam"}""", 400, "decoding_strategy", "Unknown decoding strategy")]
    [InlineData("""{"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}""", 404, "model", "does not exist")]
    public async Task BadRequestsGetOpenAiErrorsWithTheRightStatus(string json, int expectedStatus, string? param, string message)
    {
        var (status, body, _) = await _server.PostAsync("/v1/chat/completions", json);

        Assert.Equal(expectedStatus, (int)status);
        var error = body.GetProperty("error");
        Assert.Contains(message, error.GetProperty("message").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Equal(expectedStatus == 404 ? "model_not_found" : null, error.GetProperty("code").GetString());
    }

    // Issue 26 item 6: every field AgentHost does not implement is a 400 naming it, and every validation error names
    // its field in param, schema errors with the place inside the schema in the message; the server keeps serving.
    [Theory]
    [InlineData("/v1/chat/completions", "\"top_p\": 0", "top_p", "top-p must be in (0, 1]")]
    [InlineData("/v1/chat/completions", "\"min_p\": -1", "min_p", "min-p must be in [0, 1)")]
    [InlineData("/v1/chat/completions", "\"repeat_penalty\": 0", "repeat_penalty", "repeat penalty must be positive")]
    [InlineData("/v1/completions", "\"top_p\": 0", "top_p", "top-p must be in (0, 1]")]
    [InlineData("/v1/chat/completions", "\"decoding_strategy\": \"greedy\", \"min_p\": 0.1", "min_p", "does not apply")]
    [InlineData("/v1/completions", "\"best_of\": 2", "best_of", "'best_of' is not supported")]
    [InlineData("/v1/completions", "\"echo\": true", "echo", "'echo' is not supported")]
    [InlineData("/v1/completions", "\"suffix\": \"end\"", "suffix", "'suffix' is not supported")]
    [InlineData("/v1/completions", "\"n\": 3", "n", "'n' must be 1")]
    [InlineData("/v1/chat/completions", "\"grammar\": \"root ::= \\\"a\\\"\"", "grammar", "'grammar' is not supported")]
    [InlineData("/v1/chat/completions", "\"frobnicate\": 1", "frobnicate", "'frobnicate' is not a field")]
    [InlineData("/v1/completions", "\"frobnicate\": {}", "frobnicate", "'frobnicate' is not a field")]
    [InlineData("/v1/chat/completions", "\"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"x\", \"schema\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"strng\"}}}}}",
        "response_format.json_schema.schema", "Unknown type 'strng' at #/properties/a")]
    [InlineData("/v1/chat/completions", "\"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"x\", \"schema\": {\"$defs\": {\"a\": {\"type\": \"object\", \"properties\": {\"b\": {\"$ref\": \"#/$defs/b\"}}, \"required\": [\"b\"]}, \"b\": {\"type\": \"object\", \"properties\": {\"a\": {\"$ref\": \"#/$defs/a\"}}, \"required\": [\"a\"]}}, \"$ref\": \"#/$defs/a\"}}}",
        "response_format.json_schema.schema", "#/$defs/a requires #/$defs/b")]
    [InlineData("/v1/chat/completions", "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\", \"properties\": {\"n\": {\"type\": \"integer\", \"minimum\": 5, \"maximum\": 1}}}}}]",
        "tools[0].function.parameters", "#/properties/n")]
    public async Task EveryValidationErrorNamesItsFieldAndTheServerLives(string endpoint, string field, string param, string message)
    {
        var start = endpoint == "/v1/completions" ? "\"prompt\": \"Once\"" : "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]";
        var (status, body, _) = await _server.PostAsync(endpoint, $"{{\"model\": \"stories260k\", {start}, \"max_tokens\": 4, {field}}}");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        var error = body.GetProperty("error");
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Contains(message, error.GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.OK, (await _server.PostAsync(endpoint, $"{{\"model\": \"stories260k\", {start}, \"max_tokens\": 4, \"user\": \"u1\", \"logprobs\": null}}")).Status);
    }

    [Fact]
    public async Task ContextOverflowIsA400WithAClearMessage()
    {
        var longText = string.Join(' ', Enumerable.Repeat("the little dog ran to the park", 200));
        var (status, body, _) = await _server.PostAsync("/v1/chat/completions", JsonSerializer.Serialize(new
        {
            model = "stories260k",
            messages = new[] { new { role = "user", content = longText } },
        }));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("context_length_exceeded", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("context", body.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task UnknownRoutesAre404InOpenAiShape()
    {
        var response = await _server.Http.GetAsync("/v1/nothing");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("\"error\"", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task SixteenConcurrentStreamingClientsEachGetTheirSerialGreedyResultExceptAfterANearTie()
    {
        var prompts = Enumerable.Range(0, 16).Select(i => $"Tell me a story about child number {i} and a {(i % 2 == 0 ? "dog" : "cat")}.").ToArray();
        var chat = _server.OpenAi().GetChatClient("stories260k");
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 16 };
        var serial = new Dictionary<string, string>();
        foreach (var prompt in prompts)
            serial[prompt] = (await chat.CompleteChatAsync([new UserChatMessage(prompt)], options)).Value.Content[0].Text;

        var results = await Task.WhenAll(prompts.Select(prompt => Task.Run(async () =>
        {
            var texts = new List<string>();
            for (var request = 0; request < 5; request++)
            {
                var text = new StringBuilder();
                await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage(prompt)], options))
                {
                    foreach (var part in update.ContentUpdate)
                        text.Append(part.Text);
                }
                texts.Add(text.ToString());
            }
            return (prompt, texts);
        })));

        // Batched decoding sums in another order than a serial one: NearTie's rule says where a reply may part from
        // the serial greedy reply, computed here in-process from the same prompt (and checked to be the server's).
        using var model = LlamaModel.Load("stories260k", TestModels.Stories260K, new ModelSettings { ContextSize = 512, Threads = TestModels.Threads, BatchThreads = TestModels.Threads });
        using var session = await model.CreateSessionAsync();
        var format = ChatFormatCatalog.Default.Get("plain");
        foreach (var (prompt, texts) in results)
        {
            var promptTokens = format.Render([new Microsoft.Extensions.AI.ChatMessage(Microsoft.Extensions.AI.ChatRole.User, prompt)]).Tokenize(model);
            var reference = await session.GenerateAsync(new GreedyStrategy(),
                new GenerationRequest { Prompt = prompt, PromptTokens = promptTokens, MaxTokens = 16 });
            Assert.Equal(serial[prompt], reference.Text);
            foreach (var text in texts)
                await NearTie.AssertTextEqualUpToNearTieAsync(session, promptTokens, reference.Tokens, text, prompt);
        }
        var metrics = PrometheusText.Parse(await _server.Http.GetStringAsync("/metrics"));
        Assert.Equal(96, metrics.Value("agenthost_requests_total", ("endpoint", "chat"), ("status", "200")));
    }
}

public sealed class ServerLimitsTests
{
    // A reply that cannot end early: the JSON grammar needs 100 x 100 digits (about 20,000 tokens), more than the
    // 16,384-token context holds, so only cancellation (or a full context, many seconds later) stops it.
    private const string EndlessStream = """
        {"model": "stories260k", "messages": [{"role": "user", "content": "Count."}], "max_tokens": 20000, "stream": true,
         "response_format": {"type": "json_schema", "json_schema": {"name": "digits", "schema":
           {"type": "array", "minItems": 100, "maxItems": 100, "items": {"type": "array", "minItems": 100, "maxItems": 100, "items": {"type": "integer", "minimum": 0, "maximum": 9}}}}}}
        """;

    [Fact]
    public async Task ApiKeyIsRequiredEverywhereButHealth()
    {
        await using var server = await TestServer.StartAsync(o => o.ApiKey = "s3cret");

        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/health")).StatusCode);
        var denied = await server.Http.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, denied.StatusCode);
        Assert.Contains("invalid_api_key", await denied.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, (await server.Http.GetAsync("/metrics")).StatusCode);

        var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret");
        Assert.Equal(HttpStatusCode.OK, (await server.Http.SendAsync(request)).StatusCode);
        ChatCompletion completion = await server.OpenAi("s3cret").GetChatClient("stories260k").CompleteChatAsync([new UserChatMessage("Hi.")], new ChatCompletionOptions { MaxOutputTokenCount = 3 });
        Assert.Equal(3, completion.Usage.OutputTokenCount);
    }

    [Fact]
    public async Task WithBatchingConcurrentClientsShareDecodeSteps()
    {
        await using var server = await TestServer.StartAsync(o => o.Batching = true, contextSize: 2048);
        var bodies = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
        {
            var (status, body, _) = await server.PostAsync("/v1/chat/completions",
                $$"""{"model": "stories260k", "messages": [{"role": "user", "content": "Tell me about child {{i}}."}], "max_tokens": 24}""");
            Assert.Equal(HttpStatusCode.OK, status);
            return body;
        })));

        Assert.All(bodies, b => Assert.False(string.IsNullOrWhiteSpace(b.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString())));
        var meanBatches = bodies.Select(b => b.GetProperty("decoding").GetProperty("stats").GetProperty("mean_batch").GetDouble()).ToList();
        Assert.True(meanBatches.Max() > 1, "concurrent requests should be decoded together");
    }

    [Fact]
    public async Task ABodyOverTheLimitIs413()
    {
        await using var server = await TestServer.StartAsync(o => o.MaxBodyBytes = 1000);
        var big = JsonSerializer.Serialize(new { model = "stories260k", messages = new[] { new { role = "user", content = new string('a', 5000) } } });

        var (status, body, _) = await server.PostAsync("/v1/chat/completions", big);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal("request_too_large", body.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task AFullQueueIs429WithRetryAfterAndADisconnectFreesTheSlot()
    {
        await using var server = await TestServer.StartAsync(o =>
        {
            o.MaxQueue = 1;
        }, contextSize: 16384);

        // Hold the only slot with a long stream, reading just its first event.
        var hold = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(EndlessStream, Encoding.UTF8, "application/json") };
        var holding = await server.Http.SendAsync(hold, HttpCompletionOption.ResponseHeadersRead);
        var stream = await holding.Content.ReadAsStreamAsync();
        var reader = new StreamReader(stream);
        // The role chunk comes first; a content chunk means the generation holds the slot.
        string? line;
        do
            line = await reader.ReadLineAsync();
        while (line is not null && !(line.StartsWith("data: ", StringComparison.Ordinal) && line.Contains("\"content\":\"[", StringComparison.Ordinal)));
        Assert.NotNull(line);

        var (status, body, response) = await server.PostAsync("/v1/chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "Hi."}], "max_tokens": 3}""");
        Assert.Equal(HttpStatusCode.TooManyRequests, status);
        Assert.Equal("queue_full", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(TimeSpan.FromSeconds(1), response.Headers.RetryAfter?.Delta);

        // Disconnect mid-stream: the server cancels that generation and the slot is free again.
        holding.Dispose();
        var freed = false;
        // Within 5 s: the endless reply would hold the slot far longer (a 16K context) unless the disconnect cancels it.
        for (var i = 0; i < 50 && !freed; i++)
        {
            // Freed: the slot is back and the aborted request is counted (status 499, nobody left to answer).
            var metrics = PrometheusText.Parse(await server.Http.GetStringAsync("/metrics"));
            freed = metrics.Find("agenthost_queue_depth", ("model", "stories260k")).SingleOrDefault()?.Value == 0
                && metrics.Find("agenthost_requests_total", ("endpoint", "chat"), ("status", "499")).SingleOrDefault()?.Value == 1;
            if (!freed)
                await Task.Delay(100);
        }
        Assert.True(freed, "the slot was not freed after the client disconnected");
        var (after, afterBody, _) = await server.PostAsync("/v1/chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "Hi."}], "max_tokens": 3}""");
        Assert.Equal(HttpStatusCode.OK, after);
        Assert.Equal(3, afterBody.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }
}
