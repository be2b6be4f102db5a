using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using AgentHost.Extensions.AI;
using LlamaTestsSupport = AgentHost.Llama.Tests.Support;

namespace AgentHost.Tests;

/// <summary>
/// Attacks on the HTTP server, one class of fault per test, each written as the attack (the request, the file, the
/// signal): the answer is one clear error, nothing outside the configured state changes, and the server still serves.
/// </summary>
public sealed class ServerSecurityTests : IAsyncLifetime
{
    private const string Story = """{"model": "stories260k", "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 8}""";

    private TestServer _server = null!;

    // The folder the attacks name paths in: it must look the same afterwards.
    private string _sandbox = null!;

    public async Task InitializeAsync()
    {
        _sandbox = Directory.CreateTempSubdirectory("agenthost-attack-").FullName;
        _server = await TestServer.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_sandbox, recursive: true);
    }

    public static TheoryData<string, string> FileFields()
    {
        var data = new TheoryData<string, string>();
        foreach (var endpoint in new[] { "/v1/chat/completions", "/v1/completions" })
        {
            foreach (var key in AgentHost.Llama.Decoding.DecodingStrategies.FileOptionKeys)
                data.Add(endpoint, key);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(FileFields))]
    public async Task ARequestFieldNamingAFileIs400AndNoFileChanges(string endpoint, string key)
    {
        var victim = Path.Combine(_sandbox, "victim.txt");
        await File.WriteAllTextAsync(victim, "keep me");
        var before = Snapshot(_sandbox);
        var newFile = Path.Combine(_sandbox, "made", "by", "attacker.bin");

        foreach (var target in new[] { newFile, victim, _sandbox, "relative.bin", "" })
        {
            foreach (var strategy in new[] { "recycling", "toolkens", null })
            {
                var body = new Dictionary<string, object?> { ["model"] = "stories260k", ["max_tokens"] = 8, [key] = target };
                if (endpoint.EndsWith("chat/completions", StringComparison.Ordinal))
                    body["messages"] = new[] { new { role = "user", content = "Tell me a story." } };
                else
                    body["prompt"] = "Once upon a time";
                if (strategy is not null)
                    body[ChatRequestMapper.StrategyKey] = strategy;

                var (status, error, _) = await _server.PostAsync(endpoint, JsonSerializer.Serialize(body));

                Assert.Equal(HttpStatusCode.BadRequest, status);
                Assert.Equal(key, error.GetProperty("error").GetProperty("param").GetString());
                Assert.Contains("server-side file", error.GetProperty("error").GetProperty("message").GetString());
            }
        }

        Assert.Equal(before, Snapshot(_sandbox));
        Assert.False(File.Exists(Path.Combine(Path.GetTempPath(), "relative.bin")));
        await AssertStillServesAsync(_server);
    }

    [Fact]
    public async Task ARequestNeverDownloadsOrBuildsAModel()
    {
        // A catalog entry a real loopback origin would serve GGUF bytes for, and a stand-in not built yet: a client
        // naming either must not start a download (gigabytes for the catalog's real models) or a build.
        using var origin = LlamaTestsSupport.LoopbackHttpServer.Serving(await File.ReadAllBytesAsync(Llama.Tests.TestModels.Stories260K));
        using var cache = new LlamaTestsSupport.TempFolder();
        void Catalog(Llama.Models.AgentHostOptions options)
        {
            options.AllowDownload = true;
            options.CacheDir = cache.Path;
            options.Models["fetched"] = new Llama.Models.ModelSettings { File = "fetched.gguf", Url = origin.Url("/fetched.gguf").ToString() };
            options.Models["built"] = new Llama.Models.ModelSettings { File = "built.gguf", StandIn = new Llama.Models.StandInSettings { Source = "stories260k" } };
        }
        string[] missing = ["fetched", "built"];

        // By default the server answers for its default model and what is already on this machine only.
        await using (var server = await TestServer.StartAsync(catalog: Catalog))
        {
            var listed = JsonDocument.Parse(await server.Http.GetStringAsync("/v1/models")).RootElement.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString());
            Assert.Equal(["stories260k"], listed);
            foreach (var (endpoint, name) in Requests(missing))
            {
                var (status, body, _) = await server.PostAsync(endpoint, Body(endpoint, name));
                Assert.Equal(HttpStatusCode.NotFound, status);
                Assert.Equal("model_not_found", body.GetProperty("error").GetProperty("code").GetString());
            }
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("/v1/chat/completions", Story)).Status);
        }

        // Listed by the operator but not fetched: a request is refused (serve itself fetches listed models before it listens).
        await using (var server = await TestServer.StartAsync(o => o.Models = "stories260k; fetched; built", catalog: Catalog))
        {
            foreach (var (endpoint, name) in Requests(missing))
            {
                var (status, body, _) = await server.PostAsync(endpoint, Body(endpoint, name));
                Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
                Assert.Equal("model_unavailable", body.GetProperty("error").GetProperty("code").GetString());
                Assert.Contains($"agenthost models pull {name}", body.GetProperty("error").GetProperty("message").GetString());
            }
            Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("/v1/chat/completions", Story)).Status);
        }

        Assert.Equal(0, origin.RequestCount);
        Assert.Empty(cache.Files());

        static IEnumerable<(string Endpoint, string Model)> Requests(string[] names) =>
            from name in names from endpoint in new[] { "/v1/chat/completions", "/v1/completions", "/v1/embeddings" } select (endpoint, name);

        // Each endpoint's own fields: a field an endpoint does not know is a 400 naming it.
        static string Body(string endpoint, string model) => JsonSerializer.Serialize(endpoint switch
        {
            "/v1/chat/completions" => new Dictionary<string, object> { ["model"] = model, ["max_tokens"] = 4, ["messages"] = new[] { new { role = "user", content = "Hi" } } },
            "/v1/completions" => new Dictionary<string, object> { ["model"] = model, ["max_tokens"] = 4, ["prompt"] = "Hi" },
            _ => new Dictionary<string, object> { ["model"] = model, ["input"] = "Hi" },
        });
    }

    [Fact]
    public async Task AServedNameTheCatalogLacksIsRefusedAtStartNamingTheKey()
    {
        var error = await Assert.ThrowsAsync<Llama.AgentHostException>(() => TestServer.StartAsync(o => o.Models = "stories260k;nosuch"));

        Assert.Contains("Server:Models names 'nosuch'", error.Message);
    }

    [Fact]
    public async Task RecyclingStateLivesInTheConfiguredFolderUnderANameTheServerChooses()
    {
        var state = Path.Combine(_sandbox, "state");
        await using var server = await TestServer.StartAsync(o => o.StateDirectory = state);

        var (status, body, _) = await server.PostAsync("/v1/chat/completions",
            """{"model": "stories260k", "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 16, "decoding_strategy": "recycling"}""");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("recycling", body.GetProperty("decoding").GetProperty("strategy").GetString());
        Assert.Equal([Path.Combine(state, "stories260k.recycling-matrix")], Directory.GetFileSystemEntries(state));
        Assert.Equal([state], Directory.GetFileSystemEntries(_sandbox));
    }

    [Theory]
    [InlineData("evil.example")]
    [InlineData("evil.example:8080")]
    [InlineData("localhost.evil.example")]
    [InlineData("127.0.0.1.nip.io")]
    public async Task AForeignHostHeaderIs421OnEveryEndpoint(string host)
    {
        foreach (var (method, path) in new[] { ("GET", "/health"), ("GET", "/v1/models"), ("GET", "/metrics"), ("POST", "/v1/chat/completions"), ("POST", "/v1/embeddings") })
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (method == "POST")
                request.Content = new StringContent(Story, Encoding.UTF8, "application/json");
            request.Headers.Host = host;

            using var response = await _server.Http.SendAsync(request);

            Assert.Equal(HttpStatusCode.MisdirectedRequest, response.StatusCode);
            Assert.Contains("host_not_allowed", await response.Content.ReadAsStringAsync());
        }
        await AssertStillServesAsync(_server);
    }

    [Fact]
    public async Task AllowedHostsAdmitsTheConfiguredNameBesideLoopbackAndIps()
    {
        await using var server = await TestServer.StartAsync(o => o.AllowedHosts = "agent.internal");

        foreach (var (host, expected) in new[] { ("agent.internal", HttpStatusCode.OK), ("AGENT.internal:9000", HttpStatusCode.OK), ("localhost", HttpStatusCode.OK), ("[::1]:80", HttpStatusCode.OK), ("10.1.2.3", HttpStatusCode.OK), ("other.internal", HttpStatusCode.MisdirectedRequest) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/health");
            request.Headers.Host = host;
            using var response = await server.Http.SendAsync(request);
            Assert.True(expected == response.StatusCode, $"Host {host}: {response.StatusCode}");
        }
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("text/plain; charset=utf-8")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("multipart/form-data; boundary=x")]
    [InlineData("application/json; charset=utf-16")]
    [InlineData("application/jsonp")]
    [InlineData("json")]
    [InlineData(null)]
    public async Task APostWhoseBodyIsNotDeclaredJsonIs415(string? contentType)
    {
        foreach (var path in new[] { "/v1/chat/completions", "/v1/completions", "/v1/embeddings" })
        {
            using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(Story));
            if (contentType is not null)
                content.Headers.TryAddWithoutValidation("Content-Type", contentType);

            using var response = await _server.Http.PostAsync(path, content);

            Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
            Assert.Contains("unsupported_media_type", await response.Content.ReadAsStringAsync());
        }
        await AssertStillServesAsync(_server);
    }

    [Fact]
    public async Task EveryEndpointGoesThroughOneAtomicAdmission()
    {
        await using var server = await TestServer.StartAsync(o =>
        {
            o.MaxQueue = 4;
            o.MaxEmbeddingInputs = 2000;
        });
        var embed = JsonSerializer.Serialize(new { model = "stories260k", input = Enumerable.Range(0, 300).Select(i => $"The little dog number {i} ran to the park.").ToArray() });
        var chat = """{"model": "stories260k", "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 200}""";

        var deepest = 0;
        using var stop = new CancellationTokenSource();
        var watcher = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                deepest = Math.Max(deepest, QueueDepth(await server.Http.GetStringAsync("/metrics")));
                await Task.Delay(10);
            }
        });
        var start = new TaskCompletionSource();
        var requests = Enumerable.Range(0, 16).Select(async i =>
        {
            await start.Task;
            var (status, _, _) = await server.PostAsync(i % 2 == 0 ? "/v1/embeddings" : "/v1/chat/completions", i % 2 == 0 ? embed : chat);
            return status;
        }).ToList();
        start.SetResult();
        var statuses = await Task.WhenAll(requests);
        await stop.CancelAsync();
        await watcher;

        Assert.All(statuses, s => Assert.True(s is HttpStatusCode.OK or HttpStatusCode.TooManyRequests, s.ToString()));
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        Assert.Contains(HttpStatusCode.OK, statuses);
        Assert.InRange(deepest, 1, 4);
        Assert.Equal(0, QueueDepth(await server.Http.GetStringAsync("/metrics")));
    }

    [Fact]
    public async Task TooManyEmbeddingInputsIs413NamingTheLimit()
    {
        var (status, body, _) = await _server.PostAsync("/v1/embeddings", JsonSerializer.Serialize(new { model = "stories260k", input = Enumerable.Repeat("a dog", 65).ToArray() }));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal("input", body.GetProperty("error").GetProperty("param").GetString());
        Assert.Contains("Server:MaxEmbeddingInputs", body.GetProperty("error").GetProperty("message").GetString());
        await AssertStillServesAsync(_server);
    }

    [Theory]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [5]}""", "messages[0]")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "a\ud800b"}]}""", "messages[0].content")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": [{"type": "text", "text": "\udfff"}]}]}""", "messages[0].content")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": [{"type": 5}]}]}""", "messages[0].content")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": 5, "content": "hi"}]}""", "messages[0].role")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "assistant", "tool_calls": [5]}]}""", "messages[0].tool_calls[0]")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "assistant", "tool_calls": "add"}]}""", "messages[0].tool_calls")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "assistant", "tool_calls": [{"id": "1", "type": "function", "function": {"name": "", "arguments": "{}"}}]}]}""", "messages[0].tool_calls[0].function.name")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "assistant", "tool_calls": [{"id": "1", "type": "function", "function": {"name": "add", "arguments": 5}}]}]}""", "messages[0].tool_calls[0].function.arguments")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "assistant", "tool_calls": [{"id": "1", "type": "function", "function": {"name": "add", "arguments": "[1]"}}]}]}""", "messages[0].tool_calls[0].function.arguments")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "assistant", "tool_calls": [{"id": 1, "type": "function", "function": {"name": "add"}}]}]}""", "messages[0].tool_calls[0].id")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "tool", "tool_call_id": "\ud800", "content": "7"}]}""", "messages[0].tool_call_id")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": ""}}]}""", "tools[0].function.name")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "a b\"}"}}]}""", "tools[0].function.name")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "add", "parameters": 5}}]}""", "tools[0].function.parameters")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "add", "description": ["x"]}}]}""", "tools[0].function.description")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "add"}}, {"type": "function", "function": {"name": "add"}}]}""", "tools[1].function.name")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "tools": [5]}""", "tools[0]")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": 5}]}""", "tools[0]")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "add"}}], "tool_choice": {"type": "function", "function": {"name": ""}}}""", "tool_choice.function.name")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "tool_choice": "sometimes"}""", "tool_choice")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "stream_options": 5}""", "stream_options")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "stream": true, "stream_options": {"include_usage": "yes"}}""", "stream_options.include_usage")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1.5}""", "max_tokens")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "top_k": 2.5}""", "top_k")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "top_k": 1e12}""", "top_k")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "stop": [5]}""", "stop")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "stop": "\ud800"}""", "stop")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": 5}}""", "response_format.type")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema", "json_schema": {"name": 5, "schema": {}}}}""", "response_format.json_schema.name")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "decoding_strategy": {"name": "greedy"}}""", "decoding_strategy")]
    [InlineData("chat/completions", """{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "decoding_strategy": "\ud800"}""", "decoding_strategy")]
    [InlineData("chat/completions", """{"model": ["stories260k"], "messages": [{"role": "user", "content": "hi"}]}""", "model")]
    [InlineData("completions", """{"model": "stories260k", "prompt": "\ud800"}""", "prompt")]
    [InlineData("completions", """{"model": "stories260k", "prompt": [5]}""", "prompt")]
    [InlineData("embeddings", """{"model": "stories260k", "input": ["ok", 5]}""", "input")]
    [InlineData("embeddings", """{"model": "stories260k", "input": "\udfff"}""", "input")]
    [InlineData("embeddings", """{"model": "stories260k", "input": "ok", "encoding_format": 5}""", "encoding_format")]
    public async Task AWronglyTypedOrInvalidFieldIs400NamingIt(string endpoint, string json, string param)
    {
        var (status, body, _) = await _server.PostAsync($"/v1/{endpoint}", json);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(param, body.GetProperty("error").GetProperty("param").GetString());
        Assert.Equal("invalid_request_error", body.GetProperty("error").GetProperty("type").GetString());
        await AssertStillServesAsync(_server);
    }

    [Fact]
    public async Task InvalidUtf8BytesInTheBodyAre400()
    {
        var prefix = Encoding.UTF8.GetBytes("""{"model": "stories260k", "messages": [{"role": "user", "content": "a""");
        var suffix = Encoding.UTF8.GetBytes("""b"}]}""");
        foreach (var bad in new byte[][] { [0xFF], [0xC3], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80] })
        {
            using var content = new ByteArrayContent([.. prefix, .. bad, .. suffix]);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");

            using var response = await _server.Http.PostAsync("/v1/chat/completions", content);

            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains("invalid_request_error", await response.Content.ReadAsStringAsync());
        }
        await AssertStillServesAsync(_server);
    }

    [Fact]
    public async Task McpRequestsAreBoundedByMaxQueue()
    {
        // A tool that holds its call until released: the one MCP place is taken for as long as the test says.
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var kernel = new Microsoft.SemanticKernel.Kernel();
        kernel.Plugins.Add(Microsoft.SemanticKernel.KernelPluginFactory.CreateFromFunctions("Gate", [Microsoft.SemanticKernel.KernelFunctionFactory.CreateFromMethod(async () =>
        {
            started.TrySetResult();
            await release.Task;
            return "released";
        }, "Hold")]));
        await using var server = await TestServer.StartAsync(o => o.MaxQueue = 1, mcpTools: _ => AgentHost.SemanticKernel.Mcp.McpServerTools.CreateOptions(kernel, null));
        const string list = """{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}""";

        var held = McpPostAsync(server, """{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "Gate_Hold", "arguments": {}}}""");
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var refused = await McpPostAsync(server, list);
        release.SetResult();
        var answer = await (await held).Content.ReadAsStringAsync();
        var after = await McpPostAsync(server, list);

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("queue_full", JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("released", answer);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Contains("Gate_Hold", await after.Content.ReadAsStringAsync());
        await AssertStillServesAsync(server);

        static Task<HttpResponseMessage> McpPostAsync(TestServer server, string json)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/mcp") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
            request.Headers.Accept.ParseAdd("application/json");
            request.Headers.Accept.ParseAdd("text/event-stream");
            return server.Http.SendAsync(request);
        }
    }

    [Fact]
    public async Task ABodySentTooSlowlyIs408()
    {
        await using var server = await TestServer.StartAsync(o => o.BodyTimeoutSeconds = 2);
        var address = new Uri(server.Address);
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(address.Host, address.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /v1/chat/completions HTTP/1.1\r\nHost: {address.Authority}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"model\": "));

        // One byte of JSON whitespace every 200 ms: above nothing, below every sensible rate, never finishing.
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var trickle = Task.Run(async () =>
        {
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    await stream.WriteAsync(" "u8.ToArray(), stop.Token);
                    await Task.Delay(200, stop.Token);
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
            {
            }
        });
        var reader = new StreamReader(stream, Encoding.ASCII);
        var statusLine = await reader.ReadLineAsync(stop.Token);
        await stop.CancelAsync();
        await trickle;

        Assert.StartsWith("HTTP/1.1 408", statusLine);
        await AssertStillServesAsync(server);
    }

    [Theory]
    [InlineData("\"min_p\": 0.2", "sample")]
    [InlineData("\"repeat_penalty\": 1.3", "sample")]
    [InlineData("\"min_p\": \"0.2\"", "sample")]
    [InlineData("\"frequency_penalty\": 0.5", "sample")]
    [InlineData("\"temperature\": 0", "greedy")]
    [InlineData("\"temperature\": 0, \"top_p\": 1", "sample")]
    [InlineData("\"decoding_strategy\": \"recycling\", \"min_p\": 0.1, \"seed\": 3", "recycling")]
    public async Task ASamplingOptionSelectsSampleWhenNoStrategyIsNamed(string fields, string strategy)
    {
        var (status, body, _) = await _server.PostAsync("/v1/chat/completions",
            $$"""{"model": "stories260k", "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 8, {{fields}}}""");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(strategy, body.GetProperty("decoding").GetProperty("strategy").GetString());
    }

    [Theory]
    [InlineData("\"min_p\": 7", "min-p")]
    [InlineData("\"min_p\": \"lots\"", "min_p")]
    [InlineData("\"repeat_penalty\": -1", "repeat penalty")]
    [InlineData("\"repeat_penalty\": true", "repeat_penalty")]
    [InlineData("\"decoding_strategy\": \"greedy\", \"top_p\": 0.5", "'top_p' does not apply")]
    [InlineData("\"decoding_strategy\": \"greedy\", \"min_p\": 0.1", "'min_p' does not apply")]
    [InlineData("\"decoding_strategy\": \"greedy\", \"seed\": 4", "'seed' does not apply")]
    [InlineData("\"decoding_strategy\": \"greedy\", \"temperature\": 0.8", "'temperature' does not apply")]
    [InlineData("\"decoding_strategy\": \"lookup\", \"recycling_tree\": \"chain-2\"", "'recycling_tree' does not apply")]
    [InlineData("\"decoding_strategy\": \"toolkens\"", "toolkens")]
    public async Task AnInvalidOrMisplacedDecodingOptionIs400NamingIt(string fields, string message)
    {
        foreach (var (path, body) in new[] { ("/v1/chat/completions", "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]"), ("/v1/completions", "\"prompt\": \"Once\"") })
        {
            var (status, error, _) = await _server.PostAsync(path, $$"""{"model": "stories260k", "max_tokens": 8, {{body}}, {{fields}}}""");

            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Contains(message, error.GetProperty("error").GetProperty("message").GetString());
        }
    }

    internal static async Task AssertStillServesAsync(TestServer server)
    {
        var (status, body, _) = await server.PostAsync("/v1/chat/completions", Story);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(string.IsNullOrEmpty(body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()));
    }

    internal static int QueueDepth(string metrics)
        => (int)(PrometheusText.Parse(metrics).Find("agenthost_queue_depth", ("model", "stories260k")).SingleOrDefault()?.Value ?? 0);

    // Every entry under the folder with its size and write time: equal snapshots mean nothing was created, changed or removed.
    private static string Snapshot(string folder) => string.Join('\n', Directory
        .EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories)
        .Order(StringComparer.Ordinal)
        .Select(p => File.Exists(p) ? $"{p} {new FileInfo(p).Length} {File.GetLastWriteTimeUtc(p):O}" : $"{p}/"));
}

/// <summary>The real <c>serve</c> process: its settings checked at start, and stopped by SIGTERM.</summary>
public sealed class ServeProcessTests
{
    [Theory]
    [InlineData("--urls", "notaurl", null, "Server:Urls")]
    [InlineData("--urls", "http://myhost.invalid:0", null, "Server:Urls")]
    [InlineData("--urls", "ftp://127.0.0.1:0", null, "Server:Urls")]
    [InlineData("--urls", "http://127.0.0.1:0/base", null, "Server:Urls")]
    [InlineData("--urls", "http://127.0.0.1:0", "MaxBodyBytes=-1", "Server:MaxBodyBytes")]
    [InlineData("--urls", "http://127.0.0.1:0", "MaxQueue=0", "Server:MaxQueue")]
    [InlineData("--urls", "http://127.0.0.1:0", "MaxQueue=many", "Server:MaxQueue")]
    [InlineData("--urls", "http://127.0.0.1:0", "BodyTimeoutSeconds=0", "Server:BodyTimeoutSeconds")]
    [InlineData("--urls", "http://127.0.0.1:0", "MaxEmbeddingInputs=-3", "Server:MaxEmbeddingInputs")]
    [InlineData("--urls", "http://127.0.0.1:0", "ShutdownTimeoutSeconds=-1", "Server:ShutdownTimeoutSeconds")]
    public async Task ABadServerSettingExits2WithOneLineNamingTheKey(string option, string value, string? setting, string key)
    {
        var environment = new Dictionary<string, string>();
        if (setting?.Split('=') is [var name, var text])
            environment[$"AGENTHOST_Server__{name}"] = text;

        var result = await AgentHostProcess.RunAsync(["serve", option, value], environment, TimeSpan.FromSeconds(90));

        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", line);
        Assert.Contains(key, line);
    }

    [Fact]
    public async Task APortInUseExits1WithOneLine()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;

        var result = await AgentHostProcess.RunAsync(["serve", "--urls", $"http://127.0.0.1:{port}"], timeout: TimeSpan.FromSeconds(90));

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("cannot listen on", result.StdErr);
        Assert.DoesNotContain("   at ", result.StdErr);
    }

    [Fact]
    public async Task SigtermStopsAcceptingDrainsTheStreamWithinTheBoundAndExits0()
    {
        using var serve = await ServeProcess.StartAsync(new Dictionary<string, string>
        {
            // A context large enough that the reply below cannot end by itself within the drain time.
            ["AGENTHOST_AgentHost__Models__stories260k__ContextSize"] = "16384",
            ["AGENTHOST_Server__ShutdownTimeoutSeconds"] = "3",
        });
        var process = serve.Process;
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{serve.Port}") };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(ServerSoakTests.EndlessStream, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        string? line;
        do
            line = await reader.ReadLineAsync();
        while (line is not null && !line.Contains("\"content\":\"[", StringComparison.Ordinal));
        Assert.NotNull(line);

        var signalled = Stopwatch.StartNew();
        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]))
            await kill.WaitForExitAsync();

        // The stream ends within the drain bound: finished ([DONE]) or closed by the server, never hanging.
        var rest = new StringBuilder();
        try
        {
            while ((line = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30))) is not null)
                rest.AppendLine(line);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
        }
        await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);

        Assert.Equal(0, process.ExitCode);
        Assert.InRange(signalled.Elapsed.TotalSeconds, 0, 20);
        Assert.DoesNotContain("\"error\"", rest.ToString());
        Assert.Contains("stopped.", serve.StdErr);
        Assert.DoesNotContain("   at ", serve.StdErr);
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync("/health"));
    }
}

/// <summary>Runs alone (memory is measured): many clients mixing every kind of request for a bounded time.</summary>
[CollectionDefinition(nameof(ServerSoakTests), DisableParallelization = true)]
public sealed class ServerSoakCollection;

[Collection(nameof(ServerSoakTests))]
public sealed class ServerSoakTests(Xunit.Abstractions.ITestOutputHelper output)
{
    // A reply that cannot end early: the JSON grammar needs about 20,000 tokens, more than the 16,384-token context holds.
    internal const string EndlessStream = """
        {"model": "stories260k", "messages": [{"role": "user", "content": "Count."}], "max_tokens": 20000, "stream": true,
         "response_format": {"type": "json_schema", "json_schema": {"name": "digits", "schema":
           {"type": "array", "minItems": 100, "maxItems": 100, "items": {"type": "array", "minItems": 100, "maxItems": 100, "items": {"type": "integer", "minimum": 0, "maximum": 9}}}}}}
        """;

    private const string StreamedStory = """{"model": "stories260k", "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 48, "stream": true}""";

    private const string ToolCall = """
        {"model": "stories260k", "messages": [{"role": "user", "content": "What is 3 plus 4?"}], "max_tokens": 96, "tool_choice": "required",
         "tools": [{"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}]}
        """;

    private const string Embeddings = """{"model": "stories260k", "input": ["The dog ran.", "A cat sat on the mat.", "Lily saw a big red ball."]}""";

    // Stated margins: after a full GC, managed memory may grow by 8 MiB and the process's resident set by 64 MiB.
    private const long ManagedMargin = 8L << 20;
    private const long ProcessMargin = 64L << 20;

    [Fact]
    public async Task EightClientsMixingEveryKindOfRequestGetValidAnswersAndMemoryStaysFlat()
    {
        await using var server = await TestServer.StartAsync(o => o.MaxQueue = 64, contextSize: 16384);
        for (var warm = 0; warm < 2; warm++)
            await Task.WhenAll(Enumerable.Range(0, 8).Select(i => RunOneAsync(server, i)));
        var (managedBefore, processBefore) = Memory();

        var answered = 0;
        var disconnected = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(25);
        await Task.WhenAll(Enumerable.Range(0, 8).Select(client => Task.Run(async () =>
        {
            // At least one full cycle of the four kinds per client, then on until the deadline.
            for (var i = client; i < client + 4 || DateTime.UtcNow < deadline; i++)
            {
                if (await RunOneAsync(server, i))
                    Interlocked.Increment(ref answered);
                else
                    Interlocked.Increment(ref disconnected);
            }
        })));

        await ServerSecurityTests.AssertStillServesAsync(server);
        Assert.Equal(0, ServerSecurityTests.QueueDepth(await server.Http.GetStringAsync("/metrics")));
        var (managedAfter, processAfter) = Memory();
        output.WriteLine($"{answered} answers, {disconnected} disconnects; managed {managedBefore:N0} -> {managedAfter:N0} B, process {processBefore:N0} -> {processAfter:N0} B");
        // Every client ran every kind at least once (each cycles through the four kinds); a 2-core machine shared with other builds is slow.
        Assert.True(answered >= 24 && disconnected >= 8, $"only {answered} answers and {disconnected} disconnects in 25 s");
        Assert.True(managedAfter - managedBefore < ManagedMargin, $"managed memory grew from {managedBefore:N0} to {managedAfter:N0} bytes");
        Assert.True(processAfter - processBefore < ProcessMargin, $"process memory grew from {processBefore:N0} to {processAfter:N0} bytes");
    }

    /// <summary>One request of kind <paramref name="i"/> mod 4, its answer checked; false for a deliberate disconnect.</summary>
    private static async Task<bool> RunOneAsync(TestServer server, int i)
    {
        switch (i % 4)
        {
            case 0:
            {
                var text = await StreamAsync(server, StreamedStory, stopAfterFirstContent: false);
                Assert.EndsWith("data: [DONE]", text.TrimEnd());
                Assert.Contains("\"finish_reason\":\"", text);
                return true;
            }
            case 1:
                await StreamAsync(server, EndlessStream, stopAfterFirstContent: true);
                return false;
            case 2:
            {
                var (status, body, _) = await server.PostAsync("/v1/chat/completions", ToolCall);
                Assert.Equal(HttpStatusCode.OK, status);
                var call = body.GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls")[0].GetProperty("function");
                Assert.Equal("add", call.GetProperty("name").GetString());
                using var arguments = JsonDocument.Parse(call.GetProperty("arguments").GetString()!);
                Assert.Equal(JsonValueKind.Number, arguments.RootElement.GetProperty("a").ValueKind);
                return true;
            }
            default:
            {
                var (status, body, _) = await server.PostAsync("/v1/embeddings", Embeddings);
                Assert.Equal(HttpStatusCode.OK, status);
                Assert.Equal(3, body.GetProperty("data").GetArrayLength());
                Assert.True(body.GetProperty("data")[2].GetProperty("embedding").GetArrayLength() > 0);
                return true;
            }
        }
    }

    private static async Task<string> StreamAsync(TestServer server, string json, bool stopAfterFirstContent)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        using var response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var text = new StringBuilder();
        while (await reader.ReadLineAsync() is { } line)
        {
            text.AppendLine(line);
            if (stopAfterFirstContent && line.Contains("\"content\":\"[", StringComparison.Ordinal))
                return text.ToString();   // disposing the response here disconnects mid-stream
        }
        return text.ToString();
    }

    private static (long Managed, long Process) Memory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var self = Process.GetCurrentProcess();
        return (GC.GetTotalMemory(forceFullCollection: true), self.WorkingSet64);
    }
}
