using AgentHost.Llama.Decoding;
using AgentHost.Llama.ToolTokens;
using Xunit.Abstractions;

namespace AgentHost.Llama.Tests.ToolTokens;

/// <summary>
/// ToolkenGPT's settings behind the <c>paper</c> preset (issue 29): its random start, one line per step, the best epoch on
/// held-out lines, the task's bias, and argument mode with the tool's demonstrations stopped at <c>)</c>; and
/// demonstrations as data (tool definition, head file, options).
/// </summary>
[Collection(ToolTokensCollection.Name)]
public sealed class ToolTokensPaperTests(ToolTokensFixture fixture, ITestOutputHelper output)
{
    private const string Prompt = "Tom had 3 apples. Then he found 4 more apples. Now he had";

    [Fact]
    public async Task Prior_none_is_a_seeded_random_start_in_the_papers_range_not_zeros()
    {
        var d = fixture.Model.EmbeddingSize;
        var first = await ToolTokenPriors.BuildAsync(ToolTokenPrior.None, fixture.Session, DemoCorpus.ToolNames, ToolTokenPriors.DefaultScale, seed: 3);
        var again = await ToolTokenPriors.BuildAsync(ToolTokenPrior.None, fixture.Session, DemoCorpus.ToolNames, ToolTokenPriors.DefaultScale, seed: 3);
        var other = await ToolTokenPriors.BuildAsync(ToolTokenPrior.None, fixture.Session, DemoCorpus.ToolNames, ToolTokenPriors.DefaultScale, seed: 4);

        Assert.Equal(3 * d, first.Length);
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
        // nn.Linear's default: uniform in +-1/sqrt(fan_in), spread over the range, not zeros.
        var bound = 1 / MathF.Sqrt(d);
        Assert.All(first, w => Assert.InRange(MathF.Abs(w), 0, bound));
        Assert.True(first.Count(w => w == 0) <= 1);
        Assert.True(first.Max() > 0.8f * bound && first.Min() < -0.8f * bound);

        // The start matters: the same training from it and from zeros ends elsewhere; from it twice, in the same place.
        var options = ToolTokenTrainingOptions.Paper with { Epochs = 1 };
        var data = await fixture.DatasetAsync(fixture.DemoExamples.Take(150).ToList(), ToolTokenPaper.ContextWindow);
        var fromRandom = new ToolTokenTrainer(data, first, options).Train();
        Assert.Equal(fromRandom, new ToolTokenTrainer(data, again, options).Train());
        Assert.NotEqual(fromRandom, new ToolTokenTrainer(data, new float[first.Length], options).Train());
    }

    [Fact]
    public async Task Per_sequence_training_takes_one_step_per_line_and_is_deterministic()
    {
        var data = await fixture.DatasetAsync(fixture.DemoExamples.Take(120).ToList(), 0);
        var prior = ToolTokenPriors.Random(data.Tools.Count, data.Dimension, 1);
        var options = ToolTokenTrainingOptions.Paper with { Epochs = 2 };
        var losses = new List<ToolTokenTrainingProgress>();

        var perLine = new ToolTokenTrainer(data, prior, options).Train(new SyncProgress<ToolTokenTrainingProgress>(losses.Add));
        var again = new ToolTokenTrainer(data, prior, options).Train();
        var batched = new ToolTokenTrainer(data, prior, options with { PerSequence = false, BatchSize = 64 }).Train();

        Assert.Equal(120, data.ExampleStarts.Length);
        Assert.Equal(0, data.ExampleStarts[0]);
        Assert.True(data.ExampleStarts.Zip(data.ExampleStarts.Skip(1)).All(p => p.Second > p.First));
        Assert.Equal(perLine, again);
        Assert.NotEqual(perLine, batched);
        Assert.Equal([1, 2], losses.Select(l => l.Epoch));
        Assert.True(losses[1].Loss < losses[0].Loss);
    }

    [Fact]
    public async Task With_held_out_lines_the_best_epoch_is_kept_not_the_last()
    {
        var data = await fixture.DatasetAsync(fixture.DemoExamples.Take(300).ToList(), 0);
        var heldOut = await fixture.DatasetAsync(ToolTokensFixture.Parse(fixture.HeldOutLines), 0);
        var prior = ToolTokenPriors.Random(data.Tools.Count, data.Dimension, 1);
        // A large step makes the held-out F1 move up and down between epochs.
        var options = ToolTokenTrainingOptions.Paper with { Epochs = 8, LearningRate = 0.03 };
        var progress = new List<ToolTokenTrainingProgress>();

        var trainer = new ToolTokenTrainer(data, prior, options, heldOut);
        var kept = trainer.Train(new SyncProgress<ToolTokenTrainingProgress>(progress.Add));
        var f1s = progress.Select(p => p.HeldOutF1!.Value).ToList();
        output.WriteLine(string.Join(", ", f1s.Select(f => f.ToString("F3", System.Globalization.CultureInfo.InvariantCulture))));

        var best = f1s.IndexOf(f1s.Max()) + 1;
        Assert.Equal(best, trainer.BestEpoch);
        Assert.Equal(f1s.Max(), trainer.HeldOutF1);
        // The kept weights are exactly those after the best epoch: training stopped there gives the same W.
        Assert.Equal(new ToolTokenTrainer(data, prior, options with { Epochs = best }).Train(), kept);
        var head = new ToolTokenHead("m", "h", data.Dimension, [.. data.Tools.Select(t => new ToolTokenSlot(t, ""))], kept);
        Assert.Equal(f1s.Max(), ToolTokenEvaluation.Evaluate(head, heldOut).F1);
        Assert.True(best < options.Epochs, $"F1 by epoch {string.Join(", ", f1s)}: the case must have a best epoch before the last");

        var withoutHeldOut = new ToolTokenTrainer(data, prior, options);
        Assert.Equal(new ToolTokenTrainer(data, prior, options).Train(), withoutHeldOut.Train());
        Assert.Equal(options.Epochs, withoutHeldOut.BestEpoch);
        Assert.Null(withoutHeldOut.HeldOutF1);
    }

    [Fact]
    public async Task The_tasks_bias_is_added_to_every_tool_score_and_makes_the_head_fire_more()
    {
        Assert.Equal(3.0f, ToolTokenPaper.BiasOf("gsm8k-xl"));
        Assert.Equal(2.7f, ToolTokenPaper.BiasOf("funcqa-oh"));
        Assert.Equal(10f, ToolTokenPaper.BiasOf("kamel"));
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<AgentHostException>(() => ToolTokenPaper.BiasOf("gsm8k")).Kind);

        var head = await fixture.DefaultHeadAsync();
        var task = head.WithBias(ToolTokenPaper.BiasOf(ToolTokenPaper.DefaultTask));
        var plain = head.WithBias(0);
        float[] withBias = new float[3], without = new float[3];
        var features = fixture.HeldOut.FeaturesAt(0);
        task.Score(features, withBias);
        plain.Score(features, without);
        for (var i = 0; i < 3; i++)
            Assert.Equal(without[i] + 3.0f, withBias[i], 4);
        Assert.True(ToolTokenEvaluation.Evaluate(task, fixture.HeldOut).Fired > ToolTokenEvaluation.Evaluate(plain, fixture.HeldOut).Fired);

        // Saved with the head and applied by the strategy as an explicit bias option is.
        var path = Path.Combine(Path.GetTempPath(), $"toolkens-bias-{Guid.NewGuid():N}.json");
        try
        {
            task.Save(path);
            var loaded = ToolTokenHead.Load(path);
            Assert.Equal(3.0f, loaded.Bias);
            var request = new GenerationRequest { Prompt = "Lily had 5 cookies. Then she lost 2 of them. Now she had", MaxTokens = 20 };
            var fromFile = await fixture.Session.GenerateAsync(new ToolTokenStrategy(loaded, TestTools.Arithmetic()), request);
            var fromOption = await fixture.Session.GenerateAsync(new ToolTokenStrategy(plain, TestTools.Arithmetic(), new ToolTokenOptions { Bias = 3.0f }), request);
            Assert.Equal(fromOption.Tokens, fromFile.Tokens);
            Assert.NotEmpty((List<ToolTokenCall>)fromFile.Details!);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void The_papers_argument_mode_stops_at_the_closing_parenthesis_and_parses_as_its_code()
    {
        var tool = TestTools.Arithmetic()[0];
        var vocabulary = fixture.Model.Vocabulary;
        var constraint = PaperArgumentConstraints.Instance.Create(tool, fixture.Model);
        var tokens = fixture.Model.Tokenize("3, 4) and then 5)", addBos: false);
        var logits = new float[vocabulary.Count];
        var taken = 0;
        foreach (var token in tokens)
        {
            constraint.Mask(logits);
            Assert.DoesNotContain(float.NegativeInfinity, logits);   // free text: nothing is masked
            constraint.Accept(token);
            taken++;
            if (constraint.IsComplete)
                break;
        }

        // Complete at the first token holding ')', not before it and not at the second one.
        Assert.True(constraint.IsComplete);
        Assert.Contains(')', fixture.Model.Detokenize(tokens[(taken - 1)..taken]));
        Assert.DoesNotContain(')', fixture.Model.Detokenize(tokens[..(taken - 1)]));
        Assert.Equal("""{"a":3,"b":4}""", constraint.ArgumentsJson);

        // The paper's clean-up: '=' and '$' dropped, thousands commas, percentages; a wrong count does not parse.
        Assert.Equal("""{"a":1000,"b":2}""", PaperArgumentConstraints.ToJson("$1,000, 2=", ["a", "b"]));
        Assert.Equal("""{"a":0.5,"b":"x"}""", PaperArgumentConstraints.ToJson("50%, x", ["a", "b"]));
        Assert.Throws<FormatException>(() => PaperArgumentConstraints.ToJson("3", ["a", "b"]));

        // End of text before ')' is a failed call.
        var ended = PaperArgumentConstraints.Instance.Create(tool, fixture.Model);
        ended.Accept(fixture.Model.Tokenize("3", addBos: false)[^1]);
        ended.Accept(vocabulary.Eos);
        Assert.True(ended.IsComplete);
        Assert.Throws<FormatException>(() => ended.ArgumentsJson);
    }

    [Fact]
    public async Task In_paper_mode_argument_mode_writes_freely_after_the_demonstrations_and_a_call_that_does_not_close_backs_off()
    {
        var head = await fixture.DefaultHeadAsync();
        var tools = TestTools.Arithmetic().Select(t => new ToolDefinition(t.Name, t.ParametersSchema, t.Invoke) { ArgumentPrompt = DemoCorpus.ArgumentPrompt(t.Name) }).ToList();
        var request = new GenerationRequest { Prompt = Prompt, MaxTokens = 8 };

        var demonstrated = await fixture.Session.GenerateAsync(new ToolTokenStrategy(head, tools, ToolTokenOptions.Paper), request);
        var bare = await fixture.Session.GenerateAsync(new ToolTokenStrategy(head, TestTools.Arithmetic(), ToolTokenOptions.Paper), request);
        var silenced = await fixture.Session.GenerateAsync(new ToolTokenStrategy(head.WithBias(float.NegativeInfinity), tools), request);
        var calls = (List<ToolTokenCall>)demonstrated.Details!;
        var bareCalls = (List<ToolTokenCall>)bare.Details!;
        foreach (var c in calls.Concat(bareCalls))
            output.WriteLine($"{c.Tool}{c.Arguments}={c.Result} {c.Error}");

        // stories260K writes story text after 'add(' (nothing masked) and never a ')': the calls fail as unclosed, with
        // the text the model wrote, and the step backs off to its best vocabulary token, as the paper's code backtracks.
        Assert.NotEmpty(calls);
        Assert.All(calls, c => Assert.Contains($"did not close within {new ToolTokenOptions().MaxArgumentTokens} tokens: '{c.Tool}(", c.Error));
        Assert.Contains(calls, c => c.Error!.Any(char.IsLetter) && c.Error![(c.Error!.IndexOf('(', StringComparison.Ordinal) + 1)..].Any(char.IsLetter));
        Assert.Equal(silenced.Tokens[0], demonstrated.Tokens[0]);
        // What the model wrote depends on the demonstrations it read before the text.
        Assert.NotEqual(calls.Select(c => c.Error), bareCalls.Select(c => c.Error));
        await fixture.Session.RunAsync(s => { s.VerifyKvCache(); return true; });
    }

    [Fact]
    public async Task Demonstrations_from_the_head_file_are_used_when_the_tool_brings_none_and_the_tools_own_come_first()
    {
        var trained = await fixture.DefaultHeadAsync();
        var demonstrations = DemoCorpus.ToolNames.ToDictionary(t => t, t => DemoCorpus.ArgumentPrompt(t));
        var folder = Path.Combine(Path.GetTempPath(), $"toolkens-demos-{Guid.NewGuid():N}");
        var path = folder + ".json";
        try
        {
            ToolTokenDemonstrations.Write(folder, demonstrations);
            trained.WithArgumentPrompts(ToolTokenDemonstrations.Load(folder, DemoCorpus.ToolNames)).Save(path);
            var fromFile = ToolTokenHead.Load(path);
            Assert.All(fromFile.Tools, t => Assert.Equal(demonstrations[t.Name], t.ArgumentPrompt));

            var plain = TestTools.Arithmetic();
            var defined = plain.Select(t => new ToolDefinition(t.Name, t.ParametersSchema, t.Invoke) { ArgumentPrompt = demonstrations[t.Name] }).ToList();
            var other = plain.Select(t => new ToolDefinition(t.Name, t.ParametersSchema, t.Invoke) { ArgumentPrompt = DemoCorpus.ArgumentPrompt(t.Name, seed: 5) }).ToList();
            int compared = 0, changed = 0;
            foreach (var line in fixture.HeldOutLines.Where(l => l.Contains('<', StringComparison.Ordinal)).Take(12))
            {
                var request = new GenerationRequest { Prompt = line[..line.IndexOf('<', StringComparison.Ordinal)].TrimEnd(), MaxTokens = 3 };
                var byHead = await FirstCall(new ToolTokenStrategy(fromFile, plain), request);
                var byDefinition = await FirstCall(new ToolTokenStrategy(trained, defined), request);
                var none = await FirstCall(new ToolTokenStrategy(trained, plain), request);
                var definitionFirst = await FirstCall(new ToolTokenStrategy(fromFile, other), request);
                var otherAlone = await FirstCall(new ToolTokenStrategy(trained, other), request);
                var byOption = await FirstCall(new ToolTokenStrategy(trained, other, new ToolTokenOptions { ArgumentPrompts = demonstrations }), request);
                if (byHead is null)
                    continue;
                compared++;
                // The head file's demonstrations read exactly as the same text in the tool definition; a definition's own
                // demonstrations come before the head's, and the options' before both.
                Assert.Equal(byDefinition?.Arguments, byHead.Arguments);
                Assert.Equal(otherAlone?.Arguments, definitionFirst?.Arguments);
                Assert.Equal(byDefinition?.Arguments, byOption?.Arguments);
                if (none?.Arguments != byHead.Arguments)
                    changed++;
            }
            Assert.True(compared >= 8, $"{compared} calls");
            Assert.True(changed > 0, "the demonstrations never changed an argument, so the comparison could not fail");
        }
        finally
        {
            File.Delete(path);
            if (Directory.Exists(folder))
                Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task On_the_phrasings_written_by_hand_the_default_head_is_measured_against_its_prior_and_chance()
    {
        var examples = AnnotatedCorpus.Parse(DemoCorpus.Phrasings);
        var data = await fixture.DatasetAsync(examples, ToolTokenContext.DefaultWindow);
        var head = await fixture.DefaultHeadAsync();

        var figures = ToolTokenEvaluation.Evaluate(head, data);
        var chance = ToolTokenEvaluation.Chance(data);
        output.WriteLine($"phrasings: precision {figures.Precision:F3} recall {figures.Recall:F3} F1 {figures.F1:F3}; chance {chance.F1:F3}");

        Assert.Equal(75, examples.Count);
        Assert.Equal(60, data.CallPositions);
        Assert.Equal(0, data.SkippedCalls);
        // Not the issue's 0.7 (docs/benchmarks.md has the figures): far above chance, with the shapes of DemoTemplates left behind.
        Assert.True(figures.F1 > chance.F1 + 0.2, $"F1 {figures.F1} vs chance {chance.F1}");
    }

    // The sets written by hand that docs/benchmarks.md measures heads on (docs/data/tool-tokens/README.md).
    [Theory]
    [InlineData("blind.txt", 80, 64)]
    [InlineData("stories-a.txt", 150, 120)]
    [InlineData("stories-b.txt", 150, 120)]
    [InlineData("stories-c.txt", 150, 120)]
    [InlineData("stories-d.txt", 150, 120)]
    public async Task The_written_sets_are_corpora_whose_calls_compute_numbers_of_their_line_and_label_on_the_model(string file, int lines, int calls)
    {
        var examples = AnnotatedCorpus.Load(Path.Combine(TestModels.RepositoryRoot()!, "docs", "data", "tool-tokens", file));

        Assert.Equal(lines, examples.Count);
        var annotated = examples.SelectMany(e => e.Calls.Select(c => (e.Text, Call: c))).ToList();
        Assert.Equal(calls, annotated.Count);
        foreach (var (text, call) in annotated)
        {
            var operands = call.Arguments.Split(", ").Select(int.Parse).ToArray();
            var expected = call.Tool switch
            {
                "add" => operands[0] + operands[1],
                "subtract" => operands[0] - operands[1],
                "multiply" => operands[0] * operands[1],
                var other => throw new Xunit.Sdk.XunitException($"unknown tool {other}"),
            };
            Assert.Equal(expected.ToString(System.Globalization.CultureInfo.InvariantCulture), call.Result);
            var before = text[..call.Start];
            Assert.All(operands, o => Assert.Matches($@"\b{o}\b", before));
        }
        var data = await fixture.DatasetAsync(examples, ToolTokenContext.DefaultWindow);
        Assert.Equal(calls, data.CallPositions);
        Assert.Equal(0, data.SkippedCalls);
    }

    [Fact]
    public void A_demonstrations_folder_without_the_tools_files_is_a_clear_error()
    {
        var folder = Directory.CreateTempSubdirectory("toolkens-demos-").FullName;
        try
        {
            Assert.Contains("does not exist", Assert.Throws<AgentHostException>(() => ToolTokenDemonstrations.Load(Path.Combine(folder, "missing"), ["add"])).Message);
            Assert.Contains("no file for any", Assert.Throws<AgentHostException>(() => ToolTokenDemonstrations.Load(folder, ["add"])).Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private async Task<ToolTokenCall?> FirstCall(ToolTokenStrategy strategy, GenerationRequest request)
        => ((List<ToolTokenCall>)(await fixture.Session.GenerateAsync(strategy, request)).Details!).FirstOrDefault();

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
