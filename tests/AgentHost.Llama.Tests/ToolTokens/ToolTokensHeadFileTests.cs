using AgentHost.Llama.Decoding;
using AgentHost.Llama.Models;
using AgentHost.Llama.ToolTokens;

namespace AgentHost.Llama.Tests.ToolTokens;

/// <summary>Head files carry the identity of their model and tools; a mismatch is refused with a clear error.</summary>
[Collection(ToolTokensCollection.Name)]
public sealed class ToolTokensHeadFileTests(ToolTokensFixture fixture) : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("toolkens-head-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private ToolTokenHead NewHead(float bias = 1.5f)
    {
        var tools = TestTools.Arithmetic();
        var d = fixture.Train.Dimension;
        var weights = Enumerable.Range(0, tools.Length * d).Select(i => MathF.Sin(i) / 3).ToArray();
        var prior = Enumerable.Range(0, tools.Length * d).Select(i => MathF.Cos(i) / 7).ToArray();
        return new ToolTokenHead(fixture.Model.Name, ModelFingerprint.Compute(fixture.Model.Path), d,
            [.. tools.Select(t => new ToolTokenSlot(t.Name, t.SchemaHash))], weights, prior, bias)
        {
            ContextWindow = fixture.Train.ContextWindow,
            TrainingInfo = new Dictionary<string, double> { ["final_loss"] = 1.25 },
        };
    }

    [Fact]
    public void A_tool_score_is_the_row_of_W_times_h_plus_the_bias()
    {
        var head = NewHead(bias: 2.5f);
        var d = head.Dimension;
        var hidden = Enumerable.Range(0, d).Select(k => (k % 5) - 2f).ToArray();
        var scores = new float[3];

        head.Score(hidden, scores);

        for (var i = 0; i < 3; i++)
        {
            var expected = 2.5;
            for (var k = 0; k < d; k++)
                expected += head.Weights[i * d + k] * (double)hidden[k];
            Assert.Equal(expected, scores[i], 1e-4);
        }
        head.WithBias(float.NegativeInfinity).Score(hidden, scores);
        Assert.All(scores, s => Assert.True(float.IsNegativeInfinity(s)));
    }

    [Fact]
    public void A_saved_head_loads_back_exactly()
    {
        var head = NewHead();
        var path = Path.Combine(_directory, "sub", "head.json");
        head.Save(path);

        var loaded = ToolTokenHead.Load(path);

        Assert.Equal(head.Weights.ToArray(), loaded.Weights.ToArray());
        Assert.Equal(head.Prior, loaded.Prior);
        Assert.Equal(head.Bias, loaded.Bias);
        Assert.Equal(head.Tools, loaded.Tools);
        Assert.Equal(head.ModelHash, loaded.ModelHash);
        Assert.Equal(ToolTokenContext.DefaultWindow, loaded.ContextWindow);
        Assert.Equal(64, loaded.ModelHash.Length);
        Assert.Equal(1.25, loaded.TrainingInfo["final_loss"]);
        loaded.EnsureMatches(fixture.Model);
        loaded.EnsureMatches(TestTools.Arithmetic());
    }

    [Fact]
    public async Task A_head_is_refused_on_another_model()
    {
        var path = Path.Combine(_directory, "head.json");
        NewHead().Save(path);
        var settings = new ModelSettings { ContextSize = 128, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 2, HiddenStates = true };
        using var other = LlamaModel.Load("tinystories656k", TestModels.TinyStories656K, settings);
        using var session = await other.CreateSessionAsync();

        var head = ToolTokenHead.Load(path);
        var error = Assert.Throws<AgentHostException>(() => head.EnsureMatches(other));
        var generateError = await Assert.ThrowsAsync<AgentHostException>(() =>
            session.GenerateAsync(new ToolTokenStrategy(head, TestTools.Arithmetic()), new GenerationRequest { Prompt = "Once upon a time" }));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("trained on model 'stories260K'", error.Message);
        Assert.Contains("'tinystories656k'", error.Message);
        Assert.Equal(error.Message, generateError.Message);
    }

    [Fact]
    public void A_changed_tool_set_is_refused()
    {
        var head = NewHead();
        var tools = TestTools.Arithmetic();

        var missing = Assert.Throws<AgentHostException>(() => new ToolTokenStrategy(head, tools[..2]));
        var reordered = Assert.Throws<AgentHostException>(() => new ToolTokenStrategy(head, [tools[1], tools[0], tools[2]]));
        var changedSchema = Assert.Throws<AgentHostException>(() => new ToolTokenStrategy(head,
            [tools[0], tools[1], new ToolDefinition("multiply", """{"type":"object","properties":{"x":{"type":"number"}}}""", tools[2].Invoke)]));

        Assert.Contains("[add, subtract, multiply]", missing.Message);
        Assert.Contains("tool 1 given is 'subtract'", reordered.Message);
        Assert.Contains("schema of tool 'multiply' changed", changedSchema.Message);
    }

    [Fact]
    public void Missing_foreign_and_damaged_head_files_are_clear_errors()
    {
        var missing = Assert.Throws<AgentHostException>(() => ToolTokenHead.Load(Path.Combine(_directory, "none.json")));
        Assert.Contains("does not exist", missing.Message);

        var notJson = Path.Combine(_directory, "text.json");
        File.WriteAllText(notJson, "hello");
        Assert.Contains("is not a tool-token head file", Assert.Throws<AgentHostException>(() => ToolTokenHead.Load(notJson)).Message);

        var foreign = Path.Combine(_directory, "foreign.json");
        File.WriteAllText(foreign, """{"format":"something-else"}""");
        Assert.Contains("is not a tool-token head file", Assert.Throws<AgentHostException>(() => ToolTokenHead.Load(foreign)).Message);

        var path = Path.Combine(_directory, "head.json");
        var head = NewHead();
        head.Save(path);
        var damaged = Path.Combine(_directory, "damaged.json");
        File.WriteAllText(damaged, File.ReadAllText(path).Replace($"\"dimension\": {head.Dimension}", $"\"dimension\": {head.Dimension - 1}", StringComparison.Ordinal));
        Assert.Contains("is damaged", Assert.Throws<AgentHostException>(() => ToolTokenHead.Load(damaged)).Message);
        File.WriteAllText(damaged, File.ReadAllText(path).Replace($"\"context_window\": {head.ContextWindow}", "\"context_window\": -1", StringComparison.Ordinal));
        Assert.Contains("is damaged", Assert.Throws<AgentHostException>(() => ToolTokenHead.Load(damaged)).Message);
    }

    [Fact]
    public void A_tool_with_non_numeric_arguments_needs_a_grammar_and_is_refused_before_generating()
    {
        var stringTool = new ToolDefinition("echo", """{"type":"object","properties":{"text":{"type":"string"}}}""", (_, json, _) => Task.FromResult(json));
        var error = Assert.Throws<AgentHostException>(() => NumericArgumentConstraints.Instance.Create(stringTool, fixture.Model));
        Assert.Contains("'text' of tool 'echo' is not a number", error.Message);
    }
}
