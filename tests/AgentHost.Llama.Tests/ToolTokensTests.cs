using AgentHost.Llama.Decoding;
using AgentHost.Llama.Models;
using AgentHost.Llama.ToolTokens;
using Xunit.Abstractions;

namespace AgentHost.Llama.Tests;

/// <summary>Arithmetic tools for the tests (the SK layer's adapter is tested with real KernelFunctions elsewhere).</summary>
internal static class TestTools
{
    public const string TwoNumbers = """{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}},"required":["a","b"]}""";

    public static ToolDefinition[] Arithmetic(List<string>? log = null) =>
    [
        Make("add", (a, b) => a + b, log),
        Make("subtract", (a, b) => a - b, log),
        Make("multiply", (a, b) => a * b, log),
    ];

    public static ToolDefinition Make(string name, Func<long, long, long> op, List<string>? log = null) => new(name, TwoNumbers, (n, json, _) =>
    {
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        var result = op(doc.RootElement.GetProperty("a").GetInt64(), doc.RootElement.GetProperty("b").GetInt64());
        log?.Add($"{n}{json}={result}");
        return Task.FromResult(result.ToString(System.Globalization.CultureInfo.InvariantCulture));
    });
}

[Collection(ToolTokensCollection.Name)]
public sealed class ToolTokensEndToEndTests(ToolTokensFixture fixture, ITestOutputHelper output)
{
    private static readonly ToolTokenTrainingOptions _training = new() { Epochs = 30, LearningRate = 1e-2, Seed = 3 };

    [Fact]
    public async Task A_trained_head_fires_where_calls_belong_on_held_out_text_far_better_than_its_prior_and_chance()
    {
        var prior = await ToolTokenPriors.BuildAsync(ToolTokenPrior.HiddenStates, fixture.Session, DemoCorpus.ToolNames, ToolTokenPriors.DefaultScale);
        var trainer = new ToolTokenTrainer(fixture.Train, prior, _training);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var weights = trainer.Train();
        output.WriteLine($"train: {fixture.Train.Count} positions, {fixture.Train.CallPositions} calls, {fixture.Train.SkippedCalls} skipped, {clock.ElapsedMilliseconds} ms");
        var head = Head(weights, prior);

        var trained = ToolTokenEvaluation.Evaluate(head, fixture.HeldOut);
        var priorOnly = ToolTokenEvaluation.Evaluate(head.PriorOnly(), fixture.HeldOut);
        var chance = ToolTokenEvaluation.Chance(fixture.HeldOut);
        output.WriteLine($"held out: {fixture.HeldOut.Count} positions, {fixture.HeldOut.CallPositions} calls");
        output.WriteLine($"trained P {trained.Precision:F3} R {trained.Recall:F3} F1 {trained.F1:F3}; prior P {priorOnly.Precision:F3} R {priorOnly.Recall:F3} F1 {priorOnly.F1:F3}; chance F1 {chance.F1:F3}");

        Assert.Equal(0, fixture.HeldOut.SkippedCalls);
        Assert.True(fixture.HeldOut.CallPositions >= 60);
        Assert.True(trained.F1 >= 0.8, $"F1 {trained.F1:F3}");
        Assert.True(trained.F1 > priorOnly.F1 + 0.3);
        Assert.True(trained.F1 > chance.F1 + 0.5);
    }

    private ToolTokenHead Head(float[] weights, float[] prior) => new(fixture.Model.Name, ModelFingerprint.Compute(fixture.Model.Path), fixture.Train.Dimension,
        [.. TestTools.Arithmetic().Select(t => new ToolTokenSlot(t.Name, t.SchemaHash))], weights, prior);
}
