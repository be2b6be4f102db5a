using AgentHost.Llama.Analysis;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests.Support;

namespace AgentHost.Llama.Tests.Analysis;

/// <summary>stories260K and a copy with perturbed output weights (same tokenizer), written to a temp folder.</summary>
public sealed class ContrastFixture : IAsyncLifetime
{
    private readonly TempFolder _folder = new();

    internal TempFolder Folder => _folder;

    public LlamaModel Model { get; private set; } = null!;

    public LlamaModel Perturbed { get; private set; } = null!;

    public static ModelSettings Settings => new() { ContextSize = 256, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 1, BatchSize = 256 };

    public Task InitializeAsync()
    {
        var path = _folder.Combine("stories260K-perturbed.gguf");
        PerturbedModel.Write(TestModels.Stories260K, path);
        Model = LlamaModel.Load("stories260k", TestModels.Stories260K, Settings);
        Perturbed = LlamaModel.Load("perturbed", path, Settings);
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        Perturbed.Dispose();
        Model.Dispose();
        _folder.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>Contrastive scoring: the formula, pos == neg, beta, and vocabulary checks, on real models.</summary>
public sealed class AnalysisContrastTests(ContrastFixture fixture) : IClassFixture<ContrastFixture>
{
    private const string Prompt = "Once upon a time";
    private const string Response = ", there was a big dog named Max. He liked to run.";

    [Theory]
    [InlineData(1.0)]
    [InlineData(3.0)]
    public async Task Same_model_on_both_sides_gives_the_plain_token_probabilities(double beta)
    {
        var report = await ContrastiveScorer.ScoreAsync(fixture.Model, fixture.Model, new ContrastiveRequest { Prompt = Prompt, Response = Response, Beta = beta });

        var (prompt, response, rows) = await Rows(fixture.Model, report);
        Assert.Equal(report.PromptTokens, prompt);
        Assert.Equal(response.Length, report.Tokens.Count);
        Assert.Equal(Response, report.ResponseText);
        for (var t = 0; t < response.Length; t++)
        {
            var probability = Softmax(rows[t], 1, rows[t], 0)[response[t]];
            Assert.Equal(probability, report.Tokens[t].Score, 6);
            Assert.Equal(Math.Log(probability), report.Tokens[t].LogProbPositive, 5);
            Assert.Equal(report.Tokens[t].LogProbPositive, report.Tokens[t].LogProbNegative, 9);
        }
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.5)]
    [InlineData(2.0)]
    public async Task Scores_follow_the_formula_for_each_beta(double beta)
    {
        var report = await ContrastiveScorer.ScoreAsync(fixture.Model, fixture.Perturbed, new ContrastiveRequest { Prompt = Prompt, Response = Response, Beta = beta });

        var (_, response, positive) = await Rows(fixture.Model, report);
        var (_, _, negative) = await Rows(fixture.Perturbed, report);
        Assert.Equal(beta, report.Beta);
        var differs = 0;
        for (var t = 0; t < response.Length; t++)
        {
            var expected = Softmax(positive[t], 1 + beta, negative[t], beta)[response[t]];
            Assert.Equal(expected, report.Tokens[t].Score, 6);
            var plain = Softmax(positive[t], 1, positive[t], 0)[response[t]];
            if (beta == 0)
                Assert.Equal(plain, report.Tokens[t].Score, 6);
            else if (Math.Abs(plain - report.Tokens[t].Score) > 1e-3)
                differs++;
        }
        // The perturbation matters: with beta > 0 most scores move away from the plain probabilities.
        if (beta > 0)
            Assert.True(differs > response.Length / 2, $"only {differs} of {response.Length} scores differ");
        Assert.Equal(report.Tokens.Select(t => t.Score).Min(), report.Tokens[report.LowestIndex].Score);
        Assert.Equal(report.Tokens.Average(t => t.Score), report.MeanScore, 12);
    }

    [Fact]
    public async Task A_cdpo_record_weights_the_chosen_tokens_by_s_and_the_rejected_ones_by_one_minus_s()
    {
        var pair = new CdpoPair(Prompt, Response, ", there was a big cat.");
        var record = await CdpoRecord.ScoreAsync(new ContrastiveSide(fixture.Model), new ContrastiveSide(fixture.Perturbed), pair, beta: 0.5, onlyNeg: false);
        var onlyNeg = await CdpoRecord.ScoreAsync(new ContrastiveSide(fixture.Model), new ContrastiveSide(fixture.Perturbed), pair, beta: 0.5);

        var chosen = await ContrastiveScorer.ScoreAsync(fixture.Model, fixture.Perturbed, new ContrastiveRequest { Prompt = Prompt, Response = pair.Chosen, Beta = 0.5 });
        var rejected = await ContrastiveScorer.ScoreAsync(fixture.Model, fixture.Perturbed, new ContrastiveRequest { Prompt = Prompt, Response = pair.Rejected, Beta = 0.5 });
        Assert.Equal((pair.Prompt, pair.Chosen, pair.Rejected, 0.5), (record.Prompt, record.Chosen, record.Rejected, record.Beta));
        Assert.Equal(("stories260k", "perturbed"), (record.PositiveModel, record.NegativeModel));
        Assert.Equal(chosen.Tokens.Select(t => t.Token), record.ChosenTokenIds);
        Assert.Equal(chosen.Tokens.Select(t => t.Text), record.ChosenTokens);
        Assert.Equal(rejected.Tokens.Select(t => t.Token), record.RejectedTokenIds);
        Assert.Equal(pair.Rejected, fixture.Model.Detokenize(record.RejectedTokenIds));
        // The record scores prompt + response in one pass (the paper's ce_prob); its response scores agree with scoring
        // the response alone up to the last bits of a differently batched decode.
        for (var t = 0; t < chosen.Tokens.Count; t++)
        {
            Assert.Equal(chosen.Tokens[t].Score, record.ChosenWeights[t], 6);
            Assert.Equal(chosen.Tokens[t].Score, record.ChosenScores[t], 6);
            Assert.Equal(1.0, onlyNeg.ChosenWeights[t]);   // only_neg, the paper's config: chosen tokens unweighted
        }
        for (var t = 0; t < rejected.Tokens.Count; t++)
        {
            Assert.Equal(1 - rejected.Tokens[t].Score, record.RejectedWeights[t], 6);
            Assert.Equal(record.RejectedWeights[t], onlyNeg.RejectedWeights[t]);
        }
        Assert.Equal((false, true), (record.OnlyNeg, onlyNeg.OnlyNeg));
        // ce_prob covers every token after the first of prompt + response; its tail is the response's scores.
        var full = fixture.Model.Tokenize(pair.Prompt + pair.Rejected, fixture.Model.Vocabulary.AddBos);
        Assert.Equal(full.Length - 1, record.NegativeProbs.CeProb.Length);
        Assert.Equal(record.RejectedScores, record.NegativeProbs.CeProb[^record.RejectedScores.Length..]);
        Assert.Equal(pair.Rejected, record.NegativeProbs.Text);
    }

    [Fact]
    public async Task Models_with_different_vocabularies_are_refused()
    {
        using var other = LlamaModel.Load("tinystories656k", TestModels.TinyStories656K, ContrastFixture.Settings);

        var error = await Assert.ThrowsAsync<AgentHostException>(() =>
            ContrastiveScorer.ScoreAsync(fixture.Model, other, new ContrastiveRequest { Prompt = Prompt, Response = Response }));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Equal("Models stories260k and tinystories656k have different vocabularies (512 tokens against 2048); contrastive scoring needs two models that share one vocabulary.", error.Message);
        ContrastiveScorer.EnsureSameVocabulary(fixture.Model, fixture.Perturbed);
    }

    [Fact]
    public async Task Bad_input_is_one_clear_error()
    {
        var beta = await Assert.ThrowsAsync<AgentHostException>(() =>
            ContrastiveScorer.ScoreAsync(fixture.Model, fixture.Model, new ContrastiveRequest { Prompt = Prompt, Response = Response, Beta = -1 }));
        Assert.Equal("beta must be 0 or more, not -1.", beta.Message);
        var empty = await Assert.ThrowsAsync<AgentHostException>(() =>
            ContrastiveScorer.ScoreAsync(fixture.Model, fixture.Model, new ContrastiveRequest { Prompt = Prompt, Response = "" }));
        Assert.Equal("The response to analyse is empty.", empty.Message);
        var tooLong = await Assert.ThrowsAsync<AgentHostException>(() =>
            ContrastiveScorer.ScoreAsync(fixture.Model, fixture.Model, new ContrastiveRequest { Prompt = Prompt, Response = string.Concat(Enumerable.Repeat(Response, 30)) }));
        Assert.Equal(ErrorKind.ContextOverflow, tooLong.Kind);
    }

    [Fact]
    public async Task Two_lora_adapters_on_one_base_model_are_the_two_sides()
    {
        // Adapters on output.weight (ne = [64, 512]): one that adds nothing, and two different ones.
        var zero = fixture.Folder.Combine("zero.gguf");
        var good = fixture.Folder.Combine("good.gguf");
        var bad = fixture.Folder.Combine("bad.gguf");
        LoraFile.Write(zero, "llama", "output.weight", 64, 512, rank: 4, scale: 0, seed: 1);
        LoraFile.Write(good, "llama", "output.weight", 64, 512, rank: 4, scale: 0.7f, seed: 2);
        LoraFile.Write(bad, "llama", "output.weight", 64, 512, rank: 4, scale: 0.7f, seed: 3);
        var request = new ContrastiveRequest { Prompt = Prompt, Response = Response, Beta = 1 };

        // An adapter that adds nothing against the bare model: plain probabilities.
        var neutral = await ContrastiveScorer.ScoreAsync(new ContrastiveSide(fixture.Model, zero), new ContrastiveSide(fixture.Model), request);
        var (_, response, plainRows) = await Rows(fixture.Model, neutral);
        for (var t = 0; t < response.Length; t++)
            Assert.Equal(Softmax(plainRows[t], 1, plainRows[t], 0)[response[t]], neutral.Tokens[t].Score, 6);

        var report = await ContrastiveScorer.ScoreAsync(new ContrastiveSide(fixture.Model, good), new ContrastiveSide(fixture.Model, bad), request);

        Assert.Equal("stories260k+good.gguf", report.PositiveModel);
        Assert.Equal("stories260k+bad.gguf", report.NegativeModel);
        var (_, _, positive) = await Rows(fixture.Model, report, fixture.Model.LoadLoraAdapter(good));
        var (_, _, negative) = await Rows(fixture.Model, report, fixture.Model.LoadLoraAdapter(bad));
        var moved = 0;
        for (var t = 0; t < response.Length; t++)
        {
            Assert.Equal(Softmax(positive[t], 2, negative[t], 1)[response[t]], report.Tokens[t].Score, 6);
            if (Math.Abs(positive[t][response[t]] - plainRows[t][response[t]]) > 1e-3)
                moved++;
        }
        Assert.True(moved > response.Length / 2, $"the adapter moved only {moved} of {response.Length} logits");
    }

    [Fact]
    public async Task A_file_that_is_not_a_lora_adapter_is_refused()
    {
        var error = await Assert.ThrowsAsync<AgentHostException>(() => ContrastiveScorer.ScoreAsync(
            new ContrastiveSide(fixture.Model, TestModels.Stories260K), new ContrastiveSide(fixture.Model), new ContrastiveRequest { Prompt = Prompt, Response = Response }));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Contains("is not a LoRA adapter for model stories260k: it lacks general.type 'adapter'", error.Message, StringComparison.Ordinal);

        var wrongShape = fixture.Folder.Combine("wrong-shape.gguf");
        LoraFile.Write(wrongShape, "llama", "output.weight", 32, 512, rank: 4, scale: 1, seed: 1);
        var shape = Assert.Throws<AgentHostException>(() => fixture.Model.LoadLoraAdapter(wrongShape));
        Assert.Equal(ErrorKind.InvalidModelFile, shape.Kind);
        Assert.Contains("the shapes of 'output.weight.lora_a' [32, 4] and '.lora_b' [4, 512] do not fit the model's [64, 512]", shape.Message, StringComparison.Ordinal);
    }

    // The logit rows that predict each response token, from one independent batch decode (same batch shape as the scorer's single chunk).
    private static async Task<(int[] Prompt, int[] Response, float[][] Rows)> Rows(LlamaModel model, ContrastiveReport report, LLama.Native.LoraAdapter? adapter = null)
    {
        using var session = await model.CreateSessionAsync();
        if (adapter is not null)
            await session.RunAsync(s => { s.SetLoraAdapters([(adapter, 1.0f)]); return true; });
        var prompt = report.PromptTokens;
        var response = report.Tokens.Select(t => t.Token).ToArray();
        int[] all = [.. prompt, .. response];
        Assert.True(response.Length <= 64, "keep the response within one scorer chunk");
        var rows = await session.RunAsync(s =>
        {
            s.Reset();
            s.ClearBatch();
            for (var i = 0; i < all.Length - 1; i++)
                s.AddToBatch(all[i], i, 0, logits: i >= prompt.Length - 1);
            s.Decode();
            return Enumerable.Range(0, response.Length).Select(t => s.GetLogits(prompt.Length - 1 + t).ToArray()).ToArray();
        });
        return (prompt, response, rows);
    }

    // softmax(a * x - b * y), in double precision, written out plainly.
    private static double[] Softmax(float[] x, double a, float[] y, double b)
    {
        var z = x.Select((v, i) => a * v - b * y[i]).ToArray();
        var max = z.Max();
        var exp = z.Select(v => Math.Exp(v - max)).ToArray();
        var sum = exp.Sum();
        return exp.Select(v => v / sum).ToArray();
    }
}
