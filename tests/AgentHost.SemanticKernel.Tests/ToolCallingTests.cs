using System.ComponentModel;
using System.Text.Json;
using AgentHost.Plugins;
using AgentHost.Extensions.AI;
using AgentHost.SemanticKernel.ChatClient;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

namespace AgentHost.SemanticKernel.Tests;

/// <summary>
/// Function calling end to end on stories260K: a story model never calls tools by itself, so these
/// tests force calls with the grammar (Required mode) and check that SK / MEAI run the real skill,
/// feed the result back and get a final answer, also when streaming.
/// </summary>
[Collection(ChatModelCollection.Name)]
public sealed class ToolCallingTests(ChatModelFixture fixture)
{
    /// <summary>The arithmetic skill, recording what it was called with.</summary>
    public sealed class RecordingMath
    {
        private readonly MathPlugin _math = new();

        public List<(double A, double B)> Calls { get; } = [];

        [KernelFunction, Description("Adds two numbers.")]
        public double Add([Description("The first number.")] double a, [Description("The number to add.")] double b)
        {
            Calls.Add((a, b));
            return _math.Add(a, b);
        }
    }

    private (Kernel Kernel, RecordingMath Math) NewKernel()
    {
        var builder = Kernel.CreateBuilder();
        builder.AddLlamaChatClient(fixture.Model, new LlamaChatClientOptions { PromptCache = false });
        var kernel = builder.Build();
        var math = new RecordingMath();
        kernel.Plugins.AddFromObject(math, "Math");
        return (kernel, math);
    }

    private static LlamaPromptExecutionSettings Required(Kernel kernel) => new()
    {
        MaxTokens = 128,
        FunctionChoiceBehavior = FunctionChoiceBehavior.Required([kernel.Plugins.GetFunction("Math", "Add")]),
    };

    [Fact]
    public async Task Required_mode_forces_a_schema_valid_call_that_SK_invokes_and_a_final_answer_follows()
    {
        var (kernel, math) = NewKernel();
        var chat = kernel.GetRequiredService<IChatClient>().AsChatCompletionService();
        var history = new ChatHistory();
        history.AddUserMessage("What is 3 plus 4?");

        var reply = await chat.GetChatMessageContentAsync(history, Required(kernel), kernel);

        var (a, b) = Assert.Single(math.Calls);
        Assert.True(double.IsFinite(a) && double.IsFinite(b));
        // SK appended the call and its result; the last message is the model's final text.
        var call = history.SelectMany(m => m.Items).OfType<Microsoft.SemanticKernel.FunctionCallContent>().Single();
        Assert.EndsWith("Add", call.FunctionName);
        var result = history.SelectMany(m => m.Items).OfType<Microsoft.SemanticKernel.FunctionResultContent>().Single();
        Assert.Equal(a + b, Convert.ToDouble(result.Result?.ToString(), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(AuthorRole.Assistant, reply.Role);
        Assert.False(string.IsNullOrWhiteSpace(reply.Content));
    }

    [Fact]
    public async Task Required_mode_works_when_streaming()
    {
        var (kernel, math) = NewKernel();
        var chat = kernel.GetRequiredService<IChatClient>().AsChatCompletionService();
        var history = new ChatHistory();
        history.AddUserMessage("Add 2 and 5.");

        var text = "";
        await foreach (var update in chat.GetStreamingChatMessageContentsAsync(history, Required(kernel), kernel))
            text += update.Content;

        Assert.Single(math.Calls);
        Assert.False(string.IsNullOrWhiteSpace(text));
        Assert.Contains(history.SelectMany(m => m.Items), i => i is Microsoft.SemanticKernel.FunctionResultContent);
    }

    [Fact]
    public async Task The_client_returns_FunctionCallContent_with_arguments_valid_against_the_schema()
    {
        using var client = new LlamaChatClient(fixture.Model);
        var add = AIFunctionFactory.Create((double a, double b) => a + b, "add", "Adds two numbers.");
        var options = new ChatOptions { Tools = [add], ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 128 };

        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "What is 3 plus 4?")], options);

        Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
        var call = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionCallContent>());
        Assert.Equal("add", call.Name);
        Assert.False(string.IsNullOrEmpty(call.CallId));
        Assert.Equal(["a", "b"], call.Arguments!.Keys.Order());
        Assert.All(call.Arguments.Values, v => Assert.Equal(JsonValueKind.Number, ((JsonElement)v!).ValueKind));

        var streamed = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "What is 3 plus 4?")], options))
            streamed.Add(update);
        var streamedCall = Assert.Single(streamed.SelectMany(u => u.Contents).OfType<Microsoft.Extensions.AI.FunctionCallContent>());
        Assert.Equal(call.Name, streamedCall.Name);
        Assert.Equal(JsonSerializer.Serialize(call.Arguments), JsonSerializer.Serialize(streamedCall.Arguments));
        Assert.Equal(ChatFinishReason.ToolCalls, streamed[^1].FinishReason);
    }

    [Fact]
    public async Task Parallel_calls_are_allowed_only_when_asked()
    {
        using var client = new LlamaChatClient(fixture.Model, new LlamaChatClientOptions { PromptCache = false });
        var add = AIFunctionFactory.Create((int a, int b) => a + b, "add", "Adds two numbers.");
        ChatMessage[] question = [new(ChatRole.User, "What is 3 plus 4, and 5 plus 6?")];

        var single = await client.GetResponseAsync(question, new ChatOptions { Tools = [add], ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 200 });
        var multiple = await client.GetResponseAsync(question, new ChatOptions { Tools = [add], ToolMode = ChatToolMode.RequireAny, AllowMultipleToolCalls = true, MaxOutputTokens = 200 });

        Assert.Single(single.Messages.SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionCallContent>());
        var calls = multiple.Messages.SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionCallContent>().ToList();
        Assert.InRange(calls.Count, 1, 4);
        Assert.All(calls, c => Assert.Equal(["a", "b"], c.Arguments!.Keys.Order()));
        Assert.Equal(calls.Count, calls.Select(c => c.CallId).Distinct().Count());
        // The grammar for several calls is a different one: more calls are possible, never required.
        var grammar = ToolGrammar.For(client.Format.ToolCalls, new ChatOptions { ToolMode = ChatToolMode.RequireAny, AllowMultipleToolCalls = true }, [add])!;
        var one = ToolGrammar.For(client.Format.ToolCalls, new ChatOptions { ToolMode = ChatToolMode.RequireAny }, [add])!;
        Assert.NotEqual(one.Gbnf, grammar.Gbnf);
    }

    [Fact]
    public async Task Tool_schemas_beyond_the_grammar_limits_or_unsatisfiable_are_one_clear_invalid_argument_error()
    {
        using var client = new LlamaChatClient(fixture.Model, new LlamaChatClientOptions { PromptCache = false });
        var wide = JsonDocument.Parse("{\"type\": \"object\", \"properties\": {" + string.Join(", ", Enumerable.Range(0, 60).Select(i => $"\"p{i}\": {{\"type\": \"integer\"}}")) + "}}").RootElement;
        var tools = Enumerable.Range(0, 200).Select(i => (AITool)AIFunctionFactory.CreateDeclaration($"tool{i}", "A tool.", wide)).ToList();
        var impossible = AIFunctionFactory.CreateDeclaration("impossible", "Cannot be called.", JsonDocument.Parse("""{"type": "object", "required": ["x"], "additionalProperties": false}""").RootElement);
        ChatMessage[] question = [new(ChatRole.User, "Call a tool.")];

        var tooMany = await Assert.ThrowsAsync<AgentHost.Llama.AgentHostException>(() => client.GetResponseAsync(question, new ChatOptions { Tools = tools, ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 8 }));
        var unsatisfiable = await Assert.ThrowsAsync<AgentHost.Llama.AgentHostException>(() => client.GetResponseAsync(question, new ChatOptions { Tools = [impossible], ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 8 }));
        var responseFormat = await Assert.ThrowsAsync<AgentHost.Llama.AgentHostException>(() => client.GetResponseAsync(question, new ChatOptions { ResponseFormat = ChatResponseFormat.ForJsonSchema(JsonDocument.Parse("""{"type": "string", "minLength": 10, "maxLength": 2}""").RootElement), MaxOutputTokens = 8 }));

        Assert.All([tooMany, unsatisfiable, responseFormat], e => Assert.Equal(AgentHost.Llama.ErrorKind.InvalidArgument, e.Kind));
        Assert.Matches(@"GrammarLimits\.(MaxSchemaNodes|MaxGrammarLength)", tooMany.Message);
        Assert.Contains("required property 'x' is not allowed", unsatisfiable.Message);
        Assert.Contains("maxLength is below minLength", responseFormat.Message);
    }

    [Fact]
    public async Task None_mode_renders_no_tools()
    {
        using var client = new LlamaChatClient(fixture.Model, new LlamaChatClientOptions { PromptCache = false });
        var add = AIFunctionFactory.Create((double a, double b) => a + b, "add", "Adds two numbers.");
        ChatMessage[] question = [new(ChatRole.User, "What is 3 plus 4?")];

        var none = await client.GetResponseAsync(question, new ChatOptions { Tools = [add], ToolMode = ChatToolMode.None, MaxOutputTokens = 8 });
        var plain = await client.GetResponseAsync(question, new ChatOptions { MaxOutputTokens = 8 });
        var auto = await client.GetResponseAsync(question, new ChatOptions { Tools = [add], ToolMode = ChatToolMode.Auto, MaxOutputTokens = 8 });

        Assert.Equal(plain.Usage!.InputTokenCount, none.Usage!.InputTokenCount);
        Assert.Equal(plain.Text, none.Text);
        Assert.True(auto.Usage!.InputTokenCount > plain.Usage.InputTokenCount, "auto mode renders the tools into the prompt");
    }

    [Fact]
    public async Task An_unknown_function_becomes_an_error_result_for_the_model_not_an_exception()
    {
        using var client = new LlamaChatClient(fixture.Model);
        // Offered to the model but not invokable here: the invoking loop cannot find it.
        var ghost = AIFunctionFactory.CreateDeclaration("ghost", "Does nothing.", JsonDocument.Parse("""{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]}""").RootElement);
        using var invoking = new FunctionInvokingChatClient(client) { IncludeDetailedErrors = true };
        var options = new ChatOptions { Tools = [ghost], ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 128 };

        var response = await invoking.GetResponseAsync([new ChatMessage(ChatRole.User, "Call ghost.")], options);

        var call = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionCallContent>());
        Assert.Equal("ghost", call.Name);
        Assert.Empty(response.Messages.SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionResultContent>());
    }

    [Fact]
    public async Task Arguments_the_function_cannot_take_become_an_error_result_and_the_conversation_goes_on()
    {
        using var client = new LlamaChatClient(fixture.Model);
        // The schema the model sees (strings) differs from what the function takes (numbers): the call fails.
        var real = AIFunctionFactory.Create((int a, int b) => a + b, "add", "Adds two numbers.");
        var mismatched = new SchemaOverride(real, JsonDocument.Parse("""{"type":"object","properties":{"a":{"type":"string","enum":["three"]},"b":{"type":"string","enum":["four"]}},"required":["a","b"]}""").RootElement);
        using var invoking = new FunctionInvokingChatClient(client) { IncludeDetailedErrors = true };
        var options = new ChatOptions { Tools = [mismatched], ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 128 };

        var response = await invoking.GetResponseAsync([new ChatMessage(ChatRole.User, "What is three plus four?")], options);

        var result = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionResultContent>());
        Assert.NotNull(result.Exception);
        Assert.Contains("Error", result.Result?.ToString());
        Assert.False(string.IsNullOrWhiteSpace(response.Messages[^1].Text), "the model answers after the failed call");
    }

    [Fact]
    public async Task Arguments_that_break_the_schema_are_refused_before_the_call_and_the_loop_reports_them()
    {
        var called = 0;
        var add = AIFunctionFactory.Create((int a, int b) => { called++; return a + b; }, "add", "Adds two small numbers.");
        // The advertised schema is stricter than the parameters' types: 5 binds to an int but breaks the enum.
        var strict = new SchemaOverride(add, JsonDocument.Parse("""{"type":"object","properties":{"a":{"type":"integer","enum":[1,2]},"b":{"type":"integer"}},"required":["a","b"]}""").RootElement);
        Assert.Empty(ToolArgumentValidator.Check(strict, new Dictionary<string, object?> { ["a"] = 1, ["b"] = 4 }));
        Assert.Contains(ToolArgumentValidator.Check(strict, new Dictionary<string, object?> { ["a"] = 5, ["b"] = 4 }), p => p.StartsWith("/a", StringComparison.Ordinal));
        Assert.NotEmpty(ToolArgumentValidator.Check(strict, new Dictionary<string, object?> { ["a"] = 1 }));

        var replies = new Queue<ChatResponse>(
        [
            new(new ChatMessage(ChatRole.Assistant, [new Microsoft.Extensions.AI.FunctionCallContent("1", "add", new Dictionary<string, object?> { ["a"] = 5, ["b"] = 4 })])),
            new(new ChatMessage(ChatRole.Assistant, "done")),
        ]);
        using var scripted = new Support.RecordingChatClient((_, _) => replies.Dequeue());
        using var invoking = new FunctionInvokingChatClient(scripted) { IncludeDetailedErrors = true };
        var response = await invoking.GetResponseAsync("hi", new ChatOptions { Tools = [strict.WithSchemaCheck()] });

        Assert.Equal(0, called);
        var result = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionResultContent>());
        Assert.True(result.Result?.ToString()?.Contains("do not match its schema") == true, $"result: {result.Result}");
        Assert.Equal("done", response.Messages[^1].Text);
    }

    /// <summary>A function whose advertised schema differs from its parameters.</summary>
    private sealed class SchemaOverride(AIFunction inner, JsonElement schema) : DelegatingAIFunction(inner)
    {
        public override JsonElement JsonSchema => schema;
    }
}
