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
}
