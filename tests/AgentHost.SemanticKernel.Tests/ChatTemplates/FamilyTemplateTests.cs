using System.Globalization;
using System.Text.Json;
using AgentHost.Extensions.AI;
using AgentHost.Extensions.AI.Chat;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests;
using AgentHost.Llama.Tests.Support;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Time.Testing;

namespace AgentHost.SemanticKernel.Tests.ChatTemplates;

/// <summary>
/// The family test models carry the families' real tokenizers and chat templates: a chat client on one renders the
/// GGUF's own template, byte-identical to the reference renderer's golden text, and tokenizes it as llama.cpp does.
/// </summary>
public sealed class FamilyTemplateTests
{
    private static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "ChatTemplates");
    private static readonly JsonElement Corpus = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "corpus.json"))).RootElement;
    private static readonly JsonElement Goldens = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "goldens.json"))).RootElement;

    // Family test model -> the golden template it carries (FamilyModels: the packages' own tokenizer_config.json).
    public static TheoryData<string, string> Families() => new() { { "llama", "llama3.1" }, { "qwen2", "qwen3" }, { "qwen3", "qwen3" }, { "gemma3", "gemma3" } };

    [Theory]
    [MemberData(nameof(Families))]
    public void The_models_own_template_renders_as_the_reference_and_tokenizes_as_llama_cpp(string family, string golden)
    {
        using var model = LlamaModel.Load(family, FamilyModels.Get(family), new ModelSettings { ContextSize = 512, Threads = TestModels.Threads });
        var clock = new FakeTimeProvider(DateTimeOffset.Parse(Corpus.GetProperty("date").GetString()!, CultureInfo.InvariantCulture));
        var format = ChatFormatCatalog.Default.Resolve(model, clock: clock);
        Assert.True(format.IsModelTemplate);
        Assert.Equal(ChatFormat.ModelTemplate, format.Name);
        using (var client = new LlamaChatClient(model))
            Assert.True(client.Format.IsModelTemplate, "a chat client uses the GGUF's own template by default");

        var compared = 0;
        foreach (var c in Corpus.GetProperty("cases").EnumerateArray())
        {
            var name = c.GetProperty("name").GetString()!;
            var expected = Goldens.GetProperty(golden).GetProperty(name);
            var (messages, tools) = ToConversation(c);
            var usesTools = tools is not null || messages.Any(m => m.Contents.Any(x => x is FunctionCallContent or FunctionResultContent));
            if (expected.TryGetProperty("error", out _) || (usesTools && !format.WritesTools))
                continue;   // the reference refuses it, or the built-in format writes it (the template would drop the tools)

            var prompt = format.Render(messages, tools, c.GetProperty("add_generation_prompt").GetBoolean());
            var text = expected.GetProperty("text").GetString()!;
            Assert.Equal(text, prompt.Text);
            if (name != "injection")   // there the content's look-alike markup stays text: the point of content segments
            {
                var bos = model.Vocabulary.AddBos && !prompt.Segments[0].Text.StartsWith(model.Detokenize([model.Vocabulary.Bos]), StringComparison.Ordinal);
                Assert.Equal(model.Tokenize(text, addBos: bos, parseSpecial: true), prompt.Tokenize(model));
            }
            compared++;
        }
        Assert.True(compared >= 8, $"only {compared} conversations compared");
    }

    [Theory]
    [InlineData("qwen3", "hermes")]
    [InlineData("llama", "llama3-json")]
    [InlineData("gemma3", "gemma")]
    [InlineData("phi3", "phi4-mini")]
    public async Task A_forced_tool_call_is_written_in_the_familys_own_syntax_and_read_back(string family, string syntax)
    {
        using var model = LlamaModel.Load(family, FamilyModels.Get(family), new ModelSettings { ContextSize = 1024, Threads = TestModels.Threads });
        using var client = new LlamaChatClient(model);
        Assert.Equal(syntax, client.Format.ToolCalls.Name);
        var tool = AIFunctionFactory.Create((bool metric) => metric ? "20 C" : "68 F", "get_weather", "Gets the weather in Paris.");
        var options = new ChatOptions { Tools = [tool], ToolMode = ChatToolMode.RequireSpecific("get_weather"), MaxOutputTokens = 64 };

        // Random weights: only the grammar, triggered at the family's own opener, makes this a call.
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Weather in Paris?")], options);

        var generated = Assert.IsType<GenerationResult>(response.RawRepresentation).Text;
        Assert.StartsWith(client.Format.ToolCalls.CallPrefix, generated, StringComparison.Ordinal);
        var call = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Equal("get_weather", call.Name);
        Assert.True(call.Arguments!["metric"] is JsonElement { ValueKind: JsonValueKind.True or JsonValueKind.False }, generated);
        // The tools were in the prompt the model saw, in the template's own place or the family format's.
        var prompt = client.Format.Render([new ChatMessage(ChatRole.User, "Weather in Paris?")], [tool]);
        Assert.Contains("get_weather", prompt.Text, StringComparison.Ordinal);
    }

    // A corpus case (transformers' shape) as MEAI messages and tools.
    private static (List<ChatMessage> Messages, List<AIFunctionDeclaration>? Tools) ToConversation(JsonElement c)
    {
        var messages = new List<ChatMessage>();
        foreach (var m in c.GetProperty("messages").EnumerateArray())
        {
            var role = new ChatRole(m.GetProperty("role").GetString()!);
            var contents = new List<AIContent>();
            var text = m.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String ? content.GetString()! : "";
            if (role == ChatRole.Tool)
            {
                contents.Add(new FunctionResultContent(m.GetProperty("tool_call_id").GetString()!, text));
            }
            else
            {
                contents.Add(new TextContent(text));
                if (m.TryGetProperty("tool_calls", out var calls))
                {
                    foreach (var call in calls.EnumerateArray())
                    {
                        var function = call.GetProperty("function");
                        var arguments = function.GetProperty("arguments").EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
                        contents.Add(new FunctionCallContent(call.GetProperty("id").GetString()!, function.GetProperty("name").GetString()!, arguments));
                    }
                }
            }
            messages.Add(new ChatMessage(role, contents));
        }
        List<AIFunctionDeclaration>? tools = null;
        if (c.TryGetProperty("tools", out var offered) && offered.GetBoolean())
        {
            tools = [.. Corpus.GetProperty("tools").EnumerateArray().Select(t => t.GetProperty("function")).Select(f =>
                AIFunctionFactory.CreateDeclaration(f.GetProperty("name").GetString()!, f.GetProperty("description").GetString(), f.GetProperty("parameters").Clone()))];
        }
        return (messages, tools);
    }
}
