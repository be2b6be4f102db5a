using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests.Support;
using Microsoft.Extensions.Logging;

namespace AgentHost.Llama.Tests;

/// <summary>
/// stories260K with enough sequences for 10 trials (the shared fixture has 4), a second session for
/// from-scratch re-decodes, and a recording logger. One thread: on this shared 2-core machine a second
/// OpenMP thread spin-waits against other processes and slows decoding by orders of magnitude.
/// </summary>
public sealed class CautiousFixture : IAsyncLifetime
{
    private readonly RecordingLoggerFactory _logs = new();

    public IReadOnlyList<(string Category, LogLevel Level, string Message)> LogEntries => _logs.Entries;

    public LlamaModel Model { get; private set; } = null!;

    public InferenceSession Session { get; private set; } = null!;

    public InferenceSession Reference { get; private set; } = null!;

    public static ModelSettings Settings => new() { ContextSize = 512, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 16 };

    public async Task InitializeAsync()
    {
        Model = LlamaModel.Load("stories260k", TestModels.Stories260K, Settings, _logs);
        Session = await Model.CreateSessionAsync();
        Reference = await Model.CreateSessionAsync();
    }

    public Task DisposeAsync()
    {
        Reference.Dispose();
        Session.Dispose();
        Model.Dispose();
        return Task.CompletedTask;
    }
}

[CollectionDefinition(Name)]
public sealed class CautiousCollection : ICollectionFixture<CautiousFixture>
{
    public const string Name = "cautious";
}

/// <summary>Cautious decoding (CNTP): the spec's "done" list, on the real stories260K model.</summary>
[Collection(CautiousCollection.Name)]
public sealed class CautiousDecodingTests(CautiousFixture fixture)
{
    private const string Prompt = "Once upon a time";

    // Largest difference allowed between the logits the strategy kept for the next token (or a probe decoded
    // on its cache) and the same logits from a one-batch prefill from scratch. Decodes of different batch
    // shapes accumulate differently, so bit equality is not expected: plain `sample`'s own cache differs
    // from such a prefill by up to 0.0083 on 100-token runs (seeds 1-4; logits range to about 20). A cache
    // that is one token off differs by far more (checked in AssertCacheHoldsPromptAndOutput).
    private const float LogitTolerance = 2e-2f;

    // Relative tolerance between a perplexity the strategy reports and one recomputed from scratch.
    private const double PerplexityTolerance = 1e-3;

    private LlamaModel Model => fixture.Model;

    private Task<GenerationResult> Generate(IDecodingStrategy strategy, GenerationRequest request)
        => fixture.Session.GenerateAsync(strategy, request);

    private static GenerationRequest Request(ulong seed, int maxTokens = 60, SamplingOptions? sampling = null, string prompt = Prompt, IReadOnlyList<string>? stop = null)
        => new()
        {
            Prompt = prompt,
            MaxTokens = maxTokens,
            Stop = stop ?? [],
            Sampling = (sampling ?? new SamplingOptions()) with { Seed = seed },
        };

    private static IReadOnlyList<CautiousStep> Steps(GenerationResult result)
        => Assert.IsAssignableFrom<IReadOnlyList<CautiousStep>>(result.Details);

    // ---- 1. Entropy ----

    [Fact]
    public void Entropy_is_measured_in_nats_on_the_processed_distribution()
    {
        var plain = new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, Seed = 1 };

        // Four equal logits: uniform, H = ln 4 (less 4 * 0.25 * 1e-10 / 0.25 from the eps).
        var uniform = new TokenSampler(plain, 4).Process([0f, 0f, 0f, 0f]);
        Assert.Equal(Math.Log(4), CautiousStrategy.Entropy(uniform), 8);

        // p = (1/2, 1/4, 1/4): H = 1.5 ln 2.
        var halves = new TokenSampler(plain, 3).Process([MathF.Log(2), 0f, 0f]);
        Assert.Equal(1.5 * Math.Log(2), CautiousStrategy.Entropy(halves), 6);

        // The same logits after temperature 2 are flatter: p = (sqrt 2, 1, 1) / (2 + sqrt 2).
        var hot = new TokenSampler(plain with { Temperature = 2 }, 3).Process([MathF.Log(2), 0f, 0f]);
        var z = 2 + Math.Sqrt(2);
        var expected = -(Math.Sqrt(2) / z * Math.Log(Math.Sqrt(2) / z) + 2 / z * Math.Log(1 / z));
        Assert.Equal(expected, CautiousStrategy.Entropy(hot), 6);

        // After top-k 1 only one candidate is left: H = -ln(1 + 1e-10), the spec's eps and no NaN from 0 ln 0.
        var topOne = new TokenSampler(plain with { TopK = 1 }, 3).Process([MathF.Log(2), 0f, 0f]);
        Assert.Equal(-Math.Log(1 + 1e-10), CautiousStrategy.Entropy(topOne), 15);
        TokenCandidate[] withZero = [new() { Id = 0, Probability = 1 }, new() { Id = 1, Probability = 0 }];
        Assert.Equal(-Math.Log(1 + 1e-10), CautiousStrategy.Entropy(withZero), 15);
    }

    // ---- 2. N(H) ----

    [Theory]
    [InlineData(0.1, 1, 1)]
    [InlineData(0.176, 2, 1)]
    [InlineData(0.31, 2, 2)]
    [InlineData(0.5, 3, 3)]
    [InlineData(0.75, 5, 4)]
    [InlineData(1.0, 6, 6)]
    [InlineData(1.25, 8, 8)]
    [InlineData(1.5, 10, 10)]
    [InlineData(4.0, 10, 10)]
    [InlineData(0.0, 1, 1)]
    [InlineData(0.01, 1, 1)]
    public void Trial_count_follows_the_spec_table_for_both_formulas(double entropy, int code, int paper)
    {
        Assert.Equal(code, CautiousStrategy.TrialCount(entropy, 10, 0.01, 1.5, TrialFormula.Code));
        Assert.Equal(paper, CautiousStrategy.TrialCount(entropy, 10, 0.01, 1.5, TrialFormula.Paper));
        Assert.Equal(1, CautiousStrategy.TrialCount(entropy, 1, 0.01, 1.5, TrialFormula.Code));
        Assert.Equal(1, CautiousStrategy.TrialCount(entropy, 1, 0.01, 1.5, TrialFormula.Paper));
    }

    [Fact]
    public void The_defaults_are_the_papers_and_the_code_formula()
    {
        var strategy = Assert.IsType<CautiousStrategy>(DecodingStrategies.Create("cautious"));
        Assert.Equal((10, 0.01, 1.5, TrialFormula.Code), (strategy.MaxTrials, strategy.EntropyLow, strategy.EntropyHigh, strategy.Formula));
        Assert.Equal((CautiousSampler.Paper, SamplerChain.HuggingFace), (strategy.Sampler, strategy.Chain));

        var options = new StrategyOptions(new Dictionary<string, string>
        {
            [CautiousStrategy.MaxTrialsKey] = "4",
            [CautiousStrategy.EntropyLowKey] = "0.2",
            [CautiousStrategy.EntropyHighKey] = "2.5",
            [CautiousStrategy.FormulaKey] = "paper",
            [CautiousStrategy.SamplerKey] = "llama",
        });
        var custom = Assert.IsType<CautiousStrategy>(DecodingStrategies.Create("cautious", options));
        Assert.Equal((4, 0.2, 2.5, TrialFormula.Paper), (custom.MaxTrials, custom.EntropyLow, custom.EntropyHigh, custom.Formula));
        Assert.Equal((CautiousSampler.Llama, SamplerChain.LlamaCpp), (custom.Sampler, custom.Chain));
    }

    [Fact]
    public void The_paper_sampler_swaps_llama_cpp_defaults_for_hugging_face_ones_and_keeps_other_values()
    {
        var paper = new CautiousStrategy();
        var mapped = paper.SamplingFor(null);
        Assert.Equal((0.8f, 50, 0.95f, 0f), (mapped.Temperature, mapped.TopK, mapped.TopP, mapped.MinP));   // the paper's scripts: T 0.8, top-p 0.95

        var chosen = new SamplingOptions { Temperature = 0.6f, TopK = 20, TopP = 0.9f, MinP = 0.1f, RepeatPenalty = 1.2f, Seed = 7 };
        Assert.Equal(chosen, paper.SamplingFor(chosen));
        Assert.Equal(new SamplingOptions { Seed = 3 } with { TopK = 50, MinP = 0 }, paper.SamplingFor(new SamplingOptions { Seed = 3 }));

        var llama = new CautiousStrategy(sampler: CautiousSampler.Llama);
        Assert.Equal(new SamplingOptions(), llama.SamplingFor(null));
        Assert.Same(chosen, llama.SamplingFor(chosen));
    }

    [Fact]
    public async Task The_entropy_of_a_step_is_measured_on_the_chosen_chain()
    {
        // An uncertain point: both chains branch at the first step, each with the entropy of its own distribution.
        const string prompt = "Once upon a time, there was a";
        var sampling = new SamplingOptions();
        var (paperEntropy, llamaEntropy) = await fixture.Reference.RunAsync(s =>
        {
            var logits = LastLogits(s, Model.Tokenize(prompt, addBos: true));
            var paper = new CautiousStrategy();
            var huggingFace = new TokenSampler(paper.SamplingFor(sampling), logits.Length, SamplerChain.HuggingFace).Process(logits);
            var llamaCpp = new TokenSampler(sampling, logits.Length).Process(logits);
            return (CautiousStrategy.Entropy(huggingFace), CautiousStrategy.Entropy(llamaCpp));
        });
        Assert.True(Math.Abs(paperEntropy - llamaEntropy) > 0.05, $"paper {paperEntropy}, llama {llamaEntropy}");

        foreach (var (strategy, expected) in new[] { (new CautiousStrategy(), paperEntropy), (new CautiousStrategy(sampler: CautiousSampler.Llama), llamaEntropy) })
        {
            var first = Steps(await Generate(strategy, Request(1, maxTokens: 4, sampling, prompt)))[0];
            Assert.Equal(0, first.Position);
            Assert.Equal(expected, first.Entropy, 4);
            Assert.Equal(CautiousStrategy.TrialCount(expected, 10, 0.01, 1.5, TrialFormula.Code), first.Trials);
        }
    }

    // ---- Options ----

    [Theory]
    [InlineData(CautiousStrategy.MaxTrialsKey, "0", "Option 'cautious_max_trials' must be a whole number from 1 to 255, not '0'.")]
    [InlineData(CautiousStrategy.MaxTrialsKey, "many", "Option 'cautious_max_trials' must be a whole number from 1 to 255, not 'many'.")]
    [InlineData(CautiousStrategy.MaxTrialsKey, "256", "Option 'cautious_max_trials' must be a whole number from 1 to 255, not '256'.")]
    [InlineData(CautiousStrategy.EntropyLowKey, "-0.5", "Option 'cautious_entropy_low' must be a number from 0 to")]
    [InlineData(CautiousStrategy.EntropyLowKey, "NaN", "Option 'cautious_entropy_low' must be a number from 0 to")]
    [InlineData(CautiousStrategy.EntropyLowKey, "2", "Option 'cautious_entropy_high' (1.5) must be greater than 'cautious_entropy_low' (2).")]
    [InlineData(CautiousStrategy.EntropyHighKey, "0.01", "Option 'cautious_entropy_high' (0.01) must be greater than 'cautious_entropy_low' (0.01).")]
    [InlineData(CautiousStrategy.FormulaKey, "beam", "Option 'cautious_formula' must be 'code' or 'paper', not 'beam'.")]
    [InlineData(CautiousStrategy.SamplerKey, "hf", "Option 'cautious_sampler' must be 'paper' or 'llama', not 'hf'.")]
    [InlineData(CautiousStrategy.PresetKey, "fast", "Option 'cautious_preset' must be 'default' or 'paper', not 'fast'.")]
    public void Bad_option_values_are_clear_errors(string key, string value, string expected)
    {
        var options = new StrategyOptions(new Dictionary<string, string> { [key] = value });
        var error = Assert.Throws<AgentHostException>(() => DecodingStrategies.Create("cautious", options));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.StartsWith(expected, error.Message);
    }

    [Fact]
    public void The_paper_preset_takes_the_official_codes_stop_rule_and_explicit_options_win()
    {
        static CautiousStrategy Create(params (string Key, string Value)[] values)
            => (CautiousStrategy)DecodingStrategies.Create("cautious", new StrategyOptions(values.Select(v => KeyValuePair.Create(v.Key, v.Value))));

        var paper = Create((CautiousStrategy.PresetKey, "paper"));
        Assert.Equal((StopRule.PaperCode, TrialFormula.Code, CautiousSampler.Paper, 10, 0.01, 1.5),
            (paper.StopRule, paper.Formula, paper.Sampler, paper.MaxTrials, paper.EntropyLow, paper.EntropyHigh));
        Assert.Equal(StopRule.RunningText, Create().StopRule);
        Assert.Equal(StopRule.RunningText, Create((CautiousStrategy.PresetKey, "paper"), (CautiousStrategy.StopRuleKey, "running-text")).StopRule);
    }

    [Fact]
    public async Task More_trials_than_the_model_has_sequences_is_a_clear_error_naming_both_numbers()
    {
        var error = await Assert.ThrowsAsync<AgentHostException>(() => Generate(new CautiousStrategy(maxTrials: 16), Request(1)));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Equal("Cautious decoding with 16 trials needs 17 sequences, but model stories260k has Sequences = 16; lower cautious_max_trials or raise Sequences.", error.Message);

        // 15 trials fit 16 sequences.
        var result = await Generate(new CautiousStrategy(maxTrials: 15), Request(1, maxTokens: 8));
        Assert.Equal(8, result.Tokens.Count);
    }

    // ---- 3. N_max = 1, or entropy always below the threshold: token-identical to sample ----

    public static TheoryData<ulong, float, float, string?> SampleCases => new()
    {
        { 1, 0.8f, 1.0f, null },
        { 2, 0.8f, 1.0f, null },
        { 3, 1.2f, 1.0f, null },
        { 4, 1.0f, 1.3f, null },      // with a repetition penalty
        { 5, 0.8f, 1.0f, "Lily" },    // with a stop string
    };

    [Theory]
    [MemberData(nameof(SampleCases))]
    public async Task With_one_trial_or_entropy_always_below_the_threshold_the_output_is_token_identical_to_sample(ulong seed, float temperature, float repeatPenalty, string? stop)
    {
        var sampling = new SamplingOptions { Temperature = temperature, RepeatPenalty = repeatPenalty };
        var request = Request(seed, maxTokens: 120, sampling, stop: stop is null ? null : [stop]);
        var sample = await Generate(new SamplingStrategy(), request);

        // sample's chain, pinned: the paper's (the default) draws from another distribution.
        foreach (var cautious in new[] { new CautiousStrategy(maxTrials: 1, sampler: CautiousSampler.Llama), new CautiousStrategy(maxTrials: 10, entropyLow: 50, entropyHigh: 100, sampler: CautiousSampler.Llama) })
        {
            var result = await Generate(cautious, request);
            Assert.Equal(sample.Tokens, result.Tokens);
            Assert.Equal(sample.Text, result.Text);
            Assert.Equal(sample.StopReason, result.StopReason);
            Assert.Equal(sample.Stats.Seed, result.Stats.Seed);
            Assert.Equal(sample.Stats.DecodeCalls, result.Stats.DecodeCalls);
            Assert.Equal(0, result.Stats.Extra["branching_steps"]);
            Assert.Empty(Steps(result));
        }

        // The comparison has teeth: with the defaults the same request branches.
        var branching = await Generate(new CautiousStrategy(sampler: CautiousSampler.Llama), request);
        Assert.True(branching.Stats.Extra["branching_steps"] > 0);
    }

    [Fact]
    public async Task With_the_defaults_the_output_differs_from_sample_for_some_seed()
    {
        var differs = 0;
        for (ulong seed = 1; seed <= 4; seed++)
        {
            var sample = await Generate(new SamplingStrategy(), Request(seed));
            var cautious = await Generate(new CautiousStrategy(), Request(seed));
            if (!sample.Tokens.SequenceEqual(cautious.Tokens))
                differs++;
        }
        Assert.True(differs > 0);
    }

    // ---- 4. A trial ends right after a stop id, EOG or its limit; the stop token is kept ----

    [Fact]
    public async Task Paper_code_stop_rule_keeps_the_first_token_of_each_character_and_rules_are_logged_once_per_model()
    {
        var ids = await fixture.Session.RunAsync(_ => CautiousStrategy.PunctuationIds(Model, StopRule.PaperCode));

        // Independently: llama.cpp's tokenizer, no BOS, no special parsing, first id of each character.
        var expected = CautiousStrategy.PunctuationCharacters
            .Select(c => (int)Model.Weights.NativeHandle.Tokenize(c, false, false, System.Text.Encoding.UTF8)[0])
            .Distinct().ToList();
        Assert.Equal(expected, ids);
        // stories260K is the spec's SentencePiece pitfall: every character tokenizes as [bare space, character],
        // so the code's one stop id is the bare-space piece.
        Assert.Equal([410], ids);
        Assert.Equal(" ", Model.Detokenize([410]));

        var paperCode = new CautiousStrategy(stopRule: StopRule.PaperCode);
        await Generate(paperCode, Request(1, maxTokens: 10));
        await Generate(paperCode, Request(2, maxTokens: 10));
        await Generate(new CautiousStrategy(), Request(3, maxTokens: 10));
        var logged = fixture.LogEntries.Where(e => e.Category == typeof(CautiousStrategy).FullName).Select(e => (e.Level, e.Message)).ToList();
        Assert.All(logged, e => Assert.Equal(LogLevel.Debug, e.Level));
        Assert.Single(logged, e => e.Message == "Cautious decoding on model stories260k: punctuation stop ids (paper-code) '.'=410 ','=410 '\\n'=410 '?'=410 '!'=410 ':'=410 ';'=410 ')'=410 ']'=410 '}'=410.");
        Assert.Single(logged, e => e.Message == "Cautious decoding on model stories260k: punctuation stop ids (running-text) '.'=426 ','=432 '\\n'=13 '?'=450 '!'=443 ':'=467 ';'=474 ')'=488 ']'=509 '}'=128.");
    }

    [Fact]
    public async Task Each_trial_ends_right_after_a_stop_id_or_its_limit_and_a_winning_stop_token_is_kept_in_text_and_perplexity()
    {
        var stopIds = await fixture.Session.RunAsync(_ => CautiousStrategy.PunctuationIds(Model));
        var strategy = new CautiousStrategy(sampler: CautiousSampler.Llama) { RecordTrials = true };   // the recompute below uses sample's chain
        var sampling = new SamplingOptions { Temperature = 1.0f };
        int endedOnStop = 0, endedAtLimit = 0, keptStops = 0, stopMatters = 0;
        for (ulong seed = 1; seed <= 8; seed++)
        {
            var request = Request(seed, maxTokens: 60, sampling);
            var result = await Generate(strategy, request);
            Assert.Equal(Model.Detokenize(result.Tokens.ToArray()), result.Text);
            foreach (var step in Steps(result))
            {
                Assert.Equal(step.Trials, step.TrialTokens!.Count);
                foreach (var trial in step.TrialTokens)
                {
                    Assert.InRange(trial.Length, 1, step.LengthLimit);
                    for (var k = 0; k < trial.Length - 1; k++)
                    {
                        Assert.DoesNotContain(trial[k], stopIds);
                        Assert.False(Model.Vocabulary.IsEndOfGeneration(trial[k]));
                    }
                    if (stopIds.Contains(trial[^1]))
                        endedOnStop++;
                    else
                        Assert.Equal(step.LengthLimit, trial.Length);   // no EOG from this model: the limit ended it
                    if (trial.Length == step.LengthLimit)
                        endedAtLimit++;
                }

                var winner = step.TrialTokens[step.Winner];
                if (!stopIds.Contains(winner[^1]) || step.Position + winner.Length > result.Tokens.Count)
                    continue;
                // The winner ended on a stop id and was kept whole: the stop token is in the tokens and the text...
                keptStops++;
                Assert.Equal<int>(winner, result.Tokens.Skip(step.Position).Take(winner.Length));
                var textBefore = Model.Detokenize(result.Tokens.Take(step.Position + winner.Length).ToArray());
                Assert.EndsWith(Model.Detokenize([winner[^1]]), textBefore);
                Assert.StartsWith(textBefore, result.Text);
                // ...and in the perplexity: a from-scratch recompute over every token, the stop token included.
                var prefix = Model.Tokenize(Prompt, addBos: true).Concat(result.Tokens.Take(step.Position)).ToArray();
                var recomputed = await fixture.Reference.RunAsync(s => Perplexity(s, request.Sampling!, prefix, winner));
                AssertClose(recomputed, step.WinnerPerplexity);
                if (winner.Length == 1)
                    continue;   // a one-token winner is the punctuation itself: no perplexity without it to compare
                var withoutStop = await fixture.Reference.RunAsync(s => Perplexity(s, request.Sampling!, prefix, winner[..^1]));
                // Short trials can have p(stop) close to the geometric mean of the rest (both ~1.07): count the winners
                // where leaving the stop token out makes a difference the recompute above would have seen.
                if (Math.Abs(step.WinnerPerplexity / withoutStop - 1) > 10 * PerplexityTolerance)
                    stopMatters++;
            }
        }
        Assert.True(endedOnStop > 0, "no trial ended on a stop id");
        Assert.True(endedAtLimit > 0, "no trial ended at its limit");
        Assert.True(keptStops > 0, "no winner ending on a stop id was kept whole");
        Assert.True(stopMatters > 0, "no winner's perplexity depended on its stop token");
    }

    [Fact]
    public async Task A_trial_ends_right_after_an_end_of_generation_token_and_a_winning_one_ends_generation()
    {
        // stories260K never samples EOS (it ends a story with BOS, which is not EOG); TinyStories-656K does.
        using var model = LlamaModel.Load("tinystories656k", TestModels.TinyStories656K, CautiousFixture.Settings);
        using var session = await model.CreateSessionAsync();
        // The code's stop rule (the bare space on this vocabulary) keeps trials long enough to reach EOG; with the
        // running-text rule they end at the "." before it.
        var strategy = new CautiousStrategy(stopRule: StopRule.PaperCode) { RecordTrials = true };
        int endedOnEog = 0, endedByWinner = 0;
        for (ulong seed = 1; seed <= 4; seed++)
        {
            var result = await session.GenerateAsync(strategy, Request(seed, maxTokens: 400));
            foreach (var step in Steps(result))
            {
                foreach (var trial in step.TrialTokens!)
                {
                    for (var k = 0; k < trial.Length - 1; k++)
                        Assert.False(model.Vocabulary.IsEndOfGeneration(trial[k]));
                    if (model.Vocabulary.IsEndOfGeneration(trial[^1]))
                        endedOnEog++;
                }
            }

            var last = Steps(result).LastOrDefault();
            if (result.StopReason != StopReason.EndOfGeneration || last is null || !model.Vocabulary.IsEndOfGeneration(last.TrialTokens![last.Winner][^1]))
                continue;
            endedByWinner++;
            var winner = last.TrialTokens[last.Winner];
            // The winner's tokens but the EOG are the output's last tokens; the cache holds prompt + output.
            Assert.Equal<int>(winner[..^1], result.Tokens.Skip(last.Position));
            var promptLength = result.Stats.PromptTokens;
            await session.RunAsync(s =>
            {
                s.VerifyKvCache();
                Assert.Equal(promptLength + result.Tokens.Count, s.GetPast(0));
                for (var i = 1; i < s.SequenceCount; i++)
                    Assert.Equal(0, s.GetPast(i));
                return true;
            });
        }
        Assert.True(endedOnEog > 0, "no trial ended on EOG");
        Assert.True(endedByWinner > 0, "no generation ended with a winning EOG trial");
    }

    // ---- 5. The winner: lowest perplexity, ties to the lowest index; exactly its tokens are appended ----

    [Fact]
    public void Select_winner_takes_the_lowest_perplexity_and_the_lowest_index_on_a_tie()
    {
        Assert.Equal(2, CautiousStrategy.SelectWinner([3.0, 2.0, 1.5, 4.0]));
        Assert.Equal(1, CautiousStrategy.SelectWinner([2.0, 1.5, 1.5, 3.0]));
        Assert.Equal(0, CautiousStrategy.SelectWinner([1.2, 1.2, 1.2]));
        Assert.Equal(0, CautiousStrategy.SelectWinner([7.0]));
    }

    [Fact]
    public async Task Trial_perplexities_match_a_from_scratch_recompute_with_per_trial_penalties_and_the_winner_is_appended()
    {
        // Penalties make each trial's distribution depend on its own tokens: a history shared between
        // trials would change the probabilities and fail the recompute.
        var sampling = new SamplingOptions { Temperature = 1.0f, RepeatPenalty = 1.5f, PresencePenalty = 0.5f };
        var strategy = new CautiousStrategy(sampler: CautiousSampler.Llama) { RecordTrials = true };   // the recompute uses sample's chain
        var prompt = Model.Tokenize(Prompt, addBos: true);
        var checkedTrials = 0;
        for (ulong seed = 1; seed <= 3; seed++)
        {
            var request = Request(seed, maxTokens: 40, sampling);
            var result = await Generate(strategy, request);
            foreach (var step in Steps(result))
            {
                var prefix = prompt.Concat(result.Tokens.Take(step.Position)).ToArray();
                for (var i = 0; i < step.Trials; i++)
                {
                    var trial = step.TrialTokens![i];
                    var recomputed = await fixture.Reference.RunAsync(s => Perplexity(s, request.Sampling!, prefix, trial));
                    // Trials now end at punctuation, often after 1-3 tokens, where batch-shape noise in the logits is not
                    // averaged away: |ln ppl - ln ppl'| <= 2 max|logit difference| (a shared penalty history moves logits by whole units).
                    var logRatio = Math.Abs(Math.Log(step.TrialPerplexities![i] / recomputed));
                    Assert.True(logRatio <= 2 * LogitTolerance, $"perplexity {step.TrialPerplexities[i]}, recomputed {recomputed} ({trial.Length} tokens)");
                    checkedTrials++;
                }
                Assert.Equal(CautiousStrategy.SelectWinner(step.TrialPerplexities!.ToArray()), step.Winner);
                Assert.Equal(step.TrialPerplexities![step.Winner], step.WinnerPerplexity);
                Assert.Equal(step.TrialTokens![step.Winner].Length, step.WinnerLength);
                var kept = Math.Min(step.WinnerLength, result.Tokens.Count - step.Position);
                Assert.Equal(step.TrialTokens[step.Winner].Take(kept), result.Tokens.Skip(step.Position).Take(kept));
            }
        }
        Assert.True(checkedTrials >= 5, $"only {checkedTrials} trials checked");
    }

    [Fact]
    public async Task Tied_trials_go_to_the_lowest_index()
    {
        // Two-token trials after an uncertain prompt: identical trials (duplicates are allowed) tie exactly.
        var strategy = new CautiousStrategy { RecordTrials = true };
        var ties = 0;
        for (ulong seed = 1; seed <= 6; seed++)
        {
            var result = await Generate(strategy, Request(seed, maxTokens: 2, prompt: "Once upon a time, there was a"));
            foreach (var step in Steps(result))
            {
                var perplexities = step.TrialPerplexities!;
                var best = perplexities.Min();
                var first = perplexities.ToList().IndexOf(best);
                Assert.Equal(first, step.Winner);
                if (perplexities.Count(p => p == best) > 1)
                {
                    ties++;
                    Assert.Equal(step.TrialTokens![first], result.Tokens.Skip(step.Position).Take(step.WinnerLength));
                }
            }
        }
        Assert.True(ties > 0, "no tie occurred");
    }

    // ---- 6. The KV cache after each branching step: prompt + accepted tokens in sequence 0, no trial left ----

    [Theory]
    [InlineData(1UL)]
    [InlineData(2UL)]
    [InlineData(3UL)]
    public async Task After_each_branching_step_the_cache_equals_a_from_scratch_decode_and_no_trial_sequence_remains(ulong seed)
    {
        var prompt = Model.Tokenize(Prompt, addBos: true);
        var checks = new List<(int Past, int Expected, int[] TrialPasts, float MaxDifference, bool SameArgMax)>();
        var strategy = new CautiousStrategy
        {
            OnBranchingStep = (session, accepted, step, next) =>
            {
                session.VerifyKvCache();
                var trialPasts = Enumerable.Range(1, session.SequenceCount - 1).Select(session.GetPast).ToArray();
                if (next.IsEmpty)
                {
                    checks.Add((session.GetPast(0), prompt.Length + accepted.Count, trialPasts, 0, true));
                    return;
                }
                var fresh = LastLogits(fixture.Reference, prompt.Concat(accepted).ToArray());
                checks.Add((session.GetPast(0), prompt.Length + accepted.Count, trialPasts, MaxDifference(next, fresh),
                    TokenSampler.ArgMax(next) == TokenSampler.ArgMax(fresh)));
            },
        };
        var result = await Generate(strategy, Request(seed, maxTokens: 100));

        Assert.NotEmpty(checks);
        Assert.Equal(Steps(result).Count, checks.Count);
        foreach (var check in checks)
        {
            Assert.True(check.Past <= check.Expected && check.Past >= check.Expected - 1, $"past {check.Past}, expected {check.Expected}");
            Assert.All(check.TrialPasts, p => Assert.Equal(0, p));
            Assert.True(check.MaxDifference <= LogitTolerance, $"logits differ by {check.MaxDifference}");
            Assert.True(check.SameArgMax);
        }
        // Every step but a stopping one leaves exactly prompt + accepted tokens in sequence 0.
        Assert.All(checks.Take(checks.Count - 1), c => Assert.Equal(c.Expected, c.Past));

        await AssertCacheHoldsPromptAndOutput(prompt, result);
    }

    // ---- Stops through the common output: stop strings, max tokens ----

    [Fact]
    public async Task A_stop_string_inside_a_winning_trial_stops_exactly_there_and_the_cache_is_cut_back()
    {
        var prompt = Model.Tokenize(Prompt, addBos: true);
        var reference = await Generate(new CautiousStrategy(), Request(2, maxTokens: 80));
        var pieces = reference.Tokens.Select(t => Model.Detokenize([t])).ToArray();
        var offsets = new int[pieces.Length + 1];
        for (var i = 0; i < pieces.Length; i++)
            offsets[i + 1] = offsets[i] + pieces[i].Length;

        // A stop string made of two tokens in the middle of a winner, found nowhere earlier in the text.
        var (stop, completing) = (string.Empty, -1);
        foreach (var step in Steps(reference))
        {
            for (var j = step.Position + 1; j + 2 < step.Position + step.WinnerLength && j + 1 < pieces.Length; j++)
            {
                var candidate = reference.Text[offsets[j]..offsets[j + 2]];
                if (candidate.Trim().Length >= 3 && reference.Text.IndexOf(candidate, StringComparison.Ordinal) == offsets[j])
                {
                    (stop, completing) = (candidate, j + 1);
                    break;
                }
            }
            if (completing >= 0)
                break;
        }
        Assert.True(completing >= 0, "no stop string found inside a winner");

        var stopped = await Generate(new CautiousStrategy(), Request(2, maxTokens: 80, stop: [stop]));
        Assert.Equal(StopReason.StopString, stopped.StopReason);
        Assert.Equal(reference.Text[..offsets[completing - 1]], stopped.Text);
        Assert.Equal(reference.Tokens.Take(completing + 1), stopped.Tokens);
        var last = Steps(stopped)[^1];
        // Trials stop at the request's stop strings too: the winner ended on the token that completed it.
        Assert.Equal(stopped.Tokens.Count, last.Position + last.WinnerLength);

        var past = await fixture.Session.RunAsync(s =>
        {
            s.VerifyKvCache();
            Assert.All(Enumerable.Range(1, s.SequenceCount - 1), i => Assert.Equal(0, s.GetPast(i)));
            return s.GetPast(0);
        });
        Assert.Equal(prompt.Length + stopped.Tokens.Count, past);
        await AssertCacheHoldsPromptAndOutput(prompt, stopped);
    }

    [Fact]
    public async Task Max_tokens_stops_exactly_and_bounds_every_trial()
    {
        var prompt = Model.Tokenize(Prompt, addBos: true);
        var strategy = new CautiousStrategy { RecordTrials = true };
        foreach (var maxTokens in new[] { 1, 7, 37 })
        {
            var result = await Generate(strategy, Request(3, maxTokens, new SamplingOptions { Temperature = 1.2f }));
            Assert.Equal(maxTokens, result.Tokens.Count);
            Assert.Equal(StopReason.MaxTokens, result.StopReason);
            foreach (var step in Steps(result))
            {
                Assert.True(step.LengthLimit <= maxTokens - step.Position);
                Assert.All(step.TrialTokens!, t => Assert.InRange(t.Length, 1, step.LengthLimit));
            }
            await AssertCacheHoldsPromptAndOutput(prompt, result);
        }
    }

    // ---- 7. Forced high entropy gives N = N_max; a confident model stays at 1 ----

    [Theory]
    [InlineData(10)]
    [InlineData(4)]
    public async Task Temperature_5_forces_the_most_trials_at_every_step(int maxTrials)
    {
        var sampling = new SamplingOptions { Temperature = 5, TopP = 1, MinP = 0 };
        var result = await Generate(new CautiousStrategy(maxTrials), Request(1, maxTokens: 30, sampling));

        var steps = Steps(result);
        Assert.NotEmpty(steps);
        Assert.All(steps, s => Assert.True(s.Entropy >= 1.5, $"entropy {s.Entropy}"));
        Assert.All(steps, s => Assert.Equal(maxTrials, s.Trials));
        // Every token came from a branching step: nothing was sampled plainly.
        Assert.Equal(result.Stats.Extra["sequential_decode_calls"], result.Stats.Extra["tokens_sampled"]);
        Assert.Equal(maxTrials * steps.Count, result.Stats.Extra["trials"]);
    }

    [Fact]
    public async Task A_confident_model_stays_at_one_trial()
    {
        // After "Once upon a time" the model is sure of ",": the default chain leaves one trial.
        var entropy = await fixture.Reference.RunAsync(s =>
        {
            var logits = LastLogits(s, Model.Tokenize(Prompt, addBos: true));
            return CautiousStrategy.Entropy(new TokenSampler(new SamplingOptions { Seed = 1 }, logits.Length).Process(logits));
        });
        Assert.True(entropy < 0.01, $"entropy {entropy}");
        Assert.Equal(1, CautiousStrategy.TrialCount(entropy, 10, 0.01, 1.5, TrialFormula.Code));

        // Top-k 1 makes every processed distribution certain (the raw logits are not): no step branches,
        // and the text is greedy's.
        var greedy = await Generate(new GreedyStrategy(), Request(1, maxTokens: 60));
        var certain = await Generate(new CautiousStrategy(), Request(1, maxTokens: 60, new SamplingOptions { TopK = 1 }));
        Assert.Empty(Steps(certain));
        Assert.Equal(0, certain.Stats.Extra["branching_steps"]);
        Assert.Equal(60, certain.Stats.Extra["tokens_sampled"]);
        Assert.Equal(greedy.Tokens, certain.Tokens);
    }

    // ---- 8. Statistics ----

    [Fact]
    public async Task Statistics_report_every_step_and_the_totals()
    {
        var result = await Generate(new CautiousStrategy { RecordTrials = true }, Request(1, maxTokens: 128));
        var steps = Steps(result);
        var extra = result.Stats.Extra;
        Assert.Equal(["branching_steps", "trials", "tokens_sampled", "tokens_kept", "trial_decode_calls", "sequential_decode_calls"], extra.Keys);

        Assert.NotEmpty(steps);
        Assert.Equal(steps.Count, extra["branching_steps"]);
        Assert.Equal(steps.Sum(s => s.Trials), extra["trials"]);
        var trialTokens = steps.Sum(s => s.TrialTokens!.Sum(t => t.Length));
        Assert.Equal(trialTokens, extra["sequential_decode_calls"]);
        var plainSteps = (int)extra["tokens_sampled"] - trialTokens;
        Assert.True(plainSteps >= 0);
        Assert.Equal(result.Tokens.Count, extra["tokens_kept"]);   // no EOG from this model: every kept token is output
        Assert.True(extra["tokens_sampled"] > extra["tokens_kept"]);
        foreach (var step in steps)
        {
            Assert.Equal(CautiousStrategy.TrialCount(step.Entropy, 10, 0.01, 1.5, TrialFormula.Code), step.Trials);
            Assert.InRange(step.Winner, 0, step.Trials - 1);
            Assert.True(step.WinnerPerplexity >= 1);
        }

        // Decode calls: the prefill, one per plain token that did not end the generation, one per trial round.
        var endedInBranch = steps[^1].Position + steps[^1].WinnerLength >= result.Tokens.Count;
        Assert.Equal(1 + plainSteps - (endedInBranch ? 0 : 1) + (int)extra["trial_decode_calls"], result.Stats.DecodeCalls);
        // A round decodes every live trial at once: at most the longest trial per step, never more than sequentially.
        Assert.True(extra["trial_decode_calls"] <= steps.Sum(s => s.TrialTokens!.Max(t => t.Length)));
        Assert.True(extra["trial_decode_calls"] < extra["sequential_decode_calls"]);
    }

    // ---- helpers ----

    // Checks sequence 0 of the main session against a from-scratch decode: a probe token decoded on its cache
    // must give the logits the same tokens give from scratch. Sequence 0 holds prompt + output, or all but the
    // last output token when that one ended generation before being decoded.
    private async Task AssertCacheHoldsPromptAndOutput(int[] prompt, GenerationResult result)
    {
        var all = prompt.Concat(result.Tokens).ToArray();
        var (past, cached, fresh, oneShort) = await fixture.Session.RunAsync(s =>
        {
            s.VerifyKvCache();
            for (var i = 1; i < s.SequenceCount; i++)
                Assert.Equal(0, s.GetPast(i));
            var past = s.GetPast(0);
            var probe = past < all.Length ? all[past] : 410;
            s.ClearBatch();
            var index = s.AddToBatch(probe, past, 0, logits: true);
            s.Decode();
            var cached = s.GetLogits(index).ToArray();
            var fresh = LastLogits(fixture.Reference, [.. all[..past], probe]);
            var oneShort = LastLogits(fixture.Reference, [.. all[..(past - 1)], probe]);
            return (past, cached, fresh, oneShort);
        });
        Assert.InRange(past, all.Length - 1, all.Length);
        Assert.True(MaxDifference(cached, fresh) <= LogitTolerance, $"logits differ by {MaxDifference(cached, fresh)}");
        Assert.Equal(TokenSampler.ArgMax(fresh), TokenSampler.ArgMax(cached));
        // The tolerance tells caches apart: the same probe after one token less is far outside it.
        Assert.True(MaxDifference(cached, oneShort) > 10 * LogitTolerance, $"a cache one token short differs by only {MaxDifference(cached, oneShort)}");
    }

    // Logits after the last of `tokens`, decoded from scratch. Runs on the model's scheduler thread.
    private static float[] LastLogits(InferenceSession session, int[] tokens)
    {
        session.Reset();
        var index = session.Prefill(tokens, 0);
        return session.GetLogits(index).ToArray();
    }

    // Perplexity of `continuation` after `prefix`, from a from-scratch decode and a fresh sampler whose penalty
    // history is `prefix` plus the continuation so far: what the strategy's trial must have computed.
    private static double Perplexity(InferenceSession session, SamplingOptions options, int[] prefix, int[] continuation)
    {
        session.Reset();
        var logits = new float[continuation.Length][];
        logits[0] = session.GetLogits(session.Prefill(prefix, 0)).ToArray();
        if (continuation.Length > 1)
        {
            session.ClearBatch();
            var indices = new int[continuation.Length - 1];
            for (var j = 0; j < indices.Length; j++)
                indices[j] = session.AddToBatch(continuation[j], prefix.Length + j, 0, logits: true);
            session.Decode();
            for (var j = 0; j < indices.Length; j++)
                logits[j + 1] = session.GetLogits(indices[j]).ToArray();
        }

        var sampler = new TokenSampler(options, logits[0].Length);
        foreach (var token in prefix)
            sampler.Accept(token);
        var logProbability = 0.0;
        for (var k = 0; k < continuation.Length; k++)
        {
            var candidates = sampler.Process(logits[k]).ToArray();
            var p = Assert.Single(candidates, c => c.Id == continuation[k]).Probability;
            logProbability += Math.Log(p);
            sampler.Accept(continuation[k]);
        }
        return Math.Exp(-logProbability / continuation.Length);
    }

    private static void AssertClose(double expected, double actual)
        => Assert.True(Math.Abs(actual / expected - 1) <= PerplexityTolerance, $"perplexity {actual}, recomputed {expected}");

    private static float MaxDifference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        var max = 0f;
        for (var i = 0; i < a.Length; i++)
            max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }
}
