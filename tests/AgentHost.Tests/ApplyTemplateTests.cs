using System.Net;
using System.Text;
using AgentHost.Llama.Models;

namespace AgentHost.Tests;

/// <summary><c>POST /apply-template</c>: the prompt a chat request feeds the model, without generating.</summary>
public sealed class ApplyTemplateTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(
        catalog: o => o.Models["remote"] = new ModelSettings { Remote = new RemoteModelSettings { Endpoint = "http://127.0.0.1:9/v1", MaxRetries = 0 } });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private const string ToolConversation = """
        {"model": "stories260k", "messages": [
          {"role": "system", "content": "You tell stories."},
          {"role": "user", "content": "What is 2 plus 3?"},
          {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{\"a\": 2, \"b\": 3}"}}]},
          {"role": "tool", "tool_call_id": "call_1", "content": "5"}],
         "tools": [{"type": "function", "function": {"name": "add", "description": "Adds two numbers.", "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}}]
        """;

    [Fact]
    public async Task A_story_models_prompt_is_the_users_text_as_the_plain_format_writes_it()
    {
        var (status, body, _) = await _server.PostAsync("/apply-template", """{"model": "stories260k", "messages": [{"role": "user", "content": "Once upon a time"}]}""");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Once upon a time", body.GetProperty("prompt").GetString());
        Assert.Equal(("plain", "plain", "generic"), (body.GetProperty("format").GetString(), body.GetProperty("family").GetString(), body.GetProperty("tool_call_format").GetString()));
        Assert.True(body.GetProperty("tokens").GetInt32() > 1);   // BOS and the text
    }

    [Fact]
    public async Task The_prompt_is_what_the_chat_endpoint_feeds_the_model_tools_calls_and_results_included()
    {
        var (status, body, _) = await _server.PostAsync("/apply-template", ToolConversation + "}");
        var (chatStatus, chat, _) = await _server.PostAsync("/v1/chat/completions", ToolConversation + """, "max_tokens": 1}""");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(HttpStatusCode.OK, chatStatus);
        var prompt = body.GetProperty("prompt").GetString()!;
        foreach (var part in new[] { "You tell stories.", "What is 2 plus 3?", "\"add\"", "Adds two numbers.", "5" })
            Assert.Contains(part, prompt, StringComparison.Ordinal);
        Assert.Equal(chat.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), body.GetProperty("tokens").GetInt32());

        // tool_choice none offers no tools, as the chat endpoint does.
        var (_, none, _) = await _server.PostAsync("/apply-template", ToolConversation + """, "tool_choice": "none"}""");
        Assert.DoesNotContain("Adds two numbers.", none.GetProperty("prompt").GetString()!, StringComparison.Ordinal);
        var (noGenerationStatus, noGeneration, _) = await _server.PostAsync("/apply-template", ToolConversation + """, "add_generation_prompt": false}""");
        Assert.Equal(HttpStatusCode.OK, noGenerationStatus);
        Assert.StartsWith(noGeneration.GetProperty("prompt").GetString()!.TrimEnd(), prompt, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"model": "stories260k"}""", 400, "messages")]
    [InlineData("""{"model": "stories260k", "messages": [{"role": "wizard", "content": "x"}]}""", 400, "messages[0].role")]
    [InlineData("""{"model": "stories260k", "messages": [{"role": "user", "content": "x"}], "add_generation_prompt": "yes"}""", 400, "add_generation_prompt")]
    [InlineData("""{"model": "stories260k", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "bad name"}}]}""", 400, "tools[0].function.name")]
    [InlineData("""{"model": "nope", "messages": [{"role": "user", "content": "x"}]}""", 404, "model")]
    [InlineData("""{"model": "remote", "messages": [{"role": "user", "content": "x"}]}""", 400, "model")]
    public async Task Bad_requests_are_the_servers_usual_errors(string json, int status, string param)
    {
        var (code, body, _) = await _server.PostAsync("/apply-template", json);

        Assert.Equal(status, (int)code);
        Assert.Equal(param, body.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task Malformed_json_and_a_body_that_is_not_json_are_refused_as_elsewhere()
    {
        var (status, body, _) = await _server.PostAsync("/apply-template", "{\"model\": ");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_request_error", body.GetProperty("error").GetProperty("type").GetString());

        var response = await _server.Http.PostAsync("/apply-template", new StringContent("{}", Encoding.UTF8, "text/plain"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
    }

    [Fact]
    public async Task The_api_key_guards_it_like_every_other_endpoint()
    {
        await using var server = await TestServer.StartAsync(o => o.ApiKey = "secret");

        var (status, _, _) = await server.PostAsync("/apply-template", """{"model": "stories260k", "messages": [{"role": "user", "content": "x"}]}""");

        Assert.Equal(HttpStatusCode.Unauthorized, status);
    }
}
