using AgentHost.Llama;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests;
using AgentHost.Llama.ToolTokens;
using AgentHost.Extensions.AI;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;

namespace AgentHost.SemanticKernel.Tests.ToolTokens;

/// <summary>
/// A tool-token run whose tool calls the same model (as a prompt plugin on the default model does, through a
/// <see cref="LlamaChatClient"/>): decoding waits for the tool on the model's only scheduler thread, which must
/// not deadlock. Each run sits inside a generous hang guard.
/// </summary>
public sealed class ToolTokensReentrancyTests : IDisposable
{
    private static readonly TimeSpan _hangGuard = TimeSpan.FromMinutes(2);
    private const string Schema = """{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}""";
    private readonly LlamaModel _model = LlamaModel.Load("stories260k", TestModels.Stories260K,
        new ModelSettings { ContextSize = 512, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 2, HiddenStates = true });

    public void Dispose() => _model.Dispose();

    // A head that always fires its one tool (zero weights, a large bias): the test is about the call, not the training.
    private ToolTokenHead AlwaysFiring(ToolDefinition tool)
    {
        var dimension = (int)_model.File.GetInteger("llama.embedding_length")!.Value;
        return new ToolTokenHead(_model.Name, ModelFingerprint.Compute(_model.Path), dimension, [new ToolTokenSlot(tool.Name, tool.SchemaHash)], new float[dimension], bias: 100);
    }

    private static GenerationRequest Request => new() { Prompt = "Tom had 3 apples and", MaxTokens = 6 };

    [Theory]
    [InlineData("kernel prompt function")]
    [InlineData("streaming chat client after an async hop")]
    public async Task A_tool_that_prompts_the_same_model_completes_instead_of_deadlocking(string via)
    {
        using var client = new LlamaChatClient(_model);
        var builder = Kernel.CreateBuilder();
        builder.AddLlamaChatClient(_model, new LlamaChatClientOptions { PromptCache = false });
        var kernel = builder.Build();
        var prompt = KernelFunctionFactory.CreateFromPrompt("Once upon a time", new LlamaPromptExecutionSettings { MaxTokens = 6 }, functionName: "story");
        var answers = new List<string>();
        var tool = new ToolDefinition("story", Schema, async (_, _, cancellationToken) =>
        {
            string answer;
            if (via == "kernel prompt function")
            {
                answer = (await prompt.InvokeAsync(kernel, cancellationToken: cancellationToken)).ToString();
            }
            else
            {
                await Task.Yield(); // a real tool awaits I/O: it comes back on a pool thread, not the scheduler's
                var text = new System.Text.StringBuilder();
                await foreach (var update in client.GetStreamingResponseAsync("Once upon a time", new ChatOptions { MaxOutputTokens = 6 }, cancellationToken))
                    text.Append(update.Text);
                answer = text.ToString();
            }
            answers.Add(answer);
            return answer;
        });
        using var session = await _model.CreateSessionAsync();

        var result = await session.GenerateAsync(new ToolTokenStrategy(AlwaysFiring(tool), [tool]), Request with { MaxTokens = 16 }).WaitAsync(_hangGuard);

        var calls = (List<ToolTokenCall>)result.Details!;
        Assert.NotEmpty(calls);
        Assert.All(calls, c => Assert.Null(c.Error));
        Assert.Equal(answers, calls.Select(c => c.Result));
        Assert.False(string.IsNullOrWhiteSpace(answers[0]));
        Assert.Contains(answers[0].Trim(), result.Text, StringComparison.Ordinal);
        // The model still serves afterwards.
        var after = await client.GetResponseAsync("Once upon a time", new ChatOptions { MaxOutputTokens = 4 }).WaitAsync(_hangGuard);
        Assert.False(string.IsNullOrWhiteSpace(after.Text));
    }

    [Fact]
    public async Task In_the_engine_a_tool_that_needs_sequences_its_own_generation_holds_fails_at_once_and_decoding_goes_on()
    {
        // The model has 2 sequences and tool tokens take both (text and argument mode): the tool's own request cannot get one.
        using var engine = new DecodeEngine(_model, hiddenStates: true);
        var tool = new ToolDefinition("story", Schema, async (_, _, cancellationToken) =>
            (await engine.GenerateAsync(new AgentHost.Llama.Decoding.Strategies.GreedyStrategy(), new GenerationRequest { Prompt = "Once", MaxTokens = 2 }, cancellationToken)).Text);
        var strategy = new ToolTokenStrategy(AlwaysFiring(tool), [tool]);

        var result = await engine.GenerateAsync(strategy, Request).WaitAsync(_hangGuard);

        var calls = (List<ToolTokenCall>)result.Details!;
        Assert.NotEmpty(calls);
        Assert.All(calls, c => Assert.Contains("needs a slot, but the engine's sequences or context are taken (one by the generation that called the tool)", c.Error, StringComparison.Ordinal));
        Assert.Equal(6, result.Tokens.Count);
        // The sequences came back: the engine serves the next request.
        var again = await engine.GenerateAsync(new AgentHost.Llama.Decoding.Strategies.GreedyStrategy(), Request).WaitAsync(_hangGuard);
        Assert.Equal(6, again.Tokens.Count);
        Assert.Equal(0, engine.Pending);
    }

    [Fact]
    public async Task Tool_calls_that_recurse_into_the_same_model_without_end_are_refused_at_a_fixed_depth()
    {
        ToolTokenStrategy? strategy = null;
        var depth = 0;
        var errors = new System.Collections.Concurrent.ConcurrentBag<string>();
        var tool = new ToolDefinition("story", Schema, async (_, _, cancellationToken) =>
        {
            depth++;
            using var session = await _model.CreateSessionAsync(hiddenStates: true, cancellationToken);
            // One token per level: the level's only step fires the tool again.
            var inner = await session.GenerateAsync(strategy!, Request with { MaxTokens = 1 }, cancellationToken);
            foreach (var call in (List<ToolTokenCall>)inner.Details!)
                errors.Add(call.Error ?? "");
            return "7";
        });
        strategy = new ToolTokenStrategy(AlwaysFiring(tool), [tool]);
        using var outer = await _model.CreateSessionAsync();

        var result = await outer.GenerateAsync(strategy, Request).WaitAsync(_hangGuard);

        // Each level calls once; the top level may call again after a result: a fixed bound, not a runaway.
        Assert.InRange(depth, ModelScheduler.MaxWaitDepth, 4 * ModelScheduler.MaxWaitDepth);
        Assert.Contains(errors, e => e.Contains($"nest more than {ModelScheduler.MaxWaitDepth} deep", StringComparison.Ordinal));
        Assert.Contains((List<ToolTokenCall>)result.Details!, c => c.Result == "7");
        Assert.Equal(6, result.Tokens.Count);
    }
}
