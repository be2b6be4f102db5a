using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Engine;

namespace AgentHost.Llama.Tests.Decoding;

/// <summary>
/// Issue 26: token log-probabilities are the log softmax of the model's raw logits at each emitted token's step (checked
/// against a serial decode computed here, in double precision, independently of the engine), over the full vocabulary;
/// logit_bias changes the choice; out-of-range values are refused naming the field.
/// </summary>
[Collection(Stories260KCollection.Name)]
public sealed class TokenLogprobsTests(Stories260KFixture fixture)
{
    private const string Prompt = "Once upon a time";

    [Fact]
    public async Task Greedy_logprobs_equal_the_log_softmax_of_a_serial_decode_over_the_full_vocabulary()
    {
        var request = new GenerationRequest { Prompt = Prompt, MaxTokens = 24, TopLogprobs = 5 };

        var result = await fixture.Session.GenerateAsync(new GreedyStrategy(), request);

        var logprobs = Assert.IsAssignableFrom<IReadOnlyList<TokenLogprob>>(result.Logprobs);
        Assert.Equal(result.Tokens.Count, logprobs.Count);
        var reference = await ReferenceAsync(result.Tokens);
        for (var i = 0; i < logprobs.Count; i++)
        {
            var entry = logprobs[i];
            Assert.Equal(result.Tokens[i], entry.Token);
            Assert.Equal(reference[i][entry.Token], entry.Logprob, 1e-4);
            // Normalised over the full vocabulary: the sum of exp(log-probability) is 1.
            Assert.Equal(1.0, reference[i].Sum(Math.Exp), 1e-6);
            Assert.Equal(1.0, ImpliedTotal(reference[i], entry), 1e-4);
            Assert.Equal(5, entry.Top.Count);
            // Greedy takes the most likely token: the first alternative, with the same log-probability.
            Assert.Equal(entry.Token, entry.Top[0].Token);
            Assert.Equal(entry.Logprob, entry.Top[0].Logprob, 1e-9);
            for (var k = 0; k < entry.Top.Count; k++)
            {
                Assert.Equal(reference[i][entry.Top[k].Token], entry.Top[k].Logprob, 1e-4);
                if (k > 0)
                    Assert.True(entry.Top[k - 1].Logprob >= entry.Top[k].Logprob);
            }
            // No token outside the top list is likelier than its last entry.
            Assert.True(reference[i].Max() - entry.Top[0].Logprob < 1e-4);
            // The step's entropy: -sum p log p over the full vocabulary.
            Assert.Equal(reference[i].Sum(l => -Math.Exp(l) * l), entry.Entropy, 1e-4);
        }
    }

    [Fact]
    public async Task Sampled_and_batched_logprobs_are_those_of_the_chosen_tokens_and_off_costs_nothing()
    {
        var sample = new GenerationRequest { Prompt = Prompt, MaxTokens = 16, TopLogprobs = 0, Sampling = new SamplingOptions { Seed = 7, Temperature = 1.2f } };
        var sampled = await fixture.Session.GenerateAsync(new SamplingStrategy(), sample);
        var reference = await ReferenceAsync(sampled.Tokens);
        Assert.Equal(sampled.Tokens.Count, sampled.Logprobs!.Count);
        for (var i = 0; i < sampled.Tokens.Count; i++)
        {
            Assert.Equal(reference[i][sampled.Tokens[i]], sampled.Logprobs[i].Logprob, 1e-4);
            Assert.Empty(sampled.Logprobs[i].Top);
        }

        using var engine = new DecodeEngine(fixture.Model);
        var batched = await engine.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = Prompt, MaxTokens = 16, TopLogprobs = 3 });
        var batchedReference = await ReferenceAsync(batched.Tokens);
        Assert.Equal(batched.Tokens.Count, batched.Logprobs!.Count);
        for (var i = 0; i < batched.Tokens.Count; i++)
            Assert.Equal(batchedReference[i][batched.Tokens[i]], batched.Logprobs[i].Logprob, 1e-3);   // batched logits may differ in the last bits

        // Not asked for: none recorded.
        Assert.Null((await fixture.Session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = Prompt, MaxTokens = 4 })).Logprobs);
    }

    [Fact]
    public async Task Streamed_logprobs_arrive_with_their_pieces_and_add_up_to_the_result()
    {
        var request = new GenerationRequest { Prompt = Prompt, MaxTokens = 20, TopLogprobs = 2 };
        foreach (var batched in new[] { false, true })
        {
            using var engine = new DecodeEngine(fixture.Model);
            var streamed = new List<TokenLogprob>();
            GenerationResult? result = null;
            var stream = batched ? engine.GenerateStreamingAsync(new GreedyStrategy(), request) : fixture.Session.GenerateStreamingAsync(new GreedyStrategy(), request);
            await foreach (var update in stream)
            {
                streamed.AddRange(update.Logprobs ?? []);
                result ??= update.Result;
            }
            Assert.Equal(result!.Logprobs, streamed);
            Assert.Equal(result.Tokens, streamed.Select(l => l.Token));
        }
    }

    [Fact]
    public async Task A_bias_of_minus_100_on_the_greedy_token_changes_the_output_under_both_engines()
    {
        var plain = await fixture.Session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = Prompt, MaxTokens = 12 });
        var banned = plain.Tokens[0];
        var request = new GenerationRequest { Prompt = Prompt, MaxTokens = 12, LogitBias = new Dictionary<int, float> { [banned] = -100 }, TopLogprobs = 1 };

        var biased = await fixture.Session.GenerateAsync(new GreedyStrategy(), request);
        using var engine = new DecodeEngine(fixture.Model);
        var batched = await engine.GenerateAsync(new GreedyStrategy(), request);

        Assert.NotEqual(plain.Tokens, biased.Tokens);
        Assert.DoesNotContain(banned, biased.Tokens);
        Assert.DoesNotContain(banned, batched.Tokens);
        // Log-probabilities stay those of the raw logits: the banned token is still the most likely alternative at step 0.
        Assert.Equal(banned, biased.Logprobs![0].Top[0].Token);
    }

    [Theory]
    [InlineData(21, null, "top_logprobs")]
    [InlineData(-1, null, "top_logprobs")]
    [InlineData(null, 1_000_000, "logit_bias")]
    [InlineData(null, -1, "logit_bias")]
    public async Task Out_of_range_values_are_refused_naming_the_field(int? top, int? biasToken, string parameter)
    {
        var request = new GenerationRequest
        {
            Prompt = Prompt, MaxTokens = 4, TopLogprobs = top,
            LogitBias = biasToken is { } id ? new Dictionary<int, float> { [id] = 5 } : null,
        };

        var error = await Assert.ThrowsAsync<AgentHostException>(() => fixture.Session.GenerateAsync(new GreedyStrategy(), request));
        using var engine = new DecodeEngine(fixture.Model);
        var batched = await Assert.ThrowsAsync<AgentHostException>(() => engine.GenerateAsync(new GreedyStrategy(), request));

        Assert.Equal(parameter, error.Parameter);
        Assert.Equal(parameter, batched.Parameter);
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
    }

    [Fact]
    public async Task A_bias_beyond_100_and_a_strategy_that_cannot_provide_them_are_refused()
    {
        var tooStrong = new GenerationRequest { Prompt = Prompt, MaxTokens = 4, LogitBias = new Dictionary<int, float> { [1] = 101 } };
        Assert.Equal("logit_bias", (await Assert.ThrowsAsync<AgentHostException>(() => fixture.Session.GenerateAsync(new GreedyStrategy(), tooStrong))).Parameter);

        var recycling = DecodingStrategies.Create("recycling");
        var logprobs = new GenerationRequest { Prompt = Prompt, MaxTokens = 4, TopLogprobs = 1 };
        var error = await Assert.ThrowsAsync<AgentHostException>(() => fixture.Session.GenerateAsync(recycling, logprobs));
        Assert.Equal("logprobs", error.Parameter);
        Assert.Contains("recycling", error.Message);
    }

    // exp(logit - implied log-sum-exp) summed over the vocabulary, where the implied log-sum-exp is the one the entry used.
    private static double ImpliedTotal(double[] referenceLogSoftmax, TokenLogprob entry)
    {
        var shift = entry.Logprob - referenceLogSoftmax[entry.Token];
        return referenceLogSoftmax.Sum(l => Math.Exp(l + shift));
    }

    /// <summary>Per generated token, the log softmax (double precision) of the logits that predicted it, from a serial decode.</summary>
    private async Task<double[][]> ReferenceAsync(IReadOnlyList<int> generated)
    {
        using var session = await fixture.Model.CreateSessionAsync();
        var prompt = fixture.Model.Tokenize(Prompt, fixture.Model.Vocabulary.AddBos);
        return await session.RunAsync(s =>
        {
            s.Reset();
            var index = s.Prefill(prompt, 0);
            var rows = new double[generated.Count][];
            for (var i = 0; i < generated.Count; i++)
            {
                var logits = s.GetLogits(index);
                var max = double.NegativeInfinity;
                foreach (var z in logits)
                    max = Math.Max(max, z);
                var sum = 0.0;
                foreach (var z in logits)
                    sum += Math.Exp(z - max);
                var lse = max + Math.Log(sum);
                var row = new double[logits.Length];
                for (var t = 0; t < logits.Length; t++)
                    row[t] = logits[t] - lse;
                rows[i] = row;
                s.ClearBatch();
                index = s.AddToBatch(generated[i], s.GetPast(0), 0, logits: true);
                s.Decode();
            }
            return rows;
        });
    }
}
