using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using AgentHost.Llama.Models;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.SemanticKernel;
using OpenAI.Chat;
using ChatMessage = Microsoft.Extensions.AI.ChatMessage;
using ChatRole = Microsoft.Extensions.AI.ChatRole;

namespace AgentHost.Tests;

/// <summary>
/// Remote catalog entries: a second AgentHost server (real Kestrel serving stories260K behind an API key) plays the
/// OpenAI-compatible endpoint, and the CLI, the server's router and the libraries' registration use it as a model.
/// </summary>
public sealed class RemoteModelTests : IAsyncLifetime
{
    private const string Key = "remote-s3cret";
    private TestServer _backend = null!;

    // An agent's prompt (instructions and tool descriptions) needs more than the default 512 tokens.
    public async Task InitializeAsync() => _backend = await TestServer.StartAsync(o => o.ApiKey = Key, contextSize: 2048);

    public async Task DisposeAsync() => await _backend.DisposeAsync();

    private string Endpoint => _backend.Address + "/v1";

    /// <summary>The catalog entry <c>remote</c> as environment variables: the backend's stories260k, its key in a variable.</summary>
    private Dictionary<string, string> RemoteEntry(string? endpoint = null, string key = Key, int retries = 2) => new()
    {
        ["AGENTHOST_AgentHost__Models__remote__Remote__Endpoint"] = endpoint ?? Endpoint,
        ["AGENTHOST_AgentHost__Models__remote__Remote__Model"] = "stories260k",
        ["AGENTHOST_AgentHost__Models__remote__Remote__ApiKeyVariable"] = "REMOTE_TEST_KEY",
        ["AGENTHOST_AgentHost__Models__remote__Remote__MaxRetries"] = retries.ToString(CultureInfo.InvariantCulture),
        ["REMOTE_TEST_KEY"] = key,
    };

    private RemoteModelSettings RemoteSettings(string key = Key) => new() { Endpoint = Endpoint, Model = "stories260k", ApiKey = key, MaxRetries = 0 };

    private async Task<int> BackendChatRequestsAsync()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        request.Headers.Authorization = new("Bearer", Key);
        var metrics = PrometheusText.Parse(await (await _backend.Http.SendAsync(request)).Content.ReadAsStringAsync());
        return (int)(metrics.Find("agenthost_requests_total", ("endpoint", "chat"), ("status", "200")).SingleOrDefault()?.Value ?? 0);
    }

    [Fact]
    public async Task An_agent_runs_unchanged_on_a_remote_model_and_its_tool_round_trips_through_the_remote_server()
    {
        var result = await AgentHostProcess.RunAsync(["run", "--agent", "calculator", "--model", "remote", "--input", "What is 2 plus 2?", "--json"], RemoteEntry());

        Assert.True(result.ExitCode == 0, result.StdErr);
        using var json = JsonDocument.Parse(result.StdOut);
        var trace = json.RootElement.GetProperty("trace").EnumerateArray().ToList();
        Assert.Equal(["call", "result"], trace.Take(2).Select(t => t.GetProperty("kind").GetString()));
        Assert.Equal("Math_Add", trace[0].GetProperty("function").GetString());
        Assert.False(trace[1].GetProperty("failed").GetBoolean());
        Assert.False(string.IsNullOrWhiteSpace(json.RootElement.GetProperty("answer").GetString()));
        // The call, then the answer to its result: both decoded by the backend.
        Assert.True(await BackendChatRequestsAsync() >= 2);
    }

    [Fact]
    public async Task Chat_on_a_remote_model_streams_what_the_local_model_says()
    {
        var remote = await AgentHostProcess.RunAsync(["chat", "--model", "remote", "--max-tokens", "20"], RemoteEntry(), input: "Tell me a story.\n/stats\n");
        var local = await AgentHostProcess.RunAsync(["chat", "--model", "stories260k", "--max-tokens", "20"], input: "Tell me a story.\n");

        Assert.True(remote.ExitCode == 0, remote.StdErr);
        Assert.Equal(0, local.ExitCode);
        // Greedy on both sides, the same chat format: the same reply, token for token.
        Assert.False(string.IsNullOrWhiteSpace(local.StdOut));
        Assert.Equal(local.StdOut, remote.StdOut);
        Assert.Contains("reply 20 tokens", remote.StdErr);
    }

    [Fact]
    public async Task An_unreachable_endpoint_is_one_clear_error_after_its_retries()
    {
        var port = FreePort();

        var result = await AgentHostProcess.RunAsync(["run", "--agent", "calculator", "--model", "remote", "--input", "What is 2 plus 2?"],
            RemoteEntry(endpoint: $"http://127.0.0.1:{port}/v1", retries: 1), timeout: TimeSpan.FromSeconds(90));

        Assert.True(result.ExitCode == 1, result.StdErr);
        var error = Assert.Single(result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: Remote model 'remote' at http://127.0.0.1:{port}/v1 could not be reached (", error);
        Assert.EndsWith("after 1 retries.", error);
    }

    [Fact]
    public async Task A_wrong_key_is_one_clear_error_naming_the_setting()
    {
        var result = await AgentHostProcess.RunAsync(["run", "--agent", "calculator", "--model", "remote", "--input", "What is 2 plus 2?"], RemoteEntry(key: "wrong"));

        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"error: Remote model 'remote' at {Endpoint} refused the API key (HTTP 401); set AgentHost:Models:remote:Remote:ApiKey or the variable its ApiKeyVariable names.", result.StdErr.Trim());
    }

    [Fact]
    public async Task Models_show_says_where_a_remote_entry_sends_requests_and_never_prints_the_key()
    {
        var text = await AgentHostProcess.RunAsync(["models", "show", "remote"], RemoteEntry());
        var json = await AgentHostProcess.RunAsync(["models", "show", "remote", "--json"], RemoteEntry());

        Assert.Equal((0, 0), (text.ExitCode, json.ExitCode));
        var lines = text.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => System.Text.RegularExpressions.Regex.Replace(l, " +", " ")).ToList();
        Assert.Contains($"remote: {Endpoint}", lines);
        Assert.Contains("api key: from the environment variable REMOTE_TEST_KEY", lines);
        Assert.DoesNotContain("size", text.StdOut);
        var fields = System.Text.Json.JsonDocument.Parse(json.StdOut).RootElement;
        Assert.Equal(("stories260k", Endpoint), (fields.GetProperty("remote_model").GetString(), fields.GetProperty("endpoint").GetString()));
        Assert.DoesNotContain(Key, text.StdOut + json.StdOut);
        Assert.Equal(0, await BackendChatRequestsAsync());
    }

    [Fact]
    public async Task Token_level_strategies_and_logit_readers_refuse_a_remote_model_naming_why()
    {
        var chat = await AgentHostProcess.RunAsync(["chat", "--model", "remote", "--strategy", "recycling"], RemoteEntry(), input: "Hi.\n");
        var generate = await AgentHostProcess.RunAsync(["generate", "--model", "remote", "--prompt", "Once"], RemoteEntry());

        Assert.Equal(2, chat.ExitCode);
        Assert.Equal($"error: Model 'remote' is remote (an OpenAI-compatible endpoint at {Endpoint}), and decoding strategy 'recycling' needs a local GGUF model: "
            + "it reads the model's logits or weights, which such an endpoint does not give. Chat, agents and serve use a remote model as is.", chat.StdErr.Trim());
        Assert.Equal(2, generate.ExitCode);
        Assert.StartsWith("error: Model 'remote' is remote (an OpenAI-compatible endpoint at", generate.StdErr.Trim());
        Assert.Single(generate.StdErr.Trim().Split('\n'));
        Assert.Equal(0, await BackendChatRequestsAsync());
    }

    [Fact]
    public async Task Serve_routes_a_remote_entry_streaming_and_tools_included()
    {
        await using var router = await TestServer.StartAsync(catalog: o => o.Models["remote"] = new ModelSettings { Remote = RemoteSettings() });
        var remote = router.OpenAi().GetChatClient("remote");
        var local = router.OpenAi().GetChatClient("stories260k");
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 24 };
        List<OpenAI.Chat.ChatMessage> story = [new UserChatMessage("Tell me a story.")];

        ChatCompletion forwarded = await remote.CompleteChatAsync(story, options);
        ChatCompletion direct = await local.CompleteChatAsync(story, options);
        var streamed = new StringBuilder();
        await foreach (var update in remote.CompleteChatStreamingAsync(story, options))
        {
            foreach (var part in update.ContentUpdate)
                streamed.Append(part.Text);
        }

        Assert.Equal("remote", forwarded.Model);
        Assert.Equal(direct.Content[0].Text, forwarded.Content[0].Text);
        Assert.Equal(24, forwarded.Usage.OutputTokenCount);
        Assert.Equal(direct.Content[0].Text, streamed.ToString());
        var models = JsonDocument.Parse(await router.Http.GetStringAsync("/v1/models")).RootElement.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString());
        Assert.Contains("remote", models);

        // Tools travel to the backend and its call comes back.
        const string AddSchema = """{"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}""";
        var toolOptions = new ChatCompletionOptions { MaxOutputTokenCount = 96, ToolChoice = ChatToolChoice.CreateRequiredChoice() };
        toolOptions.Tools.Add(ChatTool.CreateFunctionTool("add", "Adds two numbers.", BinaryData.FromString(AddSchema)));
        ChatCompletion call = await remote.CompleteChatAsync([new UserChatMessage("What is 3 plus 4?")], toolOptions);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.ToolCalls, call.FinishReason);
        Assert.Equal("add", Assert.Single(call.ToolCalls).FunctionName);

        // What needs the model itself is refused for the remote entry.
        var (status, body, _) = await router.PostAsync("/v1/completions", """{"model": "remote", "prompt": "Once", "max_tokens": 4}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("model_not_local", body.GetProperty("error").GetProperty("code").GetString());
        var (strategyStatus, strategyBody, _) = await router.PostAsync("/v1/chat/completions",
            """{"model": "remote", "messages": [{"role": "user", "content": "Hi."}], "decoding_strategy": "lookup"}""");
        Assert.Equal(HttpStatusCode.BadRequest, strategyStatus);
        Assert.Contains("decoding strategy 'lookup' needs a local GGUF model", strategyBody.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_failing_remote_is_a_502_from_the_router()
    {
        await using var router = await TestServer.StartAsync(catalog: o => o.Models["remote"] = new ModelSettings { Remote = RemoteSettings(key: "wrong") });

        var (status, body, _) = await router.PostAsync("/v1/chat/completions", """{"model": "remote", "messages": [{"role": "user", "content": "Hi."}], "max_tokens": 4}""");

        Assert.Equal(HttpStatusCode.BadGateway, status);
        Assert.Equal("upstream_error", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("refused the API key (HTTP 401)", body.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task Registration_gives_a_remote_entry_to_meai_and_semantic_kernel()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["AgentHost:Models:remote:Remote:Endpoint"] = Endpoint,
            ["AgentHost:Models:remote:Remote:Model"] = "stories260k",
            ["AgentHost:Models:remote:Remote:ApiKey"] = Key,
        }).Build();
        using var services = new ServiceCollection().AddAgentHost(configuration).AddLlamaChatClient("remote").BuildServiceProvider();
        var kernel = Kernel.CreateBuilder().AddAgentHost(configuration).AddLlamaChatCompletion("remote").Build();

        var response = await services.GetRequiredService<IChatClient>().GetResponseAsync([new ChatMessage(ChatRole.User, "Tell me a story.")], new ChatOptions { MaxOutputTokens = 12 });
        var prompt = await kernel.InvokePromptAsync("Tell me a story.", new(new PromptExecutionSettings { ExtensionData = new Dictionary<string, object> { ["max_tokens"] = 12 } }));

        Assert.Equal(12, response.Usage?.OutputTokenCount);
        Assert.False(string.IsNullOrWhiteSpace(response.Text));
        Assert.Equal(response.Text, prompt.ToString());
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
