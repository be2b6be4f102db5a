using System.Text.Json;
using AgentHost.Extensions.AI.Jinja;
using Microsoft.Extensions.AI;

namespace AgentHost.SemanticKernel.Tests.ChatTemplates;

public sealed class JinjaChatTemplateMappingTests
{
    [Fact]
    public void Messages_MapToTransformersShape()
    {
        var messages = new List<ChatMessage>
        {
            new(ChatRole.System, "sys"),
            new(ChatRole.User, "Weather in Paris and Oslo?"),
            new(ChatRole.Assistant, [
                new TextReasoningContent("thinking..."),
                new FunctionCallContent("call_1", "get_weather", new Dictionary<string, object?> { ["location"] = "Paris", ["days"] = 2 }),
                new FunctionCallContent("call_2", "get_weather", new Dictionary<string, object?> { ["location"] = "Oslo" }),
            ]),
            new(ChatRole.Tool, [new FunctionResultContent("call_1", "sunny"), new FunctionResultContent("call_2", JsonSerializer.SerializeToElement(new { t = 9 }))]),
        };

        var json = JinjaChatTemplate.MapMessages(messages).GetRawText();

        Assert.Equal(
            """[{"role":"system","content":"sys"},{"role":"user","content":"Weather in Paris and Oslo?"},{"role":"assistant","content":"","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":{"location":"Paris","days":2}}},{"id":"call_2","type":"function","function":{"name":"get_weather","arguments":{"location":"Oslo"}}}]},{"role":"tool","tool_call_id":"call_1","name":"get_weather","content":"sunny"},{"role":"tool","tool_call_id":"call_2","name":"get_weather","content":"{\u0022t\u0022: 9}"}]""",
            json);
    }

    [Fact]
    public void Tools_MapToOpenAIShape()
    {
        var tool = AIFunctionFactory.Create((string city) => city, "get_weather", "Get the weather");
        var json = JinjaChatTemplate.MapTools([tool]);
        var function = json[0].GetProperty("function");
        Assert.Equal("function", json[0].GetProperty("type").GetString());
        Assert.Equal("get_weather", function.GetProperty("name").GetString());
        Assert.Equal("Get the weather", function.GetProperty("description").GetString());
        Assert.Equal("object", function.GetProperty("parameters").GetProperty("type").GetString());
    }

    [Fact]
    public void MappedConversation_RendersLikeTheCorpusShape()
    {
        var source = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "ChatTemplates", "templates", "qwen2.5.jinja"));
        var template = JinjaChatTemplate.Parse(source);
        var prompt = template.Render(
            [new ChatMessage(ChatRole.User, "Hi"), new ChatMessage(ChatRole.Assistant, [new FunctionCallContent("c1", "f", new Dictionary<string, object?> { ["a"] = 1 })]),
             new ChatMessage(ChatRole.Tool, [new FunctionResultContent("c1", "ok")])],
            null, true, null, "<|im_end|>", DateTimeOffset.UnixEpoch);
        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\nok\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
            prompt.Text);
    }
}
