using System.Globalization;
using System.Text.Json;
using AgentHost.Llama;
using AgentHost.Plugins;
using AgentHost.SemanticKernel.Agents;
using AgentHost.Extensions.AI;
using AgentHost.SemanticKernel.Tests.Plugins;
using Microsoft.Agents.AI;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
using FunctionResultContent = Microsoft.Extensions.AI.FunctionResultContent;

namespace AgentHost.SemanticKernel.Tests.Agents;

/// <summary>Declarative agents composing on the real model, and Microsoft.Agents.AI's ChatClientAgent on our client.</summary>
[Collection(ChatModelCollection.Name)]
public sealed class AgentTests(ChatModelFixture fixture)
{
    public static string ShippedAgentsDirectory { get; } = Path.Combine(Path.GetDirectoryName(PromptPluginRenderingTests.ShippedPromptsDirectory)!, "..", "prompts", "agents");

    private AgentRunner NewRunner(LlamaChatClient client, int maxDepth = 3)
    {
        var kernel = new Kernel();
        kernel.Plugins.AddFromObject(new MathPlugin(), "Math");
        return new AgentRunner(AgentCatalog.Load(ShippedAgentsDirectory), kernel, (_, _) => Task.FromResult<IChatClient>(client)) { MaxDepth = maxDepth };
    }

    [Fact]
    public async Task An_agent_calls_another_agent_as_a_function_with_the_whole_trace_in_order()
    {
        using var client = new LlamaChatClient(fixture.Model);
        var runner = NewRunner(client);

        var result = await runner.RunAsync("storyteller", "Tom had 3 apples and found 4 more. How many apples?");

        Assert.Equal("storyteller", result.Agent);
        Assert.False(string.IsNullOrWhiteSpace(result.Answer));
        Assert.Equal(["call", "call", "result", "result"], result.Trace.Select(t => t.Kind));
        var (askCalculator, callAdd, addResult, calculatorAnswer) = (result.Trace[0], result.Trace[1], result.Trace[2], result.Trace[3]);
        Assert.Equal((0, "storyteller", "calculator"), (askCalculator.Depth, askCalculator.Agent, askCalculator.Function));
        Assert.Equal((1, "calculator"), (callAdd.Depth, callAdd.Agent));
        Assert.EndsWith("Add", callAdd.Function);
        // The skill really ran: its result is the sum of the arguments the model chose.
        using var arguments = JsonDocument.Parse(callAdd.Text);
        var sum = arguments.RootElement.GetProperty("a").GetDouble() + arguments.RootElement.GetProperty("b").GetDouble();
        Assert.Equal(sum, double.Parse(addResult.Text, CultureInfo.InvariantCulture), 9);
        Assert.Equal((0, "calculator", false), (calculatorAnswer.Depth, calculatorAnswer.Function, calculatorAnswer.Failed));
        Assert.False(string.IsNullOrWhiteSpace(calculatorAnswer.Text));
    }

    [Fact]
    public async Task Beyond_the_depth_limit_the_call_fails_as_a_result_for_the_model_not_an_exception()
    {
        using var client = new LlamaChatClient(fixture.Model);
        var runner = NewRunner(client, maxDepth: 0);

        var result = await runner.RunAsync("storyteller", "What is 2 plus 2?");

        var failed = Assert.Single(result.Trace, t => t.Kind == "result");
        Assert.True(failed.Failed);
        Assert.Contains("levels deep", failed.Text);
        Assert.DoesNotContain(result.Trace, t => t.Depth > 0);
        Assert.Contains(result.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>(), r => r.Exception is not null);
    }

    [Fact]
    public void Definitions_are_checked_with_errors_naming_the_file()
    {
        AgentHostException Bad(string yaml) => Assert.Throws<AgentHostException>(() => AgentDefinition.Parse(yaml, "bad.yaml"));

        Assert.Contains("'description' is required", Bad("name: a\ninstructions: hi").Message);
        Assert.Contains("'name' must be", Bad("name: 'a b'\ndescription: d").Message);
        Assert.Contains("'tool_choice' must be", Bad("name: a\ndescription: d\ntool_choice: maybe").Message);
        Assert.Contains("line", Bad("name: [a\ndescription: d").Message);
        Assert.Contains("Unknown decoding strategy", Bad("name: a\ndescription: d\ndecoding_strategy: beam").Message);
        Assert.Contains("template error", Bad("name: a\ndescription: d\ninstructions: '{{ if }}'").Message);
        Assert.All(new[] { Bad("name: a\ninstructions: hi") }, e => Assert.StartsWith("Agent definition 'bad.yaml'", e.Message));

        var unknown = Assert.Throws<AgentHostException>(() => new AgentCatalog([AgentDefinition.Parse("name: a\ndescription: d\nagents: [ghost]", "a.yaml")]));
        Assert.Contains("'ghost', which is not defined", unknown.Message);
        var catalog = AgentCatalog.Load(ShippedAgentsDirectory);
        Assert.Equal(["calculator", "storyteller"], catalog.Names);
        Assert.Contains("Known agents: calculator, storyteller", Assert.Throws<AgentHostException>(() => catalog.Get("nobody")).Message);
    }

    [Fact]
    public void The_plugins_an_agent_uses_include_those_of_the_agents_it_calls()
    {
        var catalog = new AgentCatalog(
        [
            AgentDefinition.Parse("name: a\ndescription: d\nplugins: [Math.Add, git]\nagents: [b]", "a.yaml"),
            AgentDefinition.Parse("name: b\ndescription: d\nplugins: [Text]\nagents: [a]", "b.yaml"),   // a cycle
            AgentDefinition.Parse("name: c\ndescription: d\nplugins: [Time]", "c.yaml"),
            AgentDefinition.Parse("name: d\ndescription: d", "d.yaml"),
        ]);

        Assert.Equal(["Math", "Text", "git"], catalog.PluginsUsedBy("A").Order(StringComparer.Ordinal));
        Assert.Equal(["Time"], catalog.PluginsUsedBy("c"));
        Assert.Empty(catalog.PluginsUsedBy("d"));
        Assert.Equal(["Math"], AgentCatalog.Load(ShippedAgentsDirectory).PluginsUsedBy("storyteller"));
        Assert.Contains("Unknown agent 'nobody'", Assert.Throws<AgentHostException>(() => catalog.PluginsUsedBy("nobody")).Message);
    }

    [Fact]
    public async Task An_agent_listing_a_plugin_that_is_not_loaded_is_a_clear_error()
    {
        using var client = new LlamaChatClient(fixture.Model);
        var runner = new AgentRunner(AgentCatalog.Load(ShippedAgentsDirectory), new Kernel(), (_, _) => Task.FromResult<IChatClient>(client));

        var error = await Assert.ThrowsAsync<AgentHostException>(() => runner.RunAsync("calculator", "1 + 1?"));
        Assert.Contains("'plugins' lists 'Math', which is not loaded", error.Message);
    }

    [Fact]
    public async Task Microsoft_Agents_ChatClientAgent_runs_on_LlamaChatClient_with_our_plugins_as_tools()
    {
        using var client = new LlamaChatClient(fixture.Model);
        var kernel = new Kernel();
        var math = kernel.Plugins.AddFromObject(new MathPlugin(), "Math");
        var calls = new List<string>();
#pragma warning disable CS0618   // binding a kernel function to its kernel has no non-obsolete form in SK 1.82
        var add = new RecordingFunction(math["Add"].AsAIFunction(kernel), calls);
#pragma warning restore CS0618
        var agent = new ChatClientAgent(client, instructions: "Use Add for sums.", name: "adder", tools: [add]);

        var response = await agent.RunAsync("What is 3 plus 4?", options: new ChatClientAgentRunOptions(new ChatOptions { ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 96 }));

        Assert.Single(calls);
        Assert.Contains(response.Messages.SelectMany(m => m.Contents), c => c is FunctionResultContent { Exception: null });
        Assert.False(string.IsNullOrWhiteSpace(response.Text));
    }

    private sealed class RecordingFunction(AIFunction inner, List<string> calls) : DelegatingAIFunction(inner)
    {
        protected override ValueTask<object?> InvokeCoreAsync(AIFunctionArguments arguments, CancellationToken cancellationToken)
        {
            calls.Add(JsonSerializer.Serialize(arguments.ToDictionary(a => a.Key, a => a.Value)));
            return base.InvokeCoreAsync(arguments, cancellationToken);
        }
    }
}
