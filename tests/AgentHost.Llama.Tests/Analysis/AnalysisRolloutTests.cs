using AgentHost.Llama.Analysis;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Tests.Support;

namespace AgentHost.Llama.Tests.Analysis;

/// <summary>The rollout finder on the real stories260K model (4 sequences: 3 rollouts per round).</summary>
[Collection(Stories260KCollection.Name)]
public sealed class AnalysisRolloutTests(Stories260KFixture fixture)
{
    private const string Prompt = "Once upon a time";

    // stories260K's greedy continuation of the prompt.
    private const string Greedy = ", there was a little girl named Lily. She loved to play outside in the park.";

    private static readonly ITrajectoryVerifier _never = TrajectoryVerifiers.Create("never", (_, _) => false);

    [Fact]
    public async Task Alternatives_never_contain_the_original_token_even_where_it_is_likely()
    {
        // Every prefix fails, so the first token (",", very likely after the prompt) is critical.
        var request = new RolloutRequest
        {
            Prompt = Prompt,
            Trajectory = Greedy,
            Verifier = _never,
            Options = new RolloutOptions { Rollouts = 24, Stride = 8, MaxTokens = 2, Seed = 11 },
        };

        var report = await RolloutAnalyzer.AnalyzeAsync(fixture.Session, request);

        var critical = Assert.IsType<CriticalToken>(report.Critical);
        Assert.Equal(8, critical.Length);   // the first analysed prefix: nothing ever recovers
        var alternatives = Assert.IsType<CriticalAlternatives>(report.Alternatives);
        Assert.Equal(report.TrajectoryTokens[7], alternatives.Excluded);
        Assert.Equal(24, alternatives.Completions.Count);
        // An empty completion drew an end-of-generation token first (never a trajectory token).
        Assert.All(alternatives.Completions, c => Assert.NotEqual(alternatives.Excluded, c.Tokens.FirstOrDefault(-1)));

        // The original token is likely there: the plain rollouts from the prefix before it would mostly pick it.
        // (Two trajectory tokens: prefixes run from 1 to T - 1.)
        var atFirstToken = await RolloutAnalyzer.AnalyzeAsync(fixture.Session, request with
        {
            Options = new RolloutOptions { Rollouts = 24, Stride = 1, MaxTokens = 1, Seed = 11 },
            TrajectoryTokens = report.TrajectoryTokens[..2],
        });
        var comma = atFirstToken.TrajectoryTokens[0];
        Assert.Equal(1, atFirstToken.Critical!.Length);
        Assert.All(atFirstToken.Alternatives!.Completions, c => Assert.NotEqual(comma, c.Tokens.FirstOrDefault(-1)));
        // p(comma | prompt) > 0.5: without the exclusion, 24 draws would all miss it with probability below 1e-7.
        var probability = await ContrastiveScorer.ScoreAsync(fixture.Model, fixture.Model, new ContrastiveRequest { Prompt = Prompt, ResponseTokens = [comma] });
        Assert.True(probability.Tokens[0].Score > 0.5, $"p(comma) = {probability.Tokens[0].Score}");
    }

    [Fact]
    public async Task Report_numbers_agree_with_a_recount_of_the_rollouts_it_lists()
    {
        var request = new RolloutRequest
        {
            Prompt = Prompt,
            Trajectory = Greedy,
            Verifier = TrajectoryVerifiers.Parse("contains:dog"),
            Options = new RolloutOptions { Rollouts = 6, Stride = 4, MaxTokens = 24, Seed = 5 },
        };

        var report = await RolloutAnalyzer.AnalyzeAsync(fixture.Session, request);

        var model = fixture.Model;
        Assert.Equal(Greedy, report.TrajectoryText);
        Assert.Equal((report.TrajectoryTokens.Length - 1) / 4, report.Prefixes.Count);   // prefixes 1 .. T - 1
        Assert.Equal(3, report.Settings.ParallelSequences);
        Assert.Equal(0, report.Settings.RecoverThreshold);   // floor(3 * 6 / 64)
        Assert.False(report.TrajectoryPasses);
        var recount = new int[report.Prefixes.Count];
        for (var p = 0; p < report.Prefixes.Count; p++)
        {
            var prefix = report.Prefixes[p];
            Assert.Equal(4 * (p + 1), prefix.Length);
            Assert.Equal(model.Detokenize(report.TrajectoryTokens.AsSpan(0, prefix.Length)), prefix.PrefixText);
            Assert.Equal(6, prefix.Rollouts.Count);
            foreach (var rollout in prefix.Rollouts)
            {
                Assert.Equal(model.Detokenize(rollout.Tokens), rollout.Text);
                Assert.InRange(rollout.Tokens.Length, 0, 24);
                Assert.Equal(rollout.Tokens.Length == 24, rollout.Stop == StopReason.MaxTokens);
                var passes = rollout.Text.Contains("dog", StringComparison.OrdinalIgnoreCase);   // the completion only
                Assert.Equal(passes, rollout.Passed);
                recount[p] += passes ? 1 : 0;
            }
            Assert.Equal(recount[p], prefix.Correct);
        }

        var critical = CriticalTokenRule.Find(recount, report.Settings.RecoverThreshold);
        Assert.Equal(critical, report.Critical?.PrefixIndex ?? -1);
        if (report.Critical is { } c)
        {
            Assert.Equal(report.Prefixes[critical].Length, c.Length);
            Assert.Equal(report.TrajectoryTokens[c.Length - 1], c.Token);
            var alternatives = report.Alternatives!;
            var before = model.Detokenize(report.TrajectoryTokens.AsSpan(0, c.Length - 1));
            Assert.Equal(before, alternatives.PrefixText);
            var passed = alternatives.Completions.Count(a => a.Text.Contains("dog", StringComparison.OrdinalIgnoreCase));
            Assert.Equal(passed, alternatives.Correct);
            for (var k = 1; k <= 6; k++)
                Assert.Equal(1 - Binomial.Choose(6 - passed, k) / Binomial.Choose(6, k), alternatives.PassAtK[k - 1], 12);
        }
        Assert.Equal(report.Prefixes.Sum(p => p.Rollouts.Count) + (report.Alternatives?.Completions.Count ?? 0), report.Stats.Completions);
        Assert.True(report.Stats.TokensSampled >= report.Prefixes.Sum(p => p.Rollouts.Sum(r => r.Tokens.Length)));
        await fixture.Session.RunAsync(s => { s.VerifyKvCache(); return s.GetPast(0); });
    }

    [Fact]
    public async Task Rollouts_continue_their_prefix_as_the_model_would()
    {
        // Top-p 0.01 keeps only the most likely token, so each rollout must be the greedy continuation of its prefix
        // (rollouts decode side by side in one batch: NearTie's rule).
        var request = new RolloutRequest
        {
            Prompt = Prompt,
            Trajectory = Greedy,
            Verifier = _never,
            Options = new RolloutOptions { Rollouts = 2, Stride = 7, MaxTokens = 10, TopP = 0.01f, Seed = 1 },
        };

        var report = await RolloutAnalyzer.AnalyzeAsync(fixture.Session, request);

        Assert.True(report.Prefixes.Count >= 2);
        foreach (var prefix in report.Prefixes)
        {
            int[] prompt = [.. report.PromptTokens, .. report.TrajectoryTokens[..prefix.Length]];
            var greedy = await fixture.Session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = Prompt, PromptTokens = prompt, MaxTokens = 10 });
            foreach (var rollout in prefix.Rollouts)
                await NearTie.AssertEqualUpToNearTieAsync(fixture.Session, prompt, greedy.Tokens, rollout.Tokens, $"a rollout after {prefix.Length} tokens");
        }
    }

    [Fact]
    public async Task Same_seed_same_report_and_a_generated_trajectory_is_one_the_verifier_rejects()
    {
        var request = new RolloutRequest
        {
            Prompt = Prompt,
            Verifier = TrajectoryVerifiers.Parse("contains:dog"),
            Options = new RolloutOptions { Rollouts = 3, Stride = 10, MaxTokens = 8, Seed = 21, TrajectoryMaxTokens = 30 },
        };

        var first = await RolloutAnalyzer.AnalyzeAsync(fixture.Session, request);
        var second = await RolloutAnalyzer.AnalyzeAsync(fixture.Session, request);

        Assert.True(first.TrajectoryGenerated);
        Assert.False(first.TrajectoryPasses);
        Assert.DoesNotContain("dog", first.TrajectoryText, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(21UL, first.Settings.Seed);
        Assert.Equal(first.TrajectoryTokens, second.TrajectoryTokens);
        Assert.Equal(
            first.Prefixes.SelectMany(p => p.Rollouts).Select(r => string.Join(',', r.Tokens)),
            second.Prefixes.SelectMany(p => p.Rollouts).Select(r => string.Join(',', r.Tokens)));
    }

    [Fact]
    public async Task Bad_requests_are_one_clear_error()
    {
        async Task<AgentHostException> Fails(RolloutRequest request)
            => await Assert.ThrowsAsync<AgentHostException>(() => RolloutAnalyzer.AnalyzeAsync(fixture.Session, request));

        var stride = await Fails(new RolloutRequest { Prompt = Prompt, Trajectory = ", the end", Verifier = _never, Options = new() { Stride = 40 } });
        Assert.Contains("so it needs more than the prefix stride 40", stride.Message, StringComparison.Ordinal);
        var single = await Fails(new RolloutRequest { Prompt = Prompt, TrajectoryTokens = [5], Verifier = _never, Options = new() { Stride = 1 } });
        Assert.Contains("prefixes of 1 to T - 1 tokens", single.Message, StringComparison.Ordinal);
        var emptyStop = await Fails(new RolloutRequest { Prompt = Prompt, Trajectory = Greedy, Verifier = _never, Options = new() { StopStrings = [""] } });
        Assert.Equal(ErrorKind.InvalidArgument, emptyStop.Kind);
        var manyStops = await Fails(new RolloutRequest { Prompt = Prompt, Trajectory = Greedy, Verifier = _never, Options = new() { StopStrings = [.. Enumerable.Repeat(".", 17)] } });
        Assert.Contains("at most 16 stop strings", manyStops.Message, StringComparison.Ordinal);
        var tooLong = await Fails(new RolloutRequest { Prompt = Prompt, Trajectory = Greedy, Verifier = _never, Options = new() { MaxTokens = 500 } });
        Assert.Equal(ErrorKind.ContextOverflow, tooLong.Kind);
        var temperature = await Fails(new RolloutRequest { Prompt = Prompt, Trajectory = Greedy, Verifier = _never, Options = new() { Temperature = 0 } });
        Assert.Equal(ErrorKind.InvalidArgument, temperature.Kind);
        var allPass = await Fails(new RolloutRequest
        {
            Prompt = Prompt,
            Verifier = TrajectoryVerifiers.Create("always", (_, _) => true),
            Options = new() { TrajectoryAttempts = 2, TrajectoryMaxTokens = 4 },
        });
        Assert.Contains("All 2 trajectories the model wrote pass the verifier", allPass.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_model_with_one_sequence_is_refused_with_a_clear_error()
    {
        using var single = Llama.Models.LlamaModel.Load("single", TestModels.Stories260K, new Llama.Models.ModelSettings { ContextSize = 128, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 1 });
        using var session = await single.CreateSessionAsync();

        var error = await Assert.ThrowsAsync<AgentHostException>(() => RolloutAnalyzer.AnalyzeAsync(session,
            new RolloutRequest { Prompt = Prompt, Trajectory = Greedy, Verifier = _never, Options = new() { MaxTokens = 4 } }));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Equal("Rollouts run as parallel sequences, but model single has Sequences = 1; set it to 2 or more.", error.Message);
    }
}
