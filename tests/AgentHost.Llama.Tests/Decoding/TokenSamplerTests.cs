using AgentHost.Llama.Decoding;

namespace AgentHost.Llama.Tests.Decoding;

/// <summary>The managed sampler on hand-made logits, where every expected number can be worked out by hand.</summary>
public sealed class TokenSamplerTests
{
    private static readonly float[] _logits = [1.0f, 3.0f, 2.0f, 0.0f, 2.5f];

    private static TokenSampler Sampler(SamplingOptions options) => new(options with { Seed = options.Seed ?? 1 }, _logits.Length);

    [Fact]
    public void ArgMax_takes_the_largest_and_the_lowest_index_on_a_tie()
    {
        Assert.Equal(1, TokenSampler.ArgMax(_logits));
        Assert.Equal(0, TokenSampler.ArgMax([2f, 2f, 1f]));
    }

    [Fact]
    public void Top_k_keeps_the_k_most_likely_in_order_with_probabilities_summing_to_one()
    {
        var candidates = Sampler(new SamplingOptions { Temperature = 1, TopK = 3, TopP = 1, MinP = 0 }).Process(_logits).ToArray();

        Assert.Equal([1, 4, 2], candidates.Select(c => c.Id));
        Assert.Equal(1.0, candidates.Sum(c => c.Probability), 5);
        var z = Math.Exp(3) + Math.Exp(2.5) + Math.Exp(2);
        Assert.Equal(Math.Exp(3) / z, candidates[0].Probability, 5);
    }

    [Fact]
    public void Top_p_keeps_the_smallest_prefix_reaching_p()
    {
        // Softmax of the full vector: p(1)=.464, p(4)=.281, p(2)=.171, p(0)=.063, p(3)=.023.
        var candidates = Sampler(new SamplingOptions { Temperature = 1, TopK = 0, TopP = 0.7f, MinP = 0 }).Process(_logits).ToArray();
        Assert.Equal([1, 4], candidates.Select(c => c.Id));
    }

    [Fact]
    public void Min_p_drops_tokens_below_the_fraction_of_the_best()
    {
        // p(2)/p(1) = e^-1 = .37 stays at min-p .3; p(0)/p(1) = e^-2 = .14 goes.
        var candidates = Sampler(new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0.3f }).Process(_logits).ToArray();
        Assert.Equal([1, 4, 2], candidates.Select(c => c.Id));
    }

    [Fact]
    public void Temperature_sharpens_the_distribution_after_truncation()
    {
        var hot = Sampler(new SamplingOptions { Temperature = 2, TopK = 2, TopP = 1, MinP = 0 }).Process(_logits).ToArray();
        var cold = Sampler(new SamplingOptions { Temperature = 0.5f, TopK = 2, TopP = 1, MinP = 0 }).Process(_logits).ToArray();

        Assert.Equal(1 / (1 + Math.Exp(-0.25)), hot[0].Probability, 5);
        Assert.Equal(1 / (1 + Math.Exp(-1.0)), cold[0].Probability, 5);
    }

    [Fact]
    public void Hugging_face_chain_cuts_top_p_on_the_tempered_distribution_and_llama_cpp_at_temperature_one()
    {
        // Temperature 0.5 doubles the logits: p(1)=.656, p(4)=.241, p(2)=.089 ... At top-p .7 llama.cpp's chain cuts
        // at temperature 1 (.463 + .281 reaches .7: ids 1 and 4); Hugging Face's cuts the tempered one (.656 + .241).
        var options = new SamplingOptions { Temperature = 0.5f, TopK = 0, TopP = 0.7f, MinP = 0, Seed = 1 };
        var llama = new TokenSampler(options, _logits.Length).Process(_logits).ToArray();
        var huggingFace = new TokenSampler(options, _logits.Length, SamplerChain.HuggingFace).Process(_logits).ToArray();
        Assert.Equal([1, 4], llama.Select(c => c.Id));
        Assert.Equal([1, 4], huggingFace.Select(c => c.Id));
        // At top-p .65 the tempered top token alone (.656) reaches p, the untempered one (.463) does not.
        var tight = options with { TopP = 0.65f };
        Assert.Equal([1, 4], new TokenSampler(tight, _logits.Length).Process(_logits).ToArray().Select(c => c.Id));
        var single = new TokenSampler(tight, _logits.Length, SamplerChain.HuggingFace).Process(_logits).ToArray();
        Assert.Equal([1], single.Select(c => c.Id));
        Assert.Equal(1.0, single[0].Probability, 6);

        // Both renormalise the kept set at the temperature, and at temperature 1 they are the same chain.
        Assert.Equal(1 / (1 + Math.Exp(-1.0)), huggingFace[0].Probability, 5);
        Assert.Equal(1 / (1 + Math.Exp(-1.0)), llama[0].Probability, 5);
        var plain = options with { Temperature = 1, TopK = 3, MinP = 0.3f };
        Assert.Equal(new TokenSampler(plain, _logits.Length).Process(_logits).ToArray(), new TokenSampler(plain, _logits.Length, SamplerChain.HuggingFace).Process(_logits).ToArray());
    }

    [Fact]
    public void Hugging_face_chain_applies_min_p_to_the_tempered_distribution()
    {
        // Temperature 2 halves the logits: p(2)/p(1) = e^-0.5 = .61 and p(0)/p(1) = e^-1 = .37 stay at min-p .3,
        // p(3)/p(1) = e^-1.5 = .22 goes; at temperature 1 (llama.cpp) p(0)/p(1) = e^-2 = .14 goes too.
        var options = new SamplingOptions { Temperature = 2, TopK = 0, TopP = 1, MinP = 0.3f, Seed = 1 };
        Assert.Equal([1, 4, 2], new TokenSampler(options, _logits.Length).Process(_logits).ToArray().Select(c => c.Id));
        Assert.Equal([1, 4, 2, 0], new TokenSampler(options, _logits.Length, SamplerChain.HuggingFace).Process(_logits).ToArray().Select(c => c.Id));
    }

    [Fact]
    public void Penalties_lower_the_logits_of_recent_tokens()
    {
        var sampler = Sampler(new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, RepeatPenalty = 2f, FrequencyPenalty = 0.5f, PresencePenalty = 0.25f });
        sampler.Accept(1);
        sampler.Accept(1);
        sampler.Accept(3);

        var byId = sampler.Process(_logits).ToArray().ToDictionary(c => c.Id, c => c.Logit);
        Assert.Equal(3.0f / 2 - 2 * 0.5f - 0.25f, byId[1], 5);  // positive logit divided, then frequency x2 and presence
        Assert.Equal(0.0f * 2 - 0.5f - 0.25f, byId[3], 5);
        Assert.Equal(2.5f, byId[4], 5);                          // untouched
    }

    [Fact]
    public void Draws_follow_the_distribution_chi_square_with_fixed_seed()
    {
        // 4 degrees of freedom; the 0.999 quantile is 18.47. A fixed seed makes this deterministic.
        var sampler = Sampler(new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, Seed = 12345 });
        var expected = sampler.Process(_logits).ToArray().OrderBy(c => c.Id).Select(c => (double)c.Probability).ToArray();
        const int draws = 20_000;
        var counts = new int[_logits.Length];
        for (var i = 0; i < draws; i++)
            counts[sampler.Sample(_logits)]++;

        var chiSquare = 0.0;
        for (var i = 0; i < counts.Length; i++)
            chiSquare += Math.Pow(counts[i] - draws * expected[i], 2) / (draws * expected[i]);
        Assert.True(chiSquare < 18.47, $"chi-square {chiSquare:F2} over the 0.999 quantile; counts {string.Join(",", counts)}");
    }

    [Fact]
    public void The_same_seed_draws_the_same_sequence()
    {
        var options = new SamplingOptions { Temperature = 1.5f, TopK = 0, TopP = 1, MinP = 0, Seed = 99 };
        var a = Sampler(options);
        var b = Sampler(options);
        var drawsA = Enumerable.Range(0, 50).Select(_ => a.Sample(_logits)).ToArray();
        var drawsB = Enumerable.Range(0, 50).Select(_ => b.Sample(_logits)).ToArray();
        Assert.Equal(drawsA, drawsB);
        Assert.True(drawsA.Distinct().Count() > 2);
    }

    [Fact]
    public void Choose_with_next_random_selects_what_draw_selects()
    {
        var options = new SamplingOptions { Temperature = 1.5f, TopK = 0, TopP = 1, MinP = 0, Seed = 7 };
        var a = Sampler(options);
        var b = Sampler(options);
        for (var i = 0; i < 50; i++)
        {
            var drawn = a.Sample(_logits);
            var candidates = b.Process(_logits);
            Assert.Equal(drawn, candidates[b.Choose(b.NextRandom())].Id);
        }
        var c = Sampler(options);
        c.Process(_logits);
        Assert.Equal(0, c.Choose(0.0));                     // the most likely candidate first
        Assert.Equal(_logits.Length - 1, c.Choose(0.999999999)); // the last one at the top of [0, 1)
    }

    [Fact]
    public void A_copied_penalty_history_processes_like_its_source_and_stays_independent()
    {
        var options = new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, RepeatPenalty = 1.5f, FrequencyPenalty = 0.3f, PenaltyLastN = 3 };
        var source = Sampler(options);
        foreach (var token in new[] { 1, 1, 4, 2 })   // window of 3: 1, 4, 2
            source.Accept(token);
        var copy = Sampler(options);
        copy.Accept(3);                                // replaced by the copy
        copy.CopyHistoryFrom(source);

        var expected = source.Process(_logits).ToArray();
        Assert.Equal(expected, copy.Process(_logits).ToArray());

        copy.Accept(3);                                // the copy moves on (3 in, 1 out); the source does not see it
        Assert.Equal(expected, source.Process(_logits).ToArray());
        Assert.NotEqual(expected, copy.Process(_logits).ToArray());
    }
}
