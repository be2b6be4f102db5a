using AgentHost.Llama.Decoding;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;
using AgentHost.Llama.ToolTokens;
using AgentHost.Llama.Tests;
using AgentHost.Extensions.AI;
using AgentHost.SemanticKernel.ToolTokens;
using Microsoft.SemanticKernel;

namespace AgentHost.SemanticKernel.Tests.ToolTokens;

/// <summary>Semantic Kernel functions as the tools of a tool-token head, run by the real strategy on stories260K.</summary>
public sealed class ToolTokensKernelFunctionTests
{
    private static readonly Kernel _kernel = new();

    private static KernelFunction[] Arithmetic(List<string> calls) =>
    [
        KernelFunctionFactory.CreateFromMethod((int a, int b) => { calls.Add($"add {a} {b}"); return a + b; }, "add", "Adds two numbers."),
        KernelFunctionFactory.CreateFromMethod((int a, int b) => { calls.Add($"subtract {a} {b}"); return a - b; }, "subtract", "Subtracts b from a."),
        KernelFunctionFactory.CreateFromMethod((int a, int b) => { calls.Add($"multiply {a} {b}"); return a * b; }, "multiply", "Multiplies two numbers."),
    ];

    [Fact]
    public async Task A_kernel_function_becomes_a_tool_with_its_schema_and_runs_with_JSON_arguments()
    {
        var calls = new List<string>();
        var tool = Arithmetic(calls)[2].AsToolDefinition(_kernel);

        var result = await tool.Invoke("multiply", """{"a":6,"b":7}""", CancellationToken.None);

        Assert.Equal("multiply", tool.Name);
        Assert.Equal("Multiplies two numbers.", tool.Description);
        Assert.Contains("\"a\"", tool.ParametersSchema);
        Assert.Contains("integer", tool.ParametersSchema);
        Assert.Equal("42", result);
        Assert.Equal(["multiply 6 7"], calls);
        Assert.Equal(tool.SchemaHash, Arithmetic(calls)[2].AsToolDefinition(_kernel).SchemaHash);
        Assert.NotEqual(tool.SchemaHash, KernelFunctionFactory.CreateFromMethod((double a) => a, "multiply").AsToolDefinition(_kernel).SchemaHash);
    }

    [Fact]
    public async Task An_AIFunction_becomes_a_tool_too()
    {
        var tool = Microsoft.Extensions.AI.AIFunctionFactory.Create((int a, int b) => a - b, "subtract", "Subtracts b from a.").AsToolDefinition();

        Assert.Equal("subtract", tool.Name);
        Assert.Contains("\"b\"", tool.ParametersSchema);
        Assert.Equal("-3", await tool.Invoke("subtract", """{"a":4,"b":7}""", CancellationToken.None));
        // Its integer schema is one the numeric constraint accepts.
        using var model = LlamaModel.Load("stories260k", TestModels.Stories260K, new ModelSettings { ContextSize = 64, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 1 });
        var constraint = NumericArgumentConstraints.Instance.Create(tool, model);
        foreach (var token in model.Tokenize("4, 7)", addBos: false).Where(t => model.Detokenize([t]) != " ")) // SPM's space prefix
            constraint.Accept(token);
        Assert.True(constraint.IsComplete);
        Assert.Equal("""{"a":4,"b":7}""", constraint.ArgumentsJson);
    }

    [Fact]
    public async Task A_head_trained_on_the_demo_corpus_calls_the_kernel_function_and_the_story_carries_its_result()
    {
        var settings = new ModelSettings { ContextSize = 512, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 2, HiddenStates = true };
        using var model = LlamaModel.Load("stories260k", TestModels.Stories260K, settings);
        using var session = await model.CreateSessionAsync();
        var calls = new List<string>();
        var tools = Arithmetic(calls).AsToolDefinitions(_kernel);

        var head = await DefaultHeadAsync(session, tools);

        var result = await session.GenerateAsync(new ToolTokenStrategy(head, tools),
            new GenerationRequest { Prompt = "Mia had 5 cookies. Then she lost 2 of them. Now she had only", MaxTokens = 10 });

        var call = Assert.Single((List<ToolTokenCall>)result.Details!, c => c.Error is null);
        Assert.Equal("subtract", call.Tool);
        var parts = Assert.Single(calls).Split(' ');
        Assert.Equal("subtract", parts[0]);
        var expected = (int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) - int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture))
            .ToString(System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(expected, call.Result);
        Assert.StartsWith(" " + expected, result.Text);
    }

    [Fact]
    public async Task Tool_tokens_are_a_function_calling_mode_of_the_chat_client()
    {
        var settings = new ModelSettings { ContextSize = 512, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 2 };
        using var model = LlamaModel.Load("stories260k", TestModels.Stories260K, settings);
        var calls = new List<string>();
        Microsoft.Extensions.AI.AIFunction[] functions =
        [
            Microsoft.Extensions.AI.AIFunctionFactory.Create((int a, int b) => { calls.Add($"add {a} {b}"); return a + b; }, "add", "Adds two numbers."),
            Microsoft.Extensions.AI.AIFunctionFactory.Create((int a, int b) => { calls.Add($"subtract {a} {b}"); return a - b; }, "subtract", "Subtracts b from a."),
            Microsoft.Extensions.AI.AIFunctionFactory.Create((int a, int b) => { calls.Add($"multiply {a} {b}"); return a * b; }, "multiply", "Multiplies two numbers."),
        ];
        var tools = functions.Select(f => f.AsToolDefinition()).ToList();

        // Train a head on a session with hidden states (the model itself was loaded without them).
        using var session = await model.CreateSessionAsync(hiddenStates: true);
        var head = await DefaultHeadAsync(session, tools);
        using var folder = new AgentHost.Llama.Tests.Support.TempFolder();
        var headPath = folder.Combine("head.json");
        head.Save(headPath);

        using var client = new AgentHost.Extensions.AI.LlamaChatClient(model, new AgentHost.Extensions.AI.LlamaChatClientOptions { HiddenStates = true });
        var options = new Microsoft.Extensions.AI.ChatOptions
        {
            MaxOutputTokens = 10,
            Tools = [.. functions],
            AdditionalProperties = new() { ["decoding_strategy"] = "toolkens", ["toolkens_head"] = headPath },
        };
        var response = await client.GetResponseAsync([new Microsoft.Extensions.AI.ChatMessage(Microsoft.Extensions.AI.ChatRole.User, "Mia had 5 cookies. Then she lost 2 of them. Now she had only")], options);

        Assert.Equal("toolkens", response.AdditionalProperties![AgentHost.Extensions.AI.ChatRequestMapper.StrategyKey]);
        var parts = Assert.Single(calls).Split(' ');
        Assert.Equal("subtract", parts[0]);
        var expected = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) - int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains(expected.ToString(System.Globalization.CultureInfo.InvariantCulture), response.Text);

        // A client without hidden states, or a request without the head's tools, is refused clearly.
        using var plain = new AgentHost.Extensions.AI.LlamaChatClient(model);
        await Assert.ThrowsAsync<AgentHost.Llama.AgentHostException>(() => plain.GetResponseAsync([new Microsoft.Extensions.AI.ChatMessage(Microsoft.Extensions.AI.ChatRole.User, "Hi")], options));
        var missing = options.Clone();
        missing.Tools = [functions[0]];
        var error = await Assert.ThrowsAsync<AgentHost.Llama.AgentHostException>(() => client.GetResponseAsync([new Microsoft.Extensions.AI.ChatMessage(Microsoft.Extensions.AI.ChatRole.User, "Hi")], missing));
        Assert.Contains("'subtract', which is not among the request's tools", error.Message);
    }

    // The head `toolkens train` makes with its defaults on the default demo corpus (seed 1) and the model's own stories.
    private static async Task<ToolTokenHead> DefaultHeadAsync(InferenceSession session, IReadOnlyList<ToolDefinition> tools)
    {
        var names = tools.Select(t => t.Name).ToList();
        var options = new ToolTokenTrainingOptions();
        IReadOnlyList<AnnotatedExample> examples =
            [.. AnnotatedCorpus.Parse(string.Join('\n', DemoCorpus.Generate(DemoCorpus.DefaultTrainLines, seed: 1))), .. await ToolTokenNegatives.SampleAsync(session, ToolTokenNegatives.DefaultStories, options.Seed)];
        var data = await ToolTokenDataset.BuildAsync(session, examples, names, ToolTokenContext.DefaultWindow);
        var trainer = new ToolTokenTrainer(data, await ToolTokenPriors.BuildAsync(ToolTokenPrior.HiddenStates, session, names, ToolTokenPriors.DefaultScale), options);
        return ToolTokenHead.Create(session.Model, data, [.. tools.Select(t => new ToolTokenSlot(t.Name, t.SchemaHash))], trainer.Train(), trainer.Prior);
    }
}
