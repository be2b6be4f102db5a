using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Engine;

namespace AgentHost.Llama.Tests;

[Collection(Stories260KCollection.Name)]
public sealed class DecodeEngineTests(Stories260KFixture fixture)
{
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

        using var engine = new DecodeEngine(fixture.Model);
        var batched = await Task.WhenAll(requests.Select(r => engine.GenerateAsync(new GreedyStrategy(), r)));

        Assert.Contains(batched, r => r.Stats.Extra["mean_batch"] > 1);
        var exact = 0;
        using var reference = await fixture.Model.CreateSessionAsync();
        for (var i = 0; i < requests.Count; i++)
        {
            var prompt = fixture.Model.Tokenize(requests[i].Prompt, fixture.Model.Vocabulary.AddBos);
            var comparison = await NearTie.AssertEqualUpToNearTieAsync(reference, prompt, serial[i].Tokens, batched[i].Tokens, $"'{requests[i].Prompt}'");
            if (comparison.Exact)
            {
                exact++;
                Assert.Equal(serial[i].Text, batched[i].Text);
            }
        }
        Assert.True(exact > 0, "no batched request equalled its serial result");
        Assert.Equal(0, engine.Pending);
    }

    [Fact]
    public async Task A_request_reuses_the_cached_prefix_of_a_free_slot_and_gets_the_same_tokens()
    {
        using var engine = new DecodeEngine(fixture.Model);
        var first = new GenerationRequest { Prompt = "Once upon a time, there was a little girl", MaxTokens = 20, ReusePrefix = true };
        var a = await engine.GenerateAsync(new GreedyStrategy(), first);
        // The next turn: the first prompt and reply, then more.
        var next = first with { Prompt = first.Prompt + a.Text + " Then" };
        var b = await engine.GenerateAsync(new GreedyStrategy(), next);
        var uncached = await engine.GenerateAsync(new GreedyStrategy(), next with { ReusePrefix = false });

        Assert.Equal(0, a.Stats.CachedPromptTokens);
        Assert.True(b.Stats.CachedPromptTokens >= a.Stats.PromptTokens, $"cached {b.Stats.CachedPromptTokens} of {b.Stats.PromptTokens}");
        Assert.Equal(0, uncached.Stats.CachedPromptTokens);
        Assert.Equal(uncached.Tokens, b.Tokens);
    }

    [Fact]
    public async Task Requests_larger_than_a_share_of_the_context_wait_for_room_and_a_prompt_over_the_context_is_refused()
    {
        using var engine = new DecodeEngine(fixture.Model);
        // Each reserves prompt + 200 of the 512 cells: at most two run at once, the others wait for room.
        var requests = _prompts.Take(4).Select(p => new GenerationRequest { Prompt = p, MaxTokens = 200 }).ToList();
        var results = await Task.WhenAll(requests.Select(r => engine.GenerateAsync(new GreedyStrategy(), r)));
        Assert.All(results, r => Assert.True(r.Tokens.Count == 200 || r.StopReason == StopReason.EndOfGeneration));

        var tooLong = new GenerationRequest { Prompt = string.Join(' ', Enumerable.Repeat("the dog ran to the park", 120)), MaxTokens = 5 };
        var error = Assert.Throws<AgentHostException>(() => { _ = engine.GenerateAsync(new GreedyStrategy(), tooLong); });
        Assert.Equal(ErrorKind.ContextOverflow, error.Kind);
    }

    [Fact]
    public async Task Work_queued_for_the_model_runs_between_the_steps_of_a_running_request()
    {
        // The engine runs steps back to back on the scheduler thread; other users of the model must still get their turn.
        var request = new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 300 };
        var serial = await fixture.Session.GenerateAsync(new GreedyStrategy(), request);
        Assert.True(serial.Tokens.Count >= 100, $"the request must run long enough to be overtaken ({serial.Tokens.Count} tokens)");

        using var engine = new DecodeEngine(fixture.Model);
        int? runningWhenQueuedWorkRan = null;
        GenerationResult? result = null;
        await foreach (var update in engine.GenerateStreamingAsync(new GreedyStrategy(), request))
        {
            runningWhenQueuedWorkRan ??= await fixture.Model.Scheduler.RunAsync(() => engine.Pending);
            result = update.Result ?? result;
        }

        Assert.Equal(1, runningWhenQueuedWorkRan);
        Assert.Equal(serial.Tokens, result!.Tokens);
    }
}
