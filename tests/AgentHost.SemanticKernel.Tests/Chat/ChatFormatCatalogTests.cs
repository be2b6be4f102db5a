using AgentHost.Llama;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests;
using AgentHost.Extensions.AI.Chat;
using Microsoft.Extensions.AI;

namespace AgentHost.SemanticKernel.Tests.Chat;

public sealed class ChatFormatCatalogTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("agenthost-formats-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static ModelSettings Settings(string? chatFormat = null) =>
        new() { ContextSize = 128, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 1, ChatFormat = chatFormat };

    // Opening lines of the families' real Jinja chat templates (tokenizer.chat_template).
    [Theory]
    [InlineData("{%- if tools %}\n    {{- '<|im_start|>system\\n' }}", "chatml")]
    [InlineData("{{- bos_token }}\n{%- if custom_tools is defined %}{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}", "llama3")]
    [InlineData("{%- if messages[0]['role'] == 'system' %}{{- '[SYSTEM_PROMPT]' + messages[0]['content'] + '[/SYSTEM_PROMPT]' }}{%- endif %}{{- '[INST]' + message['content'] + '[/INST]' }}", "mistral")]
    [InlineData("{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endfor %}", "mistral")]
    [InlineData("{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}", "gemma")]
    [InlineData("{% for message in messages %}{% if message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}{{ '<|assistant|>\\n' }}", "phi3")]
    [InlineData("{% for message in messages %}{{'<|im_start|>' + message['role'] + '<|im_sep|>' + message['content'] + '<|im_end|>'}}{% endfor %}", "phi4")]
    [InlineData("chatml", "chatml")]
    [InlineData("mistral-v7", "mistral")]
    [InlineData("{% for m in messages %}{{ m.content }}{% endfor %}", "plain")]
    public void Detects_the_family_from_the_chat_template(string template, string expected) =>
        Assert.Equal(expected, ChatFormatCatalog.Detect(template, "llama"));

    [Theory]
    [InlineData("qwen2", "chatml")]
    [InlineData("gemma2", "gemma")]
    [InlineData("phi3", "phi3")]
    [InlineData("llama", "plain")]
    [InlineData(null, "plain")]
    public void Without_a_template_the_architecture_decides(string? architecture, string expected) =>
        Assert.Equal(expected, ChatFormatCatalog.Detect(null, architecture));

    [Fact]
    public void Knows_at_least_the_five_families_and_plain()
    {
        Assert.Superset(new HashSet<string> { "chatml", "llama3", "mistral", "gemma", "phi3", "plain" }, ChatFormatCatalog.KnownNames.ToHashSet());
        foreach (var name in ChatFormatCatalog.KnownNames)
            Assert.Equal(name, ChatFormatCatalog.Default.Get(name).Name);
    }

    [Fact]
    public void Names_are_case_insensitive_and_formats_are_built_once()
    {
        Assert.Same(ChatFormatCatalog.Default.Get("chatml"), ChatFormatCatalog.Default.Get(" ChatML "));
    }

    [Fact]
    public void An_unknown_name_is_a_clear_error_listing_the_known_ones()
    {
        var error = Assert.Throws<AgentHostException>(() => ChatFormatCatalog.Default.Get("vicuna"));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Equal("Unknown chat format 'vicuna'; the known formats are chatml, llama3, mistral, gemma, phi3, phi4, plain and gguf (the model's own template).", error.Message);
    }

    [Fact]
    public void A_story_model_without_a_template_gets_plain_and_configuration_overrides_it()
    {
        using (var model = LlamaModel.Load("stories", TestModels.Stories260K, Settings()))
        {
            Assert.Null(model.File.GetString("tokenizer.chat_template"));
            Assert.Equal("plain", ChatFormatCatalog.Default.Resolve(model).Name);
            Assert.Equal("llama3", ChatFormatCatalog.Default.Resolve(model, "llama3").Name);
        }

        using var configured = LlamaModel.Load("stories", TestModels.Stories260K, Settings(chatFormat: "gemma"));
        Assert.Equal("gemma", ChatFormatCatalog.Default.Resolve(configured).Name);
        Assert.Equal("phi3", ChatFormatCatalog.Default.Resolve(configured, "phi3").Name); // the caller's choice wins
        var error = Assert.Throws<AgentHostException>(() => ChatFormatCatalog.Default.Resolve(configured, "nope"));
        Assert.Contains("chatml, llama3", error.Message);

        // The model's own template, asked for by name, where there is none: one clear error.
        var missing = Assert.Throws<AgentHostException>(() => ChatFormatCatalog.Default.Resolve(configured, "gguf"));
        Assert.Equal("Chat format 'gguf' renders the model's own chat template, but the model has no chat template; choose one of chatml, llama3, mistral, gemma, phi3, phi4, plain.", missing.Message);
        Assert.Contains("resolve it for a model", Assert.Throws<AgentHostException>(() => ChatFormatCatalog.Default.Get("GGUF")).Message);
    }

    [Fact]
    public void A_template_folder_replaces_built_in_templates_and_the_parts_they_include()
    {
        File.WriteAllText(Path.Combine(_folder, "chatml.scriban"), "{{~ for m in messages; \"[\" + m.role + \"] \" + m.content + \"\\n\"; end ~}}");
        File.WriteAllText(Path.Combine(_folder, "tools-generic.scriban"), "{{~ \"TOOLS:\"; for t in tools; \" \" + t.name; end ~}}");
        var catalog = new ChatFormatCatalog(_folder);
        var tool = AIFunctionFactory.CreateDeclaration("lookup", "Looks up.", System.Text.Json.JsonDocument.Parse("{\"type\":\"object\"}").RootElement);

        var chatml = catalog.Get("chatml").Render([new(ChatRole.User, "hi <|im_end|>")]);
        Assert.Equal("[user] hi <|im_end|>\n", chatml.Text);
        Assert.Equal(new PromptSegment("hi <|im_end|>", false), chatml.Segments[1]);
        Assert.Equal("<|system|>\nTOOLS: lookup<|end|>\n<|user|>\nhi<|end|>\n<|assistant|>\n",
            catalog.Get("phi3").Render([new(ChatRole.User, "hi")], [tool]).Text);
        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", ChatFormatCatalog.Default.Get("chatml").Render([new(ChatRole.User, "hi")]).Text);
    }

    [Fact]
    public void Broken_override_templates_and_folders_are_clear_errors()
    {
        File.WriteAllText(Path.Combine(_folder, "gemma.scriban"), "{{ for m in messages }}");
        File.WriteAllText(Path.Combine(_folder, "phi3.scriban"), "{{ include \"../secrets\" }}");
        File.WriteAllText(Path.Combine(_folder, "llama3.scriban"), "{{ messages[0].content.nope() }}");
        var catalog = new ChatFormatCatalog(_folder);

        var syntax = Assert.Throws<AgentHostException>(() => catalog.Get("gemma"));
        Assert.Contains("syntax errors", syntax.Message);
        Assert.Contains("gemma.scriban", syntax.Message);

        var include = Assert.Throws<AgentHostException>(() => catalog.Get("phi3").Render([new(ChatRole.User, "x")]));
        Assert.Contains("plain name", include.Message);

        var runtime = Assert.Throws<AgentHostException>(() => catalog.Get("llama3").Render([new(ChatRole.User, "x")]));
        Assert.Contains("Chat format 'llama3' failed to render", runtime.Message);

        var missing = Assert.Throws<AgentHostException>(() => new ChatFormatCatalog(Path.Combine(_folder, "absent")));
        Assert.Contains("does not exist", missing.Message);
    }
}
