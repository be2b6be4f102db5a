using System.Text.Json;
using AgentHost.Extensions.AI.Jinja;
using AgentHost.Llama;

namespace AgentHost.SemanticKernel.Tests.ChatTemplates;

/// <summary>Every template x conversation renders byte-identical to @huggingface/jinja (goldens.json).</summary>
public sealed class ChatTemplateGoldenTests
{
    private static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "ChatTemplates");
    private static readonly JsonElement Corpus = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "corpus.json"))).RootElement;
    private static readonly JsonElement Goldens = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "goldens.json"))).RootElement;
    private static readonly JsonElement Families = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "templates.json"))).RootElement;

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var template in Goldens.EnumerateObject())
        {
            foreach (var c in template.Value.EnumerateObject())
                data.Add(template.Name, c.Name);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Render_MatchesReference(string templateName, string caseName)
    {
        var golden = Goldens.GetProperty(templateName).GetProperty(caseName);
        var source = File.ReadAllText(Path.Combine(Folder, "templates", templateName + ".jinja"));
        var conversation = Corpus.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == caseName);
        var family = Families.GetProperty(templateName);
        var now = DateTimeOffset.Parse(Corpus.GetProperty("date").GetString()!, System.Globalization.CultureInfo.InvariantCulture);

        string Render()
        {
            var template = JinjaTemplate.Parse(source, templateName);
            var content = new Dictionary<string, object?> { ["messages"] = conversation.GetProperty("messages") };
            if (conversation.TryGetProperty("tools", out var tools) && tools.GetBoolean())
                content["tools"] = Corpus.GetProperty("tools");
            var markup = new Dictionary<string, object?> { ["add_generation_prompt"] = conversation.GetProperty("add_generation_prompt").GetBoolean() };
            foreach (var token in new[] { "bos_token", "eos_token" })
            {
                if (family.GetProperty(token).ValueKind == JsonValueKind.String)
                    markup[token] = family.GetProperty(token).GetString();
            }
            return template.RenderText(content, markup, now);
        }

        if (golden.TryGetProperty("error", out var error))
        {
            var e = Record.Exception(Render);
            Assert.True(e is AgentHostException or JinjaRaiseException, $"expected an error like the reference ({error.GetString()}), got {(e is null ? "output" : e.GetType().Name + ": " + e.Message)}");
            return;
        }
        Assert.Equal(golden.GetProperty("text").GetString(), Render());
    }

    public static TheoryData<string> Templates()
    {
        var data = new TheoryData<string>();
        foreach (var template in Goldens.EnumerateObject())
        {
            if (template.Value.GetProperty("multi-turn").TryGetProperty("text", out _))
                data.Add(template.Name);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Templates))]
    public void A_long_conversation_of_500_messages_renders_within_the_default_limits(string templateName)
    {
        // Rendering is linear in the conversation: 500 turns fit the iteration and output limits a short one uses.
        var template = JinjaChatTemplate.Parse(File.ReadAllText(Path.Combine(Folder, "templates", templateName + ".jinja")), name: templateName);
        var messages = Enumerable.Range(0, 500).Select(i => new Microsoft.Extensions.AI.ChatMessage(
            i % 2 == 0 ? Microsoft.Extensions.AI.ChatRole.User : Microsoft.Extensions.AI.ChatRole.Assistant, $"turn {i} says hello")).ToList();
        var family = Families.GetProperty(templateName);
        string? Token(string name) => family.GetProperty(name).ValueKind == JsonValueKind.String ? family.GetProperty(name).GetString() : null;

        var prompt = template.Render(messages, null, addGenerationPrompt: true, Token("bos_token"), Token("eos_token"), DateTimeOffset.UnixEpoch);

        Assert.Contains("turn 0 says hello", prompt.Text, StringComparison.Ordinal);
        Assert.Contains("turn 499 says hello", prompt.Text, StringComparison.Ordinal);
    }
}
