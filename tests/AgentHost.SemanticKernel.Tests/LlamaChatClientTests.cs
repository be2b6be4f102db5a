using System.Text;
using AgentHost.Llama;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests;
using AgentHost.Extensions.AI;
using Microsoft.Extensions.AI;

namespace AgentHost.SemanticKernel.Tests;

/// <summary>IChatClient conformance on a real model (stories260K): what any MEAI client must do, and AgentHost's extras.</summary>
[Collection(ChatModelCollection.Name)]
public sealed class LlamaChatClientTests(ChatModelFixture fixture)
{
    private static readonly ChatMessage[] _story = [new(ChatRole.User, "Tell me a story about a cat.")];

    private LlamaChatClient NewClient(LlamaChatClientOptions? options = null) => new(fixture.Model, options);

    [Fact]
    public async Task ReturnsAssistantTextWithUsageAndFinishReason()
    {
        using var client = NewClient();
        var response = await client.GetResponseAsync(_story, new ChatOptions { MaxOutputTokens = 40 });

        Assert.Equal(ChatRole.Assistant, Assert.Single(response.Messages).Role);
        Assert.False(string.IsNullOrWhiteSpace(response.Text));
        Assert.Equal("stories260K", response.ModelId);
        Assert.NotNull(response.ResponseId);
        Assert.NotNull(response.FinishReason);

        var usage = Assert.IsType<UsageDetails>(response.Usage);
        var promptTokens = client.Format.Render(_story, addGenerationPrompt: true).Tokenize(fixture.Model).Length;
        Assert.Equal(promptTokens, usage.InputTokenCount);
        Assert.InRange(usage.OutputTokenCount!.Value, 1, 40);
        Assert.Equal(usage.InputTokenCount + usage.OutputTokenCount, usage.TotalTokenCount);
        Assert.Equal("greedy", response.AdditionalProperties![ChatRequestMapper.StrategyKey]);
    }

    [Fact]
    public async Task StreamingTextEqualsNonStreamingTextUnderGreedy()
    {
        using var client = NewClient(new LlamaChatClientOptions { PromptCache = false });
        var options = new ChatOptions { MaxOutputTokens = 60 };
        var whole = await client.GetResponseAsync(_story, options);

        var text = new StringBuilder();
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync(_story, options))
        {
            updates.Add(update);
            text.Append(update.Text);
        }

        Assert.Equal(whole.Text, text.ToString());
        Assert.True(updates.Count > 2, "the reply should arrive in several pieces");
        Assert.All(updates, u => Assert.Equal(ChatRole.Assistant, u.Role));
        var last = updates[^1];
        Assert.Equal(whole.FinishReason, last.FinishReason);
        var usage = Assert.Single(last.Contents.OfType<UsageContent>()).Details;
        Assert.Equal(whole.Usage!.OutputTokenCount, usage.OutputTokenCount);
        Assert.Equal(whole.Usage.InputTokenCount, usage.InputTokenCount);

        // The MEAI helper that folds updates gives the same response text.
        Assert.Equal(whole.Text, updates.ToChatResponse().Text);
    }

    [Fact]
    public async Task MaxOutputTokensEndsTheReplyWithFinishReasonLength()
    {
        using var client = NewClient();
        var response = await client.GetResponseAsync(_story, new ChatOptions { MaxOutputTokens = 5 });

        Assert.Equal(5, response.Usage!.OutputTokenCount);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
    }

    [Fact]
    public async Task StopSequenceEndsTheReplyBeforeIt()
    {
        using var client = NewClient();
        var free = await client.GetResponseAsync(_story, new ChatOptions { MaxOutputTokens = 60 });
        var words = free.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(words.Length > 4, $"need a longer reply to pick a stop word from: '{free.Text}'");
        var stop = words[3];
        var cut = free.Text.IndexOf(stop, StringComparison.Ordinal);

        var stopped = await client.GetResponseAsync(_story, new ChatOptions { MaxOutputTokens = 60, StopSequences = [stop] });

        Assert.Equal(free.Text[..cut], stopped.Text);
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);
    }

    [Fact]
    public async Task MultiTurnConversationReusesThePromptCache()
    {
        using var client = NewClient();
        var history = new List<ChatMessage> { new(ChatRole.User, "Once upon a time there was a dog.") };
        var first = await client.GetResponseAsync(history, new ChatOptions { MaxOutputTokens = 30 });
        history.AddRange(first.Messages);
        history.Add(new ChatMessage(ChatRole.User, "What did the dog do next?"));

        var second = await client.GetResponseAsync(history, new ChatOptions { MaxOutputTokens = 30 });

        var cached = second.Usage!.CachedInputTokenCount!.Value;
        // The whole first prompt and the reply are shared (the reply's last token was never decoded, and a
        // re-tokenised reply may differ at its edge).
        var firstTurn = first.Usage!.InputTokenCount + first.Usage.OutputTokenCount;
        Assert.True(cached >= firstTurn - 2, $"cached {cached} of {second.Usage.InputTokenCount}; the first turn was {firstTurn} tokens");
        Assert.True(cached < second.Usage.InputTokenCount);
        var stats = (Dictionary<string, double>)second.AdditionalProperties![LlamaChatClient.StatsKey]!;
        Assert.Equal(cached, stats["cached_prompt_tokens"]);
        Assert.False(string.IsNullOrWhiteSpace(second.Text));
    }

    [Fact]
    public async Task PromptCacheOffDecodesEveryPromptToken()
    {
        using var client = NewClient(new LlamaChatClientOptions { PromptCache = false });
        await client.GetResponseAsync(_story, new ChatOptions { MaxOutputTokens = 10 });
        var again = await client.GetResponseAsync(_story, new ChatOptions { MaxOutputTokens = 10 });

        Assert.Equal(0, again.Usage!.CachedInputTokenCount);
    }

    [Fact]
    public async Task CachedTurnGivesTheSameGreedyReplyAsAFreshPrefill()
    {
        var history = new List<ChatMessage> { new(ChatRole.User, "Lily had a red ball.") };
        using var cached = NewClient();
        var first = await cached.GetResponseAsync(history, new ChatOptions { MaxOutputTokens = 20 });
        history.AddRange(first.Messages);
        history.Add(new ChatMessage(ChatRole.User, "Where did the ball go?"));
        var withCache = await cached.GetResponseAsync(history, new ChatOptions { MaxOutputTokens = 40 });

        using var fresh = NewClient(new LlamaChatClientOptions { PromptCache = false });
        var withoutCache = await fresh.GetResponseAsync(history, new ChatOptions { MaxOutputTokens = 40 });

        Assert.True(withCache.Usage!.CachedInputTokenCount > 0);
        Assert.Equal(withoutCache.Text, withCache.Text);
    }

    [Theory]
    [MemberData(nameof(StrategyNames))]
    public async Task EveryDecodingStrategyIsSelectableThroughChatOptions(string strategy)
    {
        using var client = NewClient();
        var options = new ChatOptions { MaxOutputTokens = 20, AdditionalProperties = new() { [ChatRequestMapper.StrategyKey] = strategy } };
        if (DecodingStrategies.Find(strategy).Sampling == SamplingUse.Always)
            options.Seed = 7;

        var response = await client.GetResponseAsync(_story, options);

        Assert.Equal(strategy, response.AdditionalProperties![ChatRequestMapper.StrategyKey]);
        Assert.False(string.IsNullOrWhiteSpace(response.Text));
        Assert.True(response.Usage!.OutputTokenCount > 0);
    }

    // Strategies that run on a name alone (tool tokens also need a head file and tools: see the tool-token tests).
    public static TheoryData<string> StrategyNames() => new(DecodingStrategies.All.Where(d => !d.Options.Any(o => o.Required)).Select(d => d.Name));

    [Fact]
    public async Task StrategyKnobsTravelInAdditionalProperties()
    {
        using var client = NewClient();
        var options = new ChatOptions
        {
            MaxOutputTokens = 30,
            AdditionalProperties = new() { [ChatRequestMapper.StrategyKey] = "recycling", ["recycling_tree"] = "chain-2" },
        };

        var response = await client.GetResponseAsync(_story, options);

        var stats = (Dictionary<string, double>)response.AdditionalProperties![LlamaChatClient.StatsKey]!;
        Assert.Equal("recycling", response.AdditionalProperties[ChatRequestMapper.StrategyKey]);
        Assert.True(stats["forwards"] > 0);
        Assert.True(stats["forwards"] <= response.Usage!.OutputTokenCount);
    }

    [Fact]
    public async Task AKnobOfAnotherStrategyIsRefused()
    {
        using var client = NewClient();
        var options = new ChatOptions { AdditionalProperties = new() { [ChatRequestMapper.StrategyKey] = "greedy", ["recycling_tree"] = "chain-2" } };

        var error = await Assert.ThrowsAsync<AgentHostException>(() => client.GetResponseAsync(_story, options));
        Assert.Contains("recycling_tree", error.Message);
    }

    [Theory]
    [InlineData("recycling", "recycling_matrix")]
    [InlineData("greedy", "recycling_matrix")]
    [InlineData("toolkens", "toolkens_head")]
    [InlineData("greedy", "toolkens_head")]
    public async Task AClientThatRefusesFileOptionsNeverTouchesTheNamedPath(string strategy, string key)
    {
        using var client = NewClient(new LlamaChatClientOptions { AllowFileOptions = false });
        var folder = Directory.CreateTempSubdirectory("agenthost-file-option-").FullName;
        var target = Path.Combine(folder, "sub", "target.bin");
        try
        {
            var options = new ChatOptions { MaxOutputTokens = 8, AdditionalProperties = new() { [ChatRequestMapper.StrategyKey] = strategy, [key] = target } };

            var error = await Assert.ThrowsAsync<AgentHostException>(() => client.GetResponseAsync(_story, options));
            var streamed = await Assert.ThrowsAsync<AgentHostException>(async () => { await foreach (var _ in client.GetStreamingResponseAsync(_story, options)) { } });
            var completed = await Assert.ThrowsAsync<AgentHostException>(() => client.CompleteAsync("Once upon a time", options));

            Assert.All(new[] { error, streamed, completed }, e => Assert.Contains($"'{key}' names a file", e.Message));
            Assert.Empty(Directory.EnumerateFileSystemEntries(folder));
            Assert.False((await client.GetResponseAsync(_story, new ChatOptions { MaxOutputTokens = 4 })).Text.Length == 0);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task TheHostsRecyclingMatrixFileIsUsedWhenTheRequestNamesNone()
    {
        var folder = Directory.CreateTempSubdirectory("agenthost-matrix-").FullName;
        var matrix = Path.Combine(folder, "model.recycling-matrix");
        try
        {
            using var client = NewClient(new LlamaChatClientOptions { AllowFileOptions = false, RecyclingMatrixFile = matrix });
            var options = new ChatOptions { MaxOutputTokens = 16, AdditionalProperties = new() { [ChatRequestMapper.StrategyKey] = "recycling" } };

            await client.GetResponseAsync(_story, options);

            Assert.Equal([matrix], Directory.GetFileSystemEntries(folder));
            Assert.True(new FileInfo(matrix).Length > 0);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [InlineData("min_p", "0.2")]
    [InlineData("repeat_penalty", "1.3")]
    public async Task ASamplingOptionWithoutAStrategySelectsSampleAndGreedyRefusesIt(string key, string value)
    {
        using var client = NewClient();
        var chosen = new ChatOptions { MaxOutputTokens = 8, Seed = null, AdditionalProperties = new() { [key] = value } };
        var refused = new ChatOptions { MaxOutputTokens = 8, AdditionalProperties = new() { [key] = value, [ChatRequestMapper.StrategyKey] = "greedy" } };
        var invalid = new ChatOptions { MaxOutputTokens = 8, AdditionalProperties = new() { [key] = "-5" } };

        var response = await client.GetResponseAsync(_story, chosen);
        var error = await Assert.ThrowsAsync<AgentHostException>(() => client.GetResponseAsync(_story, refused));
        await Assert.ThrowsAsync<AgentHostException>(() => client.GetResponseAsync(_story, invalid));

        Assert.Equal("sample", response.AdditionalProperties![ChatRequestMapper.StrategyKey]);
        Assert.Contains($"'{key}' does not apply to decoding strategy 'greedy'", error.Message);
    }

    [Fact]
    public async Task AnUnknownStrategyIsRefusedNamingTheKnownOnes()
    {
        using var client = NewClient();
        var options = new ChatOptions { AdditionalProperties = new() { [ChatRequestMapper.StrategyKey] = "beam" } };

        var error = await Assert.ThrowsAsync<AgentHostException>(() => client.GetResponseAsync(_story, options));
        Assert.Contains("greedy", error.Message);
    }

    [Fact]
    public async Task TemperatureZeroIsGreedyAndSeededSamplingRepeats()
    {
        using var client = NewClient();
        var greedy = await client.GetResponseAsync(_story, new ChatOptions { MaxOutputTokens = 30 });
        var zero = await client.GetResponseAsync(_story, new ChatOptions { MaxOutputTokens = 30, Temperature = 0 });
        Assert.Equal(greedy.Text, zero.Text);
        Assert.Equal("greedy", zero.AdditionalProperties![ChatRequestMapper.StrategyKey]);

        var sampled = new ChatOptions { MaxOutputTokens = 30, Temperature = 1.2f, Seed = 42 };
        var a = await client.GetResponseAsync(_story, sampled);
        var b = await client.GetResponseAsync(_story, sampled);
        Assert.Equal("sample", a.AdditionalProperties![ChatRequestMapper.StrategyKey]);
        Assert.Equal(a.Text, b.Text);
        Assert.Equal(42UL, a.AdditionalProperties["seed"]);
    }

    [Fact]
    public async Task CancelledBeforeStartThrowsAndDoesNotBlockTheSlot()
    {
        using var client = NewClient();
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetResponseAsync(_story, null, cancelled.Token));
        var after = await client.GetResponseAsync(_story, new ChatOptions { MaxOutputTokens = 5 });
        Assert.Equal(5, after.Usage!.OutputTokenCount);
    }

    [Fact]
    public async Task CancellingAStreamMidwayStopsDecodingAndFreesTheSlot()
    {
        using var client = NewClient();
        using var cancel = new CancellationTokenSource();
        var received = 0;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync(_story, new ChatOptions { MaxOutputTokens = 500 }, cancel.Token))
            {
                if (++received == 3)
                    await cancel.CancelAsync();
            }
        });

        Assert.Equal(0, client.PendingRequests);
        var after = await client.GetResponseAsync(_story, new ChatOptions { MaxOutputTokens = 5 });
        Assert.Equal(5, after.Usage!.OutputTokenCount);
    }

    [Fact]
    public async Task AConsumerThatStopsReadingFreesTheSlot()
    {
        using var client = NewClient();
        await foreach (var update in client.GetStreamingResponseAsync(_story, new ChatOptions { MaxOutputTokens = 500 }))
            break;

        Assert.Equal(0, client.PendingRequests);
        var after = await client.GetResponseAsync(_story, new ChatOptions { MaxOutputTokens = 5 });
        Assert.Equal(5, after.Usage!.OutputTokenCount);
    }

    [Fact]
    public async Task ConcurrentRequestsEachEqualTheirSerialGreedyResultExceptAfterANearTie()
    {
        string[] openings = ["a frog", "a big tree", "a little boy named Tim", "a red car", "the sun", "a bird", "a toy box", "the sea"];
        var conversations = openings.Select(o => new[] { new ChatMessage(ChatRole.User, $"Tell me about {o}.") }).ToArray();
        var options = new ChatOptions { MaxOutputTokens = 40 };

        using var serialClient = NewClient(new LlamaChatClientOptions { PromptCache = false });
        var serial = new List<GenerationResult>();
        foreach (var conversation in conversations)
            serial.Add(Generation((await serialClient.GetResponseAsync(conversation, options)).RawRepresentation));

        using var client = NewClient(new LlamaChatClientOptions { PromptCache = false });
        var concurrent = await Task.WhenAll(conversations.Select((c, i) => Task.Run(async () =>
        {
            if (i % 2 == 0)
                return Generation((await client.GetResponseAsync(c, options)).RawRepresentation);
            var text = new StringBuilder();
            object? raw = null;
            await foreach (var update in client.GetStreamingResponseAsync(c, options))
            {
                text.Append(update.Text);
                raw = update.RawRepresentation ?? raw;
            }
            var result = Generation(raw);
            Assert.Equal(result.Text, text.ToString());
            return result;
        })));

        // Batched decoding sums in another order than a serial one: NearTie's rule says where the two may part.
        using var reference = await fixture.Model.CreateSessionAsync();
        for (var i = 0; i < conversations.Length; i++)
        {
            var prompt = client.Format.Render(conversations[i]).Tokenize(fixture.Model);
            if ((await NearTie.AssertEqualUpToNearTieAsync(reference, prompt, serial[i].Tokens, concurrent[i].Tokens, openings[i])).Exact)
                Assert.Equal(serial[i].Text, concurrent[i].Text);
        }
        Assert.True(serial.Select(r => r.Text).Distinct().Count() > 1, "different prompts should give different replies");
    }

    private static GenerationResult Generation(object? raw) => Assert.IsType<GenerationResult>(raw);

    [Fact]
    public async Task EveryStrategyDecodesInTheSharedBatchAndTheLosslessOnesEqualGreedy()
    {
        // A JSON reply of stories260K may not close within the limit: that is a finish reason here, not an error.
        using var client = NewClient(new LlamaChatClientOptions { PromptCache = false, CutOffJsonIsError = false });
        string[] strategies = ["greedy", "recycling", "lookup", "cautious", "sample"];
        ChatMessage[] conversation = [new(ChatRole.User, "Tell me about a frog.")];
        ChatOptions For(string strategy) => new()
        {
            MaxOutputTokens = 48,
            Seed = strategy is "cautious" or "sample" ? 7 : null,
            AdditionalProperties = new() { [ChatRequestMapper.StrategyKey] = strategy },
        };
        var serialGreedy = Generation((await client.GetResponseAsync(conversation, For("greedy"))).RawRepresentation);

        // All at once (sent from the model's thread, so all reach the engine before its next step), and a JSON-constrained
        // reply beside them (a grammar).
        var (json, responses) = await fixture.Model.Scheduler.RunAsync(() =>
            (client.GetResponseAsync(conversation, new ChatOptions { MaxOutputTokens = 48, ResponseFormat = ChatResponseFormat.Json }),
             strategies.Select(s => client.GetResponseAsync(conversation, For(s))).ToList()));
        var results = (await Task.WhenAll(responses)).Select(r => Generation(r.RawRepresentation)).ToList();
        Assert.StartsWith("{", (await json).Text.TrimStart(), StringComparison.Ordinal);

        Assert.Equal(strategies, results.Select(r => r.Strategy));
        Assert.All(results, r => Assert.True(r.Stats.Extra["mean_batch"] > 1, $"{r.Strategy} decoded alone"));
        using var reference = await fixture.Model.CreateSessionAsync();
        var prompt = client.Format.Render(conversation).Tokenize(fixture.Model);
        foreach (var lossless in results.Where(r => r.Strategy is "greedy" or "recycling" or "lookup"))
            await NearTie.AssertEqualUpToNearTieAsync(reference, prompt, serialGreedy.Tokens, lossless.Tokens, lossless.Strategy);
        Assert.All(results, r => Assert.True(r.Tokens.Count == 48 || r.StopReason != StopReason.MaxTokens));
        Assert.Equal(0, client.PendingRequests);
    }

    [Fact]
    public async Task ContinuousBatchingDecodesConcurrentRequestsTogether()
    {
        using var plain = NewClient(new LlamaChatClientOptions { PromptCache = false, ContinuousBatching = false });
        using var batched = NewClient();   // batching is the default
        var options = new ChatOptions { MaxOutputTokens = 30 };

        // Alone in the batch a request computes exactly what the slot path computes.
        var alone = await batched.GetResponseAsync(_story, options);
        Assert.Equal((await plain.GetResponseAsync(_story, options)).Text, alone.Text);
        Assert.Equal(1.0, MeanBatch(alone));
        var streamed = new StringBuilder();
        await foreach (var update in batched.GetStreamingResponseAsync(_story, options))
            streamed.Append(update.Text);
        Assert.Equal(alone.Text, streamed.ToString());

        string[] subjects = ["a frog", "a tree", "a boy", "a car", "the sun", "a bird", "a box", "the sea"];
        var responses = await Task.WhenAll(subjects.Select(subject => Task.Run(() =>
            batched.GetResponseAsync([new ChatMessage(ChatRole.User, $"Tell me about {subject}.")], options))));

        Assert.All(responses, r => Assert.False(string.IsNullOrWhiteSpace(r.Text)));
        Assert.All(responses, r => Assert.True(r.Usage!.OutputTokenCount == 30 || r.FinishReason == ChatFinishReason.Stop));
        var meanBatches = responses.Select(MeanBatch).ToList();
        Assert.True(meanBatches.Max() > 1, "concurrent requests should share decode steps");
        Assert.Equal(0, batched.PendingRequests);

        // A batched request may use the whole context (no longer ContextSize / Sequences), and the next turn of a
        // conversation reuses its slot's cache.
        var longPrompt = string.Join(' ', Enumerable.Repeat("the dog ran to the park", 20));
        List<ChatMessage> conversation = [new(ChatRole.User, longPrompt)];
        var first = await batched.GetResponseAsync(conversation, options);
        Assert.Equal(1.0, MeanBatch(first));
        conversation.AddRange(first.Messages);
        conversation.Add(new ChatMessage(ChatRole.User, "And then?"));
        var second = await batched.GetResponseAsync(conversation, options);
        Assert.True(second.Usage!.CachedInputTokenCount >= first.Usage!.InputTokenCount, $"cached {second.Usage.CachedInputTokenCount} of {second.Usage.InputTokenCount}");
    }

    private static double MeanBatch(ChatResponse response) => ((Dictionary<string, double>)response.AdditionalProperties![LlamaChatClient.StatsKey]!)["mean_batch"];

    [Fact]
    public void GetServiceReturnsModelMetadata()
    {
        using var client = NewClient();

        var metadata = Assert.IsType<ChatClientMetadata>(client.GetService(typeof(ChatClientMetadata)));
        Assert.Equal("stories260K", metadata.DefaultModelId);
        Assert.Equal(LlamaChatClient.ProviderName, metadata.ProviderName);
        Assert.Same(fixture.Model, client.GetService<LlamaModel>());
        Assert.Same(client, client.GetService<LlamaChatClient>());
        Assert.Null(client.GetService(typeof(ChatClientMetadata), "some-key"));
    }
}
