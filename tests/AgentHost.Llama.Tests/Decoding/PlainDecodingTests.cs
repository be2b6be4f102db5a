using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;

namespace AgentHost.Llama.Tests.Decoding;

[Collection(Stories260KCollection.Name)]
public sealed class PlainDecodingTests(Stories260KFixture fixture)
{
    private const string Prompt = "Once upon a time";
    private readonly GreedyStrategy _greedy = new();
    private readonly SamplingStrategy _sample = new();

    private async Task<GenerationResult> Generate(IDecodingStrategy strategy, GenerationRequest request, Action<string>? onText = null, CancellationToken ct = default)
    {
        if (onText is null)
            return await fixture.Session.GenerateAsync(strategy, request, ct);
        await foreach (var update in fixture.Session.GenerateStreamingAsync(strategy, request, ct))
        {
            if (update.Result is not null)
                return update.Result;
            onText(update.Text);
        }
        throw new InvalidOperationException("The stream ended without a result.");
    }

    [Fact]
    public async Task Greedy_continues_the_story_the_model_was_trained_on()
    {
        var result = await Generate(_greedy, new GenerationRequest { Prompt = Prompt, MaxTokens = 30 });

        Assert.StartsWith(", there was a little girl named Lily. She loved to play outside in the park.", result.Text);
        Assert.Equal(30, result.Tokens.Count);
        Assert.Equal(StopReason.MaxTokens, result.StopReason);
        Assert.Equal(5, result.Stats.PromptTokens); // BOS + 4
    }

    [Fact]
    public async Task Greedy_is_identical_across_runs_and_across_a_new_session()
    {
        var request = new GenerationRequest { Prompt = Prompt, MaxTokens = 200 };
        var first = await Generate(_greedy, request);
        var second = await Generate(_greedy, request);
        using var fresh = await fixture.Model.CreateSessionAsync();
        var third = await fresh.GenerateAsync(_greedy, request);

        Assert.Equal(first.Tokens, second.Tokens);
        Assert.Equal(first.Tokens, third.Tokens);
        Assert.Equal(first.Text, third.Text);
        Assert.Equal(fixture.Model.Detokenize(first.Tokens.ToArray()), first.Text);
    }

    [Fact]
    public async Task Sampling_with_a_seed_is_reproducible_and_seeds_differ()
    {
        GenerationRequest WithSeed(ulong seed) => new()
        {
            Prompt = Prompt,
            MaxTokens = 60,
            Sampling = new SamplingOptions { Temperature = 1.0f, Seed = seed },
        };

        var a = await Generate(_sample, WithSeed(7));
        var b = await Generate(_sample, WithSeed(7));
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.Equal(7UL, a.Stats.Seed);

        var others = new List<IReadOnlyList<int>>();
        for (ulong seed = 8; seed < 12; seed++)
            others.Add((await Generate(_sample, WithSeed(seed))).Tokens);
        Assert.Contains(others, o => !o.SequenceEqual(a.Tokens));
    }

    [Fact]
    public async Task Sampling_at_temperature_zero_equals_greedy()
    {
        var greedy = await Generate(_greedy, new GenerationRequest { Prompt = Prompt, MaxTokens = 50 });
        var sampled = await Generate(_sample, new GenerationRequest { Prompt = Prompt, MaxTokens = 50, Sampling = new SamplingOptions { Temperature = 0 } });
        Assert.Equal(greedy.Tokens, sampled.Tokens);
    }

    [Fact]
    public async Task Max_tokens_stops_exactly_and_is_a_prefix_of_a_longer_run()
    {
        var longer = await Generate(_greedy, new GenerationRequest { Prompt = Prompt, MaxTokens = 40 });
        var shorter = await Generate(_greedy, new GenerationRequest { Prompt = Prompt, MaxTokens = 13 });

        Assert.Equal(13, shorter.Tokens.Count);
        Assert.Equal(longer.Tokens.Take(13), shorter.Tokens);
        Assert.Equal(StopReason.MaxTokens, shorter.StopReason);
    }

    [Fact]
    public async Task A_stop_string_within_one_token_cuts_the_text_before_it()
    {
        var reference = await Generate(_greedy, new GenerationRequest { Prompt = Prompt, MaxTokens = 100 });
        var stopped = await Generate(_greedy, new GenerationRequest { Prompt = Prompt, MaxTokens = 100, Stop = ["Lily"] });

        Assert.Equal(StopReason.StopString, stopped.StopReason);
        Assert.Equal(reference.Text[..reference.Text.IndexOf("Lily", StringComparison.Ordinal)], stopped.Text);
    }

    [Fact]
    public async Task A_stop_string_spanning_two_tokens_stops_at_the_token_that_completes_it()
    {
        var reference = await Generate(_greedy, new GenerationRequest { Prompt = Prompt, MaxTokens = 60 });
        var pieces = reference.Tokens.Select(t => fixture.Model.Detokenize([t])).ToList();
        // A boundary deep in the text between two tokens of at least two characters each.
        var k = Enumerable.Range(10, pieces.Count - 11).First(i => pieces[i].Length >= 2 && pieces[i + 1].Length >= 2);
        var stop = pieces[k][^2..] + pieces[k + 1][..2];
        var stopAt = reference.Text.IndexOf(stop, StringComparison.Ordinal);
        Assert.True(stopAt >= 0);

        var streamed = new List<string>();
        var stopped = await Generate(_greedy, new GenerationRequest { Prompt = Prompt, MaxTokens = 60, Stop = [stop] }, streamed.Add);

        Assert.Equal(StopReason.StopString, stopped.StopReason);
        Assert.Equal(reference.Text[..stopAt], stopped.Text);
        Assert.Equal(string.Concat(streamed), stopped.Text);
        var completing = Enumerable.Range(0, pieces.Count).First(i => string.Concat(pieces.Take(i + 1)).Contains(stop, StringComparison.Ordinal));
        Assert.Equal(reference.Tokens.Take(completing + 1), stopped.Tokens);
    }

    [Fact]
    public async Task Streamed_pieces_concatenate_to_the_final_text()
    {
        var pieces = new List<string>();
        var result = await Generate(_greedy, new GenerationRequest { Prompt = Prompt, MaxTokens = 120 }, pieces.Add);

        Assert.True(pieces.Count > 10);
        Assert.Equal(result.Text, string.Concat(pieces));
    }

    [Fact]
    public async Task Multi_byte_characters_split_over_byte_tokens_stream_whole()
    {
        // stories260K spells these with byte-fallback tokens: é is two of them, ☕ three.
        const string text = "Tom said: café ☕ and 🐱!";
        var tokens = await fixture.Session.RunAsync(s => s.Model.Tokenize(text, addBos: false));
        Assert.True(tokens.Length > text.Length / 2);

        var pieces = new List<string>();
        var output = new GenerationOutput(fixture.Model.Vocabulary, maxTokens: 1000, stop: [], pieces.Add);
        foreach (var token in tokens)
            Assert.False(output.Accept(token));
        var final = output.Complete();

        Assert.Equal(" " + text, final); // SentencePiece adds the leading space
        Assert.Equal(final, string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD') || (p.Length > 0 && char.IsHighSurrogate(p[^1])));
    }

    [Fact]
    public async Task Cancellation_mid_generation_throws_and_the_session_then_generates_correctly()
    {
        var reference = await Generate(_greedy, new GenerationRequest { Prompt = Prompt, MaxTokens = 80 });

        using var cts = new CancellationTokenSource();
        var pieces = 0;
        var request = new GenerationRequest { Prompt = Prompt, MaxTokens = 400 };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Generate(_greedy, request, _ =>
        {
            if (++pieces == 20)
                cts.Cancel();
        }, cts.Token));
        Assert.InRange(pieces, 20, 21);

        var after = await Generate(_greedy, new GenerationRequest { Prompt = Prompt, MaxTokens = 80 });
        Assert.Equal(reference.Tokens, after.Tokens);
        await fixture.Session.RunAsync(s => { s.VerifyKvCache(); return true; });
    }

    [Theory]
    [InlineData("greedy")]
    [InlineData("sample")]
    public async Task After_each_generation_the_kv_cache_holds_exactly_n_past(string strategy)
    {
        var request = new GenerationRequest { Prompt = Prompt, MaxTokens = 50, Sampling = new SamplingOptions { Seed = 3 } };
        var result = await Generate(DecodingStrategies.Create(strategy), request);

        var past = await fixture.Session.RunAsync(s =>
        {
            s.VerifyKvCache();
            return s.GetPast(0);
        });
        // Every accepted token but the last has been decoded into the cache.
        Assert.Equal(result.Stats.PromptTokens + result.Tokens.Count - 1, past);
        Assert.Equal(result.Tokens.Count, result.Stats.DecodeCalls); // one prefill + one per token after the first
    }
}
