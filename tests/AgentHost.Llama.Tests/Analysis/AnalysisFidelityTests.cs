using AgentHost.Llama.Analysis;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Tests.Support;

namespace AgentHost.Llama.Tests.Analysis;

/// <summary>
/// The rollout finder follows the paper's code on the real stories260K model: prefixes 1..T-1, the verifier judges
/// the completion only (cut at stop strings), alternatives come from the raw softmax at temperature 1.
/// </summary>
[Collection(Stories260KCollection.Name)]
public sealed class AnalysisFidelityTests(Stories260KFixture fixture)
{
    private const string Prompt = "Once upon a time";
    private const string Greedy = ", there was a little girl named Lily. She loved to play outside in the park.";

    [Fact]
    public async Task Prefixes_run_from_1_to_T_minus_1()
    {
        var never = TrajectoryVerifiers.Create("never", (_, _) => false);
        var report = await RolloutAnalyzer.AnalyzeAsync(fixture.Session, new RolloutRequest
        {
            Prompt = Prompt,
            Trajectory = ", there was a girl",
            Verifier = never,
            Options = new RolloutOptions { Rollouts = 1, MaxTokens = 1, Seed = 3 },
        });

        var t = report.TrajectoryTokens.Length;
        Assert.True(t >= 3);
        Assert.Equal(Enumerable.Range(1, t - 1), report.Prefixes.Select(p => p.Length));
    }

    [Fact]
    public async Task The_verifier_judges_the_completion_only_unless_full_is_asked()
    {
        var seen = new List<string>();
        var lily = TrajectoryVerifiers.Create("contains Lily", (_, response) =>
        {
            lock (seen)
                seen.Add(response);
            return response.Contains("Lily", StringComparison.Ordinal);
        });
        var request = new RolloutRequest
        {
            Prompt = Prompt,
            Trajectory = Greedy,
            Verifier = lily,
            Options = new RolloutOptions { Rollouts = 3, Stride = 4, MaxTokens = 2, Seed = 7 },
        };

        var report = await RolloutAnalyzer.AnalyzeAsync(fixture.Session, request);

        // Prefixes past "Lily" would pass on the prefix alone; the completions (2 tokens) never spell it.
        var afterLily = report.Prefixes.Where(p => p.PrefixText.Contains("Lily", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(afterLily);
        Assert.All(report.Prefixes.SelectMany(p => p.Rollouts), r => Assert.Equal(r.Text.Contains("Lily", StringComparison.Ordinal), r.Passed));
        Assert.All(afterLily, p => Assert.Equal(0, p.Correct));
        var completions = report.Prefixes.SelectMany(p => p.Rollouts).Select(r => r.Text).Concat(report.Alternatives?.Completions.Select(c => c.Text) ?? []).ToHashSet();
        Assert.All(seen.Skip(1), s => Assert.Contains(s, completions));   // the first verdict is on the whole trajectory
        Assert.Equal(JudgeScope.Completion, report.Settings.Judge);

        // The old whole-text judging, on request: every rollout after "Lily" passes.
        var full = await RolloutAnalyzer.AnalyzeAsync(fixture.Session, request with { Options = request.Options with { Judge = JudgeScope.Full } });
        Assert.All(full.Prefixes.Where(p => p.PrefixText.Contains("Lily", StringComparison.Ordinal)), p => Assert.Equal(3, p.Correct));
        Assert.Equal(JudgeScope.Full, full.Settings.Judge);
    }

    [Fact]
    public async Task Stop_strings_cut_rollouts_and_the_text_the_verifier_sees()
    {
        var seen = new List<string>();
        var verifier = TrajectoryVerifiers.Create("records", (_, response) =>
        {
            lock (seen)
                seen.Add(response);
            return false;
        });
        var report = await RolloutAnalyzer.AnalyzeAsync(fixture.Session, new RolloutRequest
        {
            Prompt = Prompt,
            Trajectory = Greedy,
            Verifier = verifier,
            Options = new RolloutOptions { Rollouts = 3, Stride = 3, MaxTokens = 24, Seed = 9, StopStrings = [".", "!"] },
        });

        var model = fixture.Model;
        var rollouts = report.Prefixes.SelectMany(p => p.Rollouts).ToList();
        var cut = 0;
        foreach (var rollout in rollouts)
        {
            Assert.DoesNotContain(".", rollout.Text, StringComparison.Ordinal);
            Assert.DoesNotContain("!", rollout.Text, StringComparison.Ordinal);
            var full = model.Detokenize(rollout.Tokens);
            Assert.StartsWith(rollout.Text, full, StringComparison.Ordinal);
            if (rollout.Stop == StopReason.StopString)
            {
                cut++;
                // It ended on the token that completed the stop string, well before max tokens.
                Assert.True(full.EndsWith('.') || full.EndsWith('!') || full[rollout.Text.Length..].StartsWith('.') || full[rollout.Text.Length..].StartsWith('!'), full);
                var before = model.Detokenize(rollout.Tokens[..^1]);
                Assert.False(before.Contains('.') || before.Contains('!'), before);
            }
        }
        Assert.True(cut > 0, $"none of {rollouts.Count} rollouts ended at a stop string");
        Assert.Equal(["." , "!"], report.Settings.StopStrings);
        Assert.All(rollouts, r => Assert.Contains(r.Text, seen));
    }

    [Fact]
    public async Task Alternatives_follow_the_raw_softmax_at_temperature_1_by_a_chi_square_test()
    {
        // Rollouts at a low temperature and top-p 0.5: alternatives drawn with these settings would concentrate on a
        // few tokens and fail the test; drawn from the raw softmax (p[y_1] = 0, renormalised) they pass it.
        const int n = RolloutOptions.MaxRollouts;
        var never = TrajectoryVerifiers.Create("never", (_, _) => false);
        var report = await RolloutAnalyzer.AnalyzeAsync(fixture.Session, new RolloutRequest
        {
            Prompt = Prompt,
            Trajectory = ", there",
            Verifier = never,
            Options = new RolloutOptions { Rollouts = n, MaxTokens = 1, Temperature = 0.3f, TopP = 0.5f, Seed = 2024 },
        });
        var alternatives = Assert.IsType<CriticalAlternatives>(report.Alternatives);
        Assert.Equal(1, alternatives.Length);
        var excluded = alternatives.Excluded;

        // Expected: softmax of the raw logits after the prompt, the excluded token removed.
        var vocabulary = fixture.Model.Vocabulary.Count;
        var probabilities = await fixture.Session.RunAsync(s =>
        {
            s.Reset();
            var index = s.Prefill(report.PromptTokens, 0);
            var logits = s.GetLogits(index).ToArray();
            s.Reset();
            logits[excluded] = float.NegativeInfinity;
            var max = logits.Max();
            var weights = logits.Select(l => Math.Exp(l - max)).ToArray();
            var sum = weights.Sum();
            return weights.Select(w => w / sum).ToArray();
        });
        Assert.Equal(vocabulary, probabilities.Length);

        var counts = new int[vocabulary];
        foreach (var completion in alternatives.Completions)
            counts[Assert.Single(completion.Tokens)]++;
        Assert.Equal(0, counts[excluded]);

        // Bins: every token expected at least 5 times; the rest pooled into one bin.
        double statistic = 0, restExpected = 0, restObserved = 0;
        var bins = 0;
        for (var token = 0; token < vocabulary; token++)
        {
            var expected = probabilities[token] * n;
            if (expected >= 5)
            {
                statistic += (counts[token] - expected) * (counts[token] - expected) / expected;
                bins++;
            }
            else
            {
                restExpected += expected;
                restObserved += counts[token];
            }
        }
        if (restExpected > 0)
        {
            statistic += (restObserved - restExpected) * (restObserved - restExpected) / restExpected;
            bins++;
        }
        var df = bins - 1;
        Assert.True(df >= 3, $"only {bins} bins");
        // Tolerance: the 0.999 quantile of chi-square(df) (Wilson-Hilferty, z = 3.09); fixed seed, so deterministic.
        var h = 2.0 / (9 * df);
        var critical = df * Math.Pow(1 - h + 3.09 * Math.Sqrt(h), 3);
        Assert.True(statistic < critical, $"chi-square {statistic:F1} >= {critical:F1} (df {df})");
    }
}
