using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Engine;

namespace AgentHost.Llama.Tests;

[Collection(Stories260KCollection.Name)]
public sealed class BatchedGeneratorTests(Stories260KFixture fixture)
{
    /// <summary>The top-2 logit gap under which batched and serial greedy may pick differently (documented near-tie).</summary>
    private const float NearTie = 1e-3f;

    private static readonly string[] _prompts =
    [
        "Once upon a time", "The little dog", "Lily and Ben went to the park", "One day, a big bird",
        "Tom had a red ball", "The sun was hot", "Mom said", "There was a girl who liked to sing",
    ];

    [Fact]
    public async Task Concurrent_greedy_requests_equal_their_serial_results_except_after_a_near_tie()
    {
        // More requests than sequences (the fixture has 4): later ones join between steps as earlier ones end.
        var requests = _prompts.Select((p, i) => new GenerationRequest { Prompt = p, MaxTokens = 40 + 8 * i }).ToList();
        var serial = new List<GenerationResult>();
        foreach (var request in requests)
            serial.Add(await fixture.Session.GenerateAsync(new GreedyStrategy(), request));

        using var batcher = new BatchedGenerator(fixture.Model);
        var batched = await Task.WhenAll(requests.Select(r => batcher.GenerateAsync(r, sample: false, CancellationToken.None)));

        Assert.Contains(batched, r => r.Stats.Extra["mean_batch"] > 1);
        var exact = 0;
        for (var i = 0; i < requests.Count; i++)
        {
            var expected = serial[i].Tokens;
            var actual = batched[i].Tokens;
            var diverged = expected.Zip(actual).TakeWhile(p => p.First == p.Second).Count();
            if (diverged == expected.Count && diverged == actual.Count)
            {
                exact++;
                Assert.Equal(serial[i].Text, batched[i].Text);
                continue;
            }
            // Only a near-tie in the serial run's own logits at the first differing step may explain a difference.
            var (gap, second) = await SerialTopTwoAsync(requests[i], expected.Take(diverged).ToArray());
            Assert.True(gap < NearTie, $"'{requests[i].Prompt}': batched differs at token {diverged} where the serial top-2 gap is {gap} (not a near-tie)");
            Assert.Equal(second, actual[diverged]);
        }
        Assert.True(exact > 0, "no batched request equalled its serial result");
        Assert.Equal(0, batcher.Pending);
    }

    [Fact]
    public async Task A_request_reuses_the_cached_prefix_of_a_free_slot_and_gets_the_same_tokens()
    {
        using var batcher = new BatchedGenerator(fixture.Model);
        var first = new GenerationRequest { Prompt = "Once upon a time, there was a little girl", MaxTokens = 20, ReusePrefix = true };
        var a = await batcher.GenerateAsync(first, sample: false, CancellationToken.None);
        // The next turn: the first prompt and reply, then more.
        var next = first with { Prompt = first.Prompt + a.Text + " Then" };
        var b = await batcher.GenerateAsync(next, sample: false, CancellationToken.None);
        var uncached = await batcher.GenerateAsync(next with { ReusePrefix = false }, sample: false, CancellationToken.None);

        Assert.Equal(0, a.Stats.CachedPromptTokens);
        Assert.True(b.Stats.CachedPromptTokens >= a.Stats.PromptTokens, $"cached {b.Stats.CachedPromptTokens} of {b.Stats.PromptTokens}");
        Assert.Equal(0, uncached.Stats.CachedPromptTokens);
        Assert.Equal(uncached.Tokens, b.Tokens);
    }

    [Fact]
    public async Task Requests_larger_than_a_share_of_the_context_wait_for_room_and_a_prompt_over_the_context_is_refused()
    {
        using var batcher = new BatchedGenerator(fixture.Model);
        // Each reserves prompt + 200 of the 512 cells: at most two run at once, the others wait for room.
        var requests = _prompts.Take(4).Select(p => new GenerationRequest { Prompt = p, MaxTokens = 200 }).ToList();
        var results = await Task.WhenAll(requests.Select(r => batcher.GenerateAsync(r, sample: false, CancellationToken.None)));
        Assert.All(results, r => Assert.True(r.Tokens.Count == 200 || r.StopReason == StopReason.EndOfGeneration));

        var tooLong = new GenerationRequest { Prompt = string.Join(' ', Enumerable.Repeat("the dog ran to the park", 120)), MaxTokens = 5 };
        var error = Assert.Throws<AgentHostException>(() => { _ = batcher.GenerateAsync(tooLong, sample: false, CancellationToken.None); });
        Assert.Equal(ErrorKind.ContextOverflow, error.Kind);
    }

    [Fact]
    public async Task Work_queued_for_the_model_runs_between_the_steps_of_a_running_request()
    {
        // The batcher runs steps back to back on the scheduler thread; other users of the model must still get their turn.
        var request = new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 300 };
        var serial = await fixture.Session.GenerateAsync(new GreedyStrategy(), request);
        Assert.True(serial.Tokens.Count >= 100, $"the request must run long enough to be overtaken ({serial.Tokens.Count} tokens)");

        using var batcher = new BatchedGenerator(fixture.Model);
        int? runningWhenQueuedWorkRan = null;
        GenerationResult? result = null;
        await foreach (var update in batcher.GenerateStreamingAsync(request, sample: false, CancellationToken.None))
        {
            runningWhenQueuedWorkRan ??= await fixture.Model.Scheduler.RunAsync(() => batcher.Pending);
            result = update.Result ?? result;
        }

        Assert.Equal(1, runningWhenQueuedWorkRan);
        Assert.Equal(serial.Tokens, result!.Tokens);
    }

    /// <summary>Replays the serial run up to <paramref name="prefix"/> (prefill, then one token per decode) and returns its top-2 logit gap and runner-up.</summary>
    private async Task<(float Gap, int Second)> SerialTopTwoAsync(GenerationRequest request, int[] prefix)
    {
        using var session = await fixture.Model.CreateSessionAsync();
        return await session.RunAsync(s =>
        {
            var index = s.Prefill(fixture.Model.Tokenize(request.Prompt, fixture.Model.Vocabulary.AddBos), 0);
            foreach (var token in prefix)
            {
                s.ClearBatch();
                index = s.AddToBatch(token, s.GetPast(0), 0, logits: true);
                s.Decode();
            }
            var logits = s.GetLogits(index);
            var best = TokenSampler.ArgMax(logits);
            var second = best == 0 ? 1 : 0;
            for (var t = 0; t < logits.Length; t++)
            {
                if (t != best && logits[t] > logits[second])
                    second = t;
            }
            return (logits[best] - logits[second], second);
        });
    }
}
