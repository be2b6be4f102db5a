using AgentHost.Llama;
using AgentHost.SemanticKernel.Agents;
using AgentHost.Extensions.AI.Chat;
using AgentHost.Extensions.AI.Templates;
using AgentHost.SemanticKernel.Templates;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;

namespace AgentHost.SemanticKernel.Tests.Templates;

/// <summary>
/// Attacks on every Scriban template the product renders (chat formats, prompt templates, agents' instructions):
/// each is a clear error naming the template and the limit, within a hang guard, and the process goes on.
/// </summary>
public sealed class TemplateLimitsTests : IDisposable
{
    private static readonly TimeSpan _hangGuard = TimeSpan.FromSeconds(60);
    private readonly string _folder = Directory.CreateTempSubdirectory("agenthost-limits-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    public static TheoryData<string, string> Attacks => new()
    {
        { "{{ while true }}{{ end }}", "loop" },
        { "{{ for i in 1..10000000 }}{{ end }}", "loop" },
        { "{{ for a in 1..100 }}{{ for b in 1..100 }}{{ end }}{{ end }}", "loop" },
        { "{{ func f; f; end; f }}", "recursi" },
        { "{{ x = 'ab'; for i in 1..40; x = x + x; end; x }}", "limit" },
        { "{{ for i in 1..900 }}{{ '0123456789' | string.pad_right 5000 }}{{ end }}", "limit" },
        { "{{ include 'chatml' }}", "recursi" },
        { "{{ func f(n); if n > 0; f(n - 1); f(n - 1); f(n - 1); end; end; f(60) }}", "RenderTimeout" },
    };

    [Theory]
    [MemberData(nameof(Attacks))]
    public async Task A_chat_format_template_that_would_run_away_is_stopped_with_a_clear_error(string template, string limit)
    {
        File.WriteAllText(Path.Combine(_folder, "chatml.scriban"), template);
        var catalog = new ChatFormatCatalog(_folder, new ScribanLimits { RenderTimeout = TimeSpan.FromSeconds(1) });

        var error = await Task.Run(() => Assert.Throws<AgentHostException>(() => catalog.Get("chatml").Render([new(ChatRole.User, "hi")]))).WaitAsync(_hangGuard);

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.StartsWith("Chat format 'chatml' failed to render", error.Message, StringComparison.Ordinal);
        Assert.Contains(limit, error.Message, StringComparison.OrdinalIgnoreCase);
        // The process goes on: the built-in format still renders.
        Assert.Contains("hi", ChatFormatCatalog.Default.Get("chatml").Render([new(ChatRole.User, "hi")]).Text);
    }

    [Fact]
    public void Template_files_and_nesting_beyond_the_limits_are_refused_before_rendering()
    {
        File.WriteAllText(Path.Combine(_folder, "gemma.scriban"), new string('x', 300_000));
        File.WriteAllText(Path.Combine(_folder, "phi3.scriban"), "{{ include 'tools-generic' }}");
        File.WriteAllText(Path.Combine(_folder, "tools-generic.scriban"), new string('y', 300_000));
        File.WriteAllText(Path.Combine(_folder, "llama3.scriban"), "{{ " + new string('(', 50_000) + "1" + new string(')', 50_000) + " }}");
        var catalog = new ChatFormatCatalog(_folder);

        var huge = Assert.Throws<AgentHostException>(() => catalog.Get("gemma"));
        Assert.Contains("gemma.scriban", huge.Message, StringComparison.Ordinal);
        Assert.Contains("limit of 200000 (MaxTemplateLength)", huge.Message, StringComparison.Ordinal);

        var part = Assert.Throws<AgentHostException>(() => catalog.Get("phi3").Render([new(ChatRole.User, "hi")]));
        Assert.Contains("tools-generic.scriban", part.Message, StringComparison.Ordinal);
        Assert.Contains("MaxTemplateLength", part.Message, StringComparison.Ordinal);

        var deep = Assert.Throws<AgentHostException>(() => catalog.Get("llama3"));
        Assert.Contains("llama3.scriban", deep.Message, StringComparison.Ordinal);
        Assert.Contains("syntax errors", deep.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_prompt_template_that_would_run_away_is_a_kernel_error_naming_it()
    {
        var config = new PromptTemplateConfig("{{ func f(n); if n > 0; f(n - 1); f(n - 1); f(n - 1); end; end; f(60) }}") { Name = "bomb", TemplateFormat = "scriban" };
        var template = new ScribanPromptTemplate(config, new ScribanLimits { RenderTimeout = TimeSpan.FromSeconds(1) });

        var error = await Assert.ThrowsAsync<KernelException>(() => template.RenderAsync(new Kernel())).WaitAsync(_hangGuard);

        Assert.Contains("Scriban template 'bomb'", error.Message, StringComparison.Ordinal);
        Assert.Contains("RenderTimeout", error.Message, StringComparison.Ordinal);
        var huge = Assert.Throws<ArgumentException>(() => new ScribanPromptTemplate(new PromptTemplateConfig(new string('x', 200_001)) { Name = "huge", TemplateFormat = "scriban" }));
        Assert.Contains("'huge'", huge.Message, StringComparison.Ordinal);
        Assert.Contains("MaxTemplateLength", huge.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("'{{ while true }}x{{ end }}'", "loop")]
    [InlineData("'{{ x = \"ab\"; for i in 1..40; x = x + x; end; x }}'", "limit")]
    public async Task Agent_instructions_that_would_run_away_are_a_clear_error_naming_the_agent(string instructions, string limit)
    {
        var agent = AgentDefinition.Parse($"name: looper\ndescription: d\ninstructions: {instructions}", "looper.yaml");

        var error = await Task.Run(() => Assert.Throws<AgentHostException>(() => agent.RenderInstructions("hi"))).WaitAsync(_hangGuard);

        Assert.StartsWith("Agent definition 'looper.yaml': 'instructions' failed to render", error.Message, StringComparison.Ordinal);
        Assert.Contains(limit, error.Message, StringComparison.OrdinalIgnoreCase);
    }
}
