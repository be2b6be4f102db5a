using AgentHost.Llama.Decoding;
using AgentHost.Llama.Models;
using AgentHost.Llama.ToolTokens;
using Xunit.Abstractions;

namespace AgentHost.Llama.Tests.ToolTokens;

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
    [Fact]
    public async Task The_default_head_fires_where_calls_belong_on_held_out_text_far_better_than_its_prior_and_chance()
    {
        var head = await fixture.DefaultHeadAsync();

        var trained = ToolTokenEvaluation.Evaluate(head, fixture.HeldOut);
        var priorOnly = ToolTokenEvaluation.Evaluate(head.PriorOnly(), fixture.HeldOut);
        var chance = ToolTokenEvaluation.Chance(fixture.HeldOut);
        output.WriteLine($"train: {fixture.Train.Count} positions, {fixture.Train.CallPositions} calls; held out: {fixture.HeldOut.Count} positions, {fixture.HeldOut.CallPositions} calls");
        output.WriteLine($"trained P {trained.Precision:F3} R {trained.Recall:F3} F1 {trained.F1:F3}; prior P {priorOnly.Precision:F3} R {priorOnly.Recall:F3} F1 {priorOnly.F1:F3}; chance F1 {chance.F1:F3}");

        Assert.Equal(0, fixture.Train.SkippedCalls);
        Assert.Equal(0, fixture.HeldOut.SkippedCalls);
        Assert.True(fixture.HeldOut.CallPositions >= 60);
        Assert.True(trained.F1 >= 0.8, $"F1 {trained.F1:F3}");
        Assert.True(trained.F1 > priorOnly.F1 + 0.3);
        Assert.True(trained.F1 > chance.F1 + 0.5);
    }

    [Fact]
    public async Task On_templates_never_seen_in_training_the_default_head_reaches_the_issue_goal_and_the_papers_head_on_h_alone_does_not()
    {
        var head = await fixture.DefaultHeadAsync();
        var unseen = ToolTokenEvaluation.Evaluate(head, fixture.Unseen);
        var seen = ToolTokenEvaluation.Evaluate(head, fixture.HeldOut);
        var chance = ToolTokenEvaluation.Chance(fixture.Unseen);

        // The same corpus and training without the context window: the final hidden state alone.
        var paperHead = await fixture.TrainAsync(await fixture.DatasetAsync(fixture.TrainExamples, 0), new ToolTokenTrainingOptions());
        var paperUnseen = ToolTokenEvaluation.Evaluate(paperHead, await fixture.DatasetAsync(ToolTokensFixture.Parse(fixture.UnseenLines), 0));
        output.WriteLine($"unseen templates: {fixture.Unseen.CallPositions} calls; P {unseen.Precision:F3} R {unseen.Recall:F3} F1 {unseen.F1:F3} (seen F1 {seen.F1:F3}, chance {chance.F1:F3}); h alone: unseen F1 {paperUnseen.F1:F3}");

        Assert.Equal(0, fixture.Unseen.SkippedCalls);
        Assert.True(fixture.Unseen.CallPositions >= 60);
        Assert.True(unseen.F1 >= 0.6, $"unseen F1 {unseen.F1:F3}");
        Assert.True(seen.F1 >= 0.8, $"seen F1 {seen.F1:F3}");
        Assert.True(unseen.F1 > paperUnseen.F1 + 0.2, $"with the window {unseen.F1:F3}, h alone {paperUnseen.F1:F3}");
    }

    [Fact]
    public async Task The_models_own_stories_in_training_make_the_head_fire_less_in_ordinary_stories()
    {
        var withStories = await fixture.DefaultHeadAsync();
        var demoOnly = await fixture.TrainAsync(await fixture.DatasetAsync(fixture.DemoExamples, ToolTokenContext.DefaultWindow),
            new ToolTokenTrainingOptions());
        // Other stories of the model (other seeds) than the ones trained on: no tool belongs anywhere in them.
        var stories = await fixture.DatasetAsync(await ToolTokenNegatives.SampleAsync(fixture.Session, 20, seed: 1000), ToolTokenContext.DefaultWindow);

        var fired = ToolTokenEvaluation.Evaluate(withStories, stories).Fired;
        var firedDemoOnly = ToolTokenEvaluation.Evaluate(demoOnly, stories).Fired;
        output.WriteLine($"{stories.Count} positions of the model's stories: the default head fires at {fired}, the head on the demo corpus alone at {firedDemoOnly}");

        Assert.Equal(0, stories.CallPositions);
        Assert.True(fired < firedDemoOnly / 2, $"{fired} vs {firedDemoOnly}");
    }

    [Fact]
    public void No_unseen_template_line_is_ever_generated_for_training()
    {
        var training = DemoCorpus.Generate(20_000, seed: 1).ToHashSet(StringComparer.Ordinal);
        var unseen = DemoCorpus.Generate(2_000, seed: 1, DemoTemplates.Unseen);

        Assert.DoesNotContain(unseen, training.Contains);
    }

    [Fact]
    public async Task In_a_generated_story_the_head_calls_the_tool_and_the_text_carries_the_result_it_computed()
    {
        var head = await TrainedHead();
        var log = new List<string>();
        var strategy = new ToolTokenStrategy(head, TestTools.Arithmetic(log));
        var request = new GenerationRequest { Prompt = "Tom had 3 apples. Then he found 4 more apples. Now he had", MaxTokens = 12 };

        var result = await fixture.Session.GenerateAsync(strategy, request);
        output.WriteLine(result.Text);
        foreach (var line in log)
            output.WriteLine(line);

        var calls = Assert.IsType<List<ToolTokenCall>>(result.Details);
        var call = Assert.Single(calls, c => c.Error is null);
        Assert.Equal("add", call.Tool);
        Assert.Single(log);
        Assert.StartsWith($"add{call.Arguments}=", log[0]);
        Assert.Equal(log[0][(log[0].IndexOf('=', StringComparison.Ordinal) + 1)..], call.Result);
        // The visible text holds the computed result as a word where the call was made; the call itself is not in the text.
        Assert.StartsWith($" {call.Result}", result.Text);
        Assert.False(char.IsAsciiDigit(result.Text[call.Result!.Length + 1])); // the next token had digits masked
        Assert.DoesNotContain("add(", result.Text, StringComparison.Ordinal);
        Assert.Equal(1, result.Stats.Extra["tool_calls"]);
        await fixture.Session.RunAsync(s => { s.VerifyKvCache(); return true; });
    }

    [Fact]
    public async Task On_held_out_sentences_the_head_calls_the_annotated_tool_and_an_argument_prompt_changes_what_argument_mode_reads()
    {
        var head = await TrainedHead();
        var plain = TestTools.Arithmetic();
        var prompted = plain.Select(t => new ToolDefinition(t.Name, t.ParametersSchema, t.Invoke) { ArgumentPrompt = DemoCorpus.ArgumentPrompt(t.Name) }).ToList();
        int sentences = 0, rightTool = 0, differentArguments = 0;
        foreach (var line in fixture.HeldOutLines.Take(20))
        {
            var cut = line.IndexOf('<', StringComparison.Ordinal);
            if (cut < 0)
                continue;
            sentences++;
            var request = new GenerationRequest { Prompt = line[..cut].TrimEnd(), MaxTokens = 3 };
            var first = ((List<ToolTokenCall>)(await fixture.Session.GenerateAsync(new ToolTokenStrategy(head, plain), request)).Details!).FirstOrDefault();
            var second = ((List<ToolTokenCall>)(await fixture.Session.GenerateAsync(new ToolTokenStrategy(head, prompted), request)).Details!).FirstOrDefault();
            output.WriteLine($"{line[cut..line.IndexOf('=', cut)]}: {first?.Tool}{first?.Arguments}={first?.Result} | with prompt {second?.Tool}{second?.Arguments}={second?.Result}");
            if (first is { Error: null } && line[(cut + 1)..].StartsWith(first.Tool + ">", StringComparison.Ordinal))
                rightTool++;
            if (first is not null && second is not null && first.Arguments != second.Arguments)
                differentArguments++;
            Assert.Equal(first?.Tool, second?.Tool); // the prompt only affects argument mode
        }
        await fixture.Session.RunAsync(s => { s.VerifyKvCache(); return true; });

        Assert.True(rightTool >= 0.8 * sentences, $"{rightTool} of {sentences}");
        Assert.True(differentArguments > 0);
    }

    [Fact]
    public async Task A_failing_call_backs_off_to_the_next_best_token_of_that_step()
    {
        var head = await TrainedHead();
        // Every tool fails, so that the step's candidates after the winning tool (other tools among them) all back off.
        var failing = TestTools.Arithmetic().Select(t => new ToolDefinition(t.Name, TestTools.TwoNumbers, (_, _, _) => throw new InvalidOperationException("out of service"))).ToArray();
        var request = new GenerationRequest { Prompt = "Tom had 3 apples. Then he found 4 more apples. Now he had", MaxTokens = 6 };

        var result = await fixture.Session.GenerateAsync(new ToolTokenStrategy(head, failing), request);
        var withoutTools = await fixture.Session.GenerateAsync(new ToolTokenStrategy(head.WithBias(float.NegativeInfinity), failing), request);

        var calls = Assert.IsType<List<ToolTokenCall>>(result.Details);
        Assert.NotEmpty(calls);
        Assert.All(calls, c => Assert.Contains("out of service", c.Error));
        Assert.Equal(0, result.Stats.Extra["tool_calls"]);
        // The first token is the best vocabulary token of the step where the tool won, exactly as without tools.
        Assert.Equal(withoutTools.Tokens[0], result.Tokens[0]);
        await fixture.Session.RunAsync(s => { s.VerifyKvCache(); return true; });
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task With_no_tools_or_a_bias_of_minus_infinity_the_output_is_token_identical_to_the_base_model(bool sample)
    {
        var request = new GenerationRequest
        {
            Prompt = "Tom had 3 apples. Then he found 4 more apples. Now he had",
            MaxTokens = 60,
            Sampling = sample ? new SamplingOptions { Seed = 11 } : null,
        };
        using var plainModel = LlamaModel.Load("stories260k", TestModels.Stories260K, Stories260KFixture.Settings);
        using var plainSession = await plainModel.CreateSessionAsync();
        var baseline = await plainSession.GenerateAsync(sample ? new Llama.Decoding.Strategies.SamplingStrategy() : new Llama.Decoding.Strategies.GreedyStrategy(), request);

        var trained = await TrainedHead();
        var silenced = await fixture.Session.GenerateAsync(new ToolTokenStrategy(trained, TestTools.Arithmetic(), new ToolTokenOptions { Bias = float.NegativeInfinity }), request);
        var noTools = new ToolTokenHead(fixture.Model.Name, trained.ModelHash, trained.Dimension, [], []) { ContextWindow = trained.ContextWindow };
        var empty = await fixture.Session.GenerateAsync(new ToolTokenStrategy(noTools, []), request);

        Assert.Equal(60, baseline.Tokens.Count);
        Assert.Equal(baseline.Tokens, silenced.Tokens);
        Assert.Equal(baseline.Tokens, empty.Tokens);
        Assert.Equal(baseline.Text, empty.Text);
        // And the trained head does change this output (it calls add), so the comparison can fail.
        var active = await fixture.Session.GenerateAsync(new ToolTokenStrategy(trained, TestTools.Arithmetic()), request with { Sampling = null });
        output.WriteLine(active.Text);
        foreach (var call in (List<ToolTokenCall>)active.Details!)
            output.WriteLine($"{call.Position}: {call.Tool}{call.Arguments}={call.Result} {call.Error}");
        // Not only once: after stories260K's nonsensical arguments the story derails and the head fires again (docs/tool-tokens.md).
        Assert.True(active.Stats.Extra["tool_calls"] >= 1);
    }

    private Task<ToolTokenHead> TrainedHead() => fixture.DefaultHeadAsync();
}
