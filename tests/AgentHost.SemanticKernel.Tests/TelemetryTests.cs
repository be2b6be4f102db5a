using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using AgentHost.Extensions.AI;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace AgentHost.SemanticKernel.Tests;

/// <summary>
/// The libraries' telemetry on the real model: the AgentHost meter (read through the container's IMeterFactory, as an
/// OpenTelemetry exporter or the server's /metrics reads it) and one gen_ai span per request.
/// </summary>
[Collection(ChatModelCollection.Name)]
public sealed class TelemetryTests : IDisposable
{
    private readonly ChatModelFixture _fixture;
    private static readonly ChatMessage[] _story = [new(ChatRole.User, "Tell me a story about a cat.")];

    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly ConcurrentQueue<Activity> _spans = new();
    private readonly ActivityListener _listener;
    private readonly Activity _test = new("telemetry-test");

    public TelemetryTests(ChatModelFixture fixture)
    {
        _fixture = fixture;
        // Only the spans under this test's own activity: other tests generate in parallel.
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == AgentHostTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (activity.TraceId == _test.TraceId)
                    _spans.Enqueue(activity);
            },
        };
        ActivitySource.AddActivityListener(_listener);
        _test.SetIdFormat(ActivityIdFormat.W3C);
        _test.Start();
    }

    private IMeterFactory Meters => _services.GetRequiredService<IMeterFactory>();

    private MetricCollector<T> Collect<T>(string instrument)
        where T : struct => new(Meters, AgentHostTelemetry.MeterName, instrument);

    [Fact]
    public async Task AChatIsOneSpanWithGenAiAttributesAndItsTokensAndTimingsInTheMeter()
    {
        using var prompt = Collect<long>(AgentHostTelemetry.PromptTokens);
        using var completion = Collect<long>(AgentHostTelemetry.CompletionTokens);
        using var generations = Collect<long>(AgentHostTelemetry.Generations);
        using var active = Collect<long>(AgentHostTelemetry.ActiveGenerations);
        using var firstToken = Collect<double>(AgentHostTelemetry.TimeToFirstToken);
        using var duration = Collect<double>(AgentHostTelemetry.RequestDuration);
        using var client = new LlamaChatClient(_fixture.Model, new LlamaChatClientOptions { PromptCache = false }, meterFactory: Meters);

        var response = await client.GetResponseAsync(_story, new ChatOptions { MaxOutputTokens = 12 });

        Assert.Equal(response.Usage!.InputTokenCount, Sum(prompt));
        Assert.Equal(12, Sum(completion));
        var generation = Assert.Single(generations.GetMeasurementSnapshot());
        Assert.True(generation.ContainsTags(new KeyValuePair<string, object?>("model", "stories260K"), new("operation", "chat"), new("strategy", "greedy")));
        Assert.Equal(0, Sum(active));
        var ttft = Assert.Single(firstToken.GetMeasurementSnapshot());
        var total = Assert.Single(duration.GetMeasurementSnapshot());
        Assert.InRange(ttft.Value, double.Epsilon, total.Value);
        Assert.Equal("chat", ttft.Tags["gen_ai.operation.name"]);

        var span = Assert.Single(_spans);
        Assert.Equal("chat stories260K", span.DisplayName);
        Assert.Equal(ActivityStatusCode.Unset, span.Status);
        Assert.Equal("chat", span.GetTagItem("gen_ai.operation.name"));
        Assert.Equal("stories260K", span.GetTagItem("gen_ai.request.model"));
        Assert.Equal(12, span.GetTagItem("gen_ai.request.max_tokens"));
        Assert.Equal((int)response.Usage.InputTokenCount!, span.GetTagItem("gen_ai.usage.input_tokens"));
        Assert.Equal(12, span.GetTagItem("gen_ai.usage.output_tokens"));
        Assert.Equal(["length"], Assert.IsType<string[]>(span.GetTagItem("gen_ai.response.finish_reasons")));
    }

    [Fact]
    public async Task StreamingCompletionAndEmbeddingsAreCountedUnderTheirOperations()
    {
        using var generations = Collect<long>(AgentHostTelemetry.Generations);
        using var prompt = Collect<long>(AgentHostTelemetry.PromptTokens);
        using var client = new LlamaChatClient(_fixture.Model, new LlamaChatClientOptions { PromptCache = false }, meterFactory: Meters);
        using var embedder = new LlamaEmbeddingGenerator(_fixture.Model, Meters);

        UsageDetails? streamed = null;
        await foreach (var update in client.GetStreamingResponseAsync(_story, new ChatOptions { MaxOutputTokens = 6 }))
            streamed ??= update.Contents.OfType<UsageContent>().FirstOrDefault()?.Details;
        var completed = await client.CompleteAsync("Once upon a time", new ChatOptions { MaxOutputTokens = 6 });
        var embedded = await embedder.GenerateAsync(["The cat sat.", "A dog ran."]);

        Assert.Equal(["chat", "text_completion", "embeddings"], generations.GetMeasurementSnapshot().Select(m => m.Tags["operation"]));
        Assert.Equal(streamed!.InputTokenCount + completed.Stats.PromptTokens + embedded.Usage!.InputTokenCount, Sum(prompt));
        Assert.Equal(["chat stories260K", "text_completion stories260K", "embeddings stories260K"], _spans.Select(s => s.DisplayName));
        Assert.Equal(["length"], Assert.IsType<string[]>(_spans.First().GetTagItem("gen_ai.response.finish_reasons")));
    }

    [Fact]
    public async Task ASpeculativeGenerationReportsItsForwardsAndMeanAcceptedTokens()
    {
        using var forwards = Collect<long>(AgentHostTelemetry.SpeculativeForwards);
        using var tokens = Collect<long>(AgentHostTelemetry.SpeculativeTokens);
        using var mat = Collect<double>(AgentHostTelemetry.SpeculativeMat);
        using var client = new LlamaChatClient(_fixture.Model, new LlamaChatClientOptions { PromptCache = false }, meterFactory: Meters);

        var response = await client.GetResponseAsync(_story, new ChatOptions
        {
            MaxOutputTokens = 24,
            AdditionalProperties = new() { [ChatRequestMapper.StrategyKey] = "recycling" },
        });

        var stats = Assert.IsType<Dictionary<string, double>>(response.AdditionalProperties![LlamaChatClient.StatsKey]);
        Assert.Equal(stats["forwards"], Sum(forwards));
        Assert.Equal(response.Usage!.OutputTokenCount, Sum(tokens));
        Assert.Equal(Sum(tokens) / (double)Sum(forwards), Assert.Single(mat.GetMeasurementSnapshot()).Value, 6);
        Assert.Equal("recycling", Assert.Single(_spans).GetTagItem("agenthost.decoding.strategy"));
    }

    [Fact]
    public async Task AFailedRequestIsAnErrorSpanAndLeavesNoActiveGeneration()
    {
        using var active = Collect<long>(AgentHostTelemetry.ActiveGenerations);
        using var generations = Collect<long>(AgentHostTelemetry.Generations);
        using var client = new LlamaChatClient(_fixture.Model, meterFactory: Meters);

        await Assert.ThrowsAnyAsync<Exception>(() => client.GetResponseAsync(_story, new ChatOptions
        {
            AdditionalProperties = new() { [ChatRequestMapper.StrategyKey] = "beam" },
        }));

        Assert.Equal(ActivityStatusCode.Error, Assert.Single(_spans).Status);
        Assert.Equal(0, Sum(active));
        Assert.Empty(generations.GetMeasurementSnapshot());
    }

    public void Dispose()
    {
        _test.Stop();
        _listener.Dispose();
        _services.Dispose();
    }

    private static long Sum(MetricCollector<long> collector) => collector.GetMeasurementSnapshot().Sum(m => m.Value);
}
