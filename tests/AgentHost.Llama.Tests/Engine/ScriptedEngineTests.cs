using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Engine;

namespace AgentHost.Llama.Tests;

/// <summary>
/// The engine's bookkeeping on scripted logits (<see cref="ScriptedDecodeBackend"/>): logits that do not depend on the
/// batch make every result exact, so what is checked here is admission, eviction, cancellation, shared prefixes,
/// speculative acceptance and trial selection, not numerics. (The model supplies only the vocabulary and its thread.)
/// </summary>
[Collection(Stories260KCollection.Name)]
public sealed class ScriptedEngineTests(Stories260KFixture fixture)
{
    private static readonly TimeSpan _hangGuard = TimeSpan.FromMinutes(1);

    private ScriptedDecodeBackend Backend(int contextSize = 512, int sequences = 8) => new(fixture.Model.Vocabulary.Count, contextSize, sequences);

    private static GenerationRequest Request(int first, int maxTokens = 24, int length = 4)
        => new() { Prompt = "", PromptTokens = [.. Enumerable.Range(0, length).Select(i => 10 + (first + i) % 50)], MaxTokens = maxTokens };

    private async Task<GenerationResult> StandaloneAsync(IDecodingStrategy strategy, GenerationRequest request, ScriptedDecodeBackend? backend = null)
    {
        using var session = new InferenceSession(new DecodeContext(fixture.Model, backend ?? Backend()), null, null, 0);
        return await session.GenerateAsync(strategy, request);
    }

    /// <summary>Submits requests from the model's thread, so that they all reach the engine before its next step.</summary>
    private async Task<GenerationResult[]> TogetherAsync(DecodeEngine engine, IEnumerable<(IDecodingStrategy Strategy, GenerationRequest Request)> requests, CancellationToken cancellationToken = default)
    {
        var tasks = await fixture.Model.Scheduler.RunAsync(() => requests.Select(r => engine.GenerateAsync(r.Strategy, r.Request, cancellationToken)).ToList());
        return await Task.WhenAll(tasks).WaitAsync(_hangGuard);
    }

    private static IDecodingStrategy[] EveryStrategy() =>
    [
        new GreedyStrategy(),
        new SamplingStrategy(),
        DecodingStrategies.Create("recycling"),
        DecodingStrategies.Create("lookup"),
        DecodingStrategies.Create("cautious", new StrategyOptions([new("cautious_max_trials", "3")])),
    ];

    [Fact]
    public async Task Every_strategy_runs_concurrently_in_the_shared_batch_and_equals_its_standalone_run_exactly()
    {
        var requests = EveryStrategy().Select((s, i) => (Strategy: s, Request: Request(i * 3, maxTokens: 120) with
        {
            Sampling = s.Name is "sample" or "cautious" ? new SamplingOptions { Seed = 5, Temperature = 1 } : null,
        })).ToList();
        var alone = new List<GenerationResult>();
        foreach (var (strategy, request) in requests)
            alone.Add(await StandaloneAsync(EveryStrategy().Single(s => s.Name == strategy.Name), request));

        var backend = Backend(sequences: 32);
        using var engine = new DecodeEngine(fixture.Model, () => backend);
        var shared = await TogetherAsync(engine, requests);

        for (var i = 0; i < requests.Count; i++)
            Assert.True(alone[i].Tokens.SequenceEqual(shared[i].Tokens), $"{shared[i].Strategy}: [{string.Join(", ", alone[i].Tokens)}] alone, [{string.Join(", ", shared[i].Tokens)}] in the batch");
        Assert.True(backend.MostRequestsInOneBatch > 1, "the requests never shared a decode");
        Assert.All(shared, r => Assert.True(r.Stats.Extra["mean_batch"] > 1, $"{r.Strategy} decoded alone"));
        // The lossless strategies emit greedy's tokens, with drafts accepted on this periodic text.
        var greedy = shared[0];
        foreach (var speculative in shared.Where(r => r.Strategy is "recycling" or "lookup"))
        {
            Assert.Equal((await StandaloneAsync(new GreedyStrategy(), requests[Array.IndexOf(shared, speculative)].Request)).Tokens, speculative.Tokens);
            Assert.True(speculative.Stats.Extra["accepted_drafts"] > 0, $"{speculative.Strategy} accepted no draft");
        }
        Assert.True(shared.Single(r => r.Strategy == "cautious").Stats.Extra["branching_steps"] > 0, "cautious decoding never branched");
        Assert.Equal(0, engine.Pending);
        // What stays cached is each request's own text; draft trees and trials left nothing behind.
        Assert.InRange(backend.CellsInUse, 1, requests.Sum(r => r.Request.PromptTokens!.Count) + shared.Sum(r => r.Tokens.Count));
    }

    [Fact]
    public async Task Requests_that_need_the_whole_context_run_one_at_a_time_in_arrival_order()
    {
        var backend = Backend(contextSize: 64);
        using var engine = new DecodeEngine(fixture.Model, () => backend);
        var tasks = Enumerable.Range(0, 4).Select(i => engine.GenerateAsync(new GreedyStrategy(), Request(i, maxTokens: 50))).ToList();
        var results = await Task.WhenAll(tasks).WaitAsync(_hangGuard);

        Assert.Equal([10, 11, 12, 13], backend.PromptStarts);
        Assert.All(results, r => Assert.Equal(50, r.Tokens.Count));
        Assert.Equal(1, backend.MostRequestsInOneBatch);
        Assert.Equal(0, engine.Pending);
    }

    [Fact]
    public async Task Idle_caches_are_dropped_least_recently_used_first_to_make_room()
    {
        var backend = Backend(contextSize: 100, sequences: 4);
        using var engine = new DecodeEngine(fixture.Model, () => backend);
        var a = Request(0, maxTokens: 10, length: 10) with { ReusePrefix = true };
        var b = Request(20, maxTokens: 10, length: 10) with { ReusePrefix = true };
        await engine.GenerateAsync(new GreedyStrategy(), a);
        await engine.GenerateAsync(new GreedyStrategy(), b);
        // Needs 70 cells: beside a's and b's caches (20 each) only one of them fits, and a is the older.
        await engine.GenerateAsync(new GreedyStrategy(), Request(40, maxTokens: 60, length: 10));

        var again = await engine.GenerateAsync(new GreedyStrategy(), b);
        Assert.Equal(9, again.Stats.CachedPromptTokens);   // all but the last prompt token, whose logits are needed
        var evicted = await engine.GenerateAsync(new GreedyStrategy(), a);
        Assert.Equal(0, evicted.Stats.CachedPromptTokens);
    }

    [Fact]
    public async Task A_prompt_sharing_a_prefix_with_another_request_copies_it_instead_of_decoding_it()
    {
        var backend = Backend();
        using var engine = new DecodeEngine(fixture.Model, () => backend);
        int[] system = [.. Enumerable.Range(0, 40).Select(i => 10 + i % 50)];
        var first = new GenerationRequest { Prompt = "", PromptTokens = [.. system, 200, 201], MaxTokens = 8, ReusePrefix = true };
        // A long reply keeps the first request running while the second arrives.
        var running = engine.GenerateAsync(new GreedyStrategy(), first with { MaxTokens = 300 });
        await Task.Delay(50);
        await engine.GenerateAsync(new GreedyStrategy(), first);   // the same prompt once: its home now holds the system prompt
        var before = backend.DecodedTokens;
        var secondRequest = new GenerationRequest { Prompt = "", PromptTokens = [.. system, 300, 301, 302], MaxTokens = 1, ReusePrefix = true };
        var second = await engine.GenerateAsync(new GreedyStrategy(), secondRequest);
        await running.WaitAsync(_hangGuard);

        Assert.Equal(system.Length, second.Stats.CachedPromptTokens);
        Assert.Equal((await StandaloneAsync(new GreedyStrategy(), secondRequest)).Tokens, second.Tokens);
        Assert.True(backend.DecodedTokens - before <= 3 + 300, "the shared prefix was decoded again");
    }

    [Fact]
    public async Task Cancelling_a_request_frees_its_sequences_while_the_others_finish()
    {
        using var cancel = new CancellationTokenSource();
        var vocabulary = fixture.Model.Vocabulary.Count;
        // The doomed request (its prompt starts with token 10) is cancelled once it has 30 tokens, mid-generation.
        var backend = new ScriptedDecodeBackend(vocabulary, sequences: 8)
        {
            Script = history =>
            {
                if (history[0] == 10 && history.Count == 30)
                    cancel.Cancel();
                return ScriptedDecodeBackend.Periodic(history, vocabulary);
            },
        };
        using var engine = new DecodeEngine(fixture.Model, () => backend);
        var doomed = engine.GenerateAsync(DecodingStrategies.Create("recycling", new StrategyOptions([new("recycling_tree", "chain-3")])), Request(0, maxTokens: 400), cancel.Token);
        var others = Enumerable.Range(1, 3).Select(i => engine.GenerateAsync(new GreedyStrategy(), Request(i * 5, maxTokens: 60))).ToList();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => doomed.WaitAsync(_hangGuard));
        var results = await Task.WhenAll(others).WaitAsync(_hangGuard);
        Assert.All(results, r => Assert.Equal(60, r.Tokens.Count));
        // Its sequences came back: a request that needs every sequence runs.
        var wide = await engine.GenerateAsync(DecodingStrategies.Create("cautious", new StrategyOptions([new("cautious_max_trials", "3")])),
            Request(0, maxTokens: 20) with { Sampling = new SamplingOptions { Seed = 1 } }).WaitAsync(_hangGuard);
        Assert.Equal(20, wide.Tokens.Count);
        Assert.Equal(0, engine.Pending);
    }

    [Fact]
    public async Task A_failed_decode_fails_the_requests_in_it_and_the_engine_serves_the_next()
    {
        var backend = Backend();
        backend.FailDecode = 3;
        using var engine = new DecodeEngine(fixture.Model, () => backend);
        // Both reach the engine before its first step, so both are in the failing (third) decode.
        var tasks = await fixture.Model.Scheduler.RunAsync(() => new[] { engine.GenerateAsync(new GreedyStrategy(), Request(0)), engine.GenerateAsync(new GreedyStrategy(), Request(7)) });
        foreach (var task in tasks)
            Assert.Contains("llama_decode failed", (await Assert.ThrowsAsync<InvalidOperationException>(() => task.WaitAsync(_hangGuard))).Message, StringComparison.Ordinal);
        Assert.Equal(0, engine.Pending);

        var next = await engine.GenerateAsync(new GreedyStrategy(), Request(3)).WaitAsync(_hangGuard);
        Assert.Equal((await StandaloneAsync(new GreedyStrategy(), Request(3))).Tokens, next.Tokens);
    }

    [Fact]
    public async Task A_context_that_cannot_be_created_fails_the_waiting_requests_and_the_next_request_gets_a_new_one()
    {
        var attempts = 0;
        using var engine = new DecodeEngine(fixture.Model, () => ++attempts == 1 ? throw new InvalidOperationException("no memory for the context") : Backend());

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => engine.GenerateAsync(new GreedyStrategy(), Request(0)).WaitAsync(_hangGuard));
        Assert.Equal("no memory for the context", error.Message);
        Assert.Equal(0, engine.Pending);

        var next = await engine.GenerateAsync(new GreedyStrategy(), Request(0)).WaitAsync(_hangGuard);
        Assert.Equal((await StandaloneAsync(new GreedyStrategy(), Request(0))).Tokens, next.Tokens);
        Assert.Equal(2, attempts);
    }
}
