using System.Diagnostics;
using AgentHost.Extensions.AI;
using AgentHost.Llama.Tests;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace AgentHost.Tests;

/// <summary>
/// OpenTelemetry's SDK with its in-memory exporter, configured as the server configures it (the container's meters only),
/// sees a chat request of a registered client: its gen_ai span and its token counters.
/// </summary>
public sealed class TelemetryExportTests
{
    [Fact]
    public async Task An_in_memory_exporter_sees_the_gen_ai_span_and_the_token_counters_of_a_chat()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["AgentHost:ModelsDir"] = TestModels.Directory,
            ["AgentHost:AllowDownload"] = "false",
            ["AgentHost:Models:stories260k:File"] = "stories260K.gguf",
            ["AgentHost:Models:stories260k:Threads"] = "1",
            ["AgentHost:Models:stories260k:BatchThreads"] = "1",
        }).Build();
        var spans = new List<Activity>();
        var metrics = new List<Metric>();
        // A started host, as the server is: starting it subscribes the container's metrics listeners.
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddAgentHost(configuration).AddLlamaChatClient("stories260k");
        builder.Services.AddMetrics(rules => rules.EnableMetrics(AgentHostTelemetry.MeterName, null, null, MeterScope.Local));
        builder.Services.AddOpenTelemetry()
            .WithTracing(t => t.AddSource(AgentHostTelemetry.ActivitySourceName).AddInMemoryExporter(spans))
            .WithMetrics(m => m.AddInMemoryExporter(metrics));
        using var host = builder.Build();
        await host.StartAsync();
        var container = host.Services;
        var tracer = container.GetRequiredService<TracerProvider>();
        var meter = container.GetRequiredService<MeterProvider>();

        // Other tests generate in parallel: this test's spans are those of its own trace.
        // Recorded, so that the SDK's parent-based sampler keeps its children.
        using var test = new Activity("telemetry-export-test").SetIdFormat(ActivityIdFormat.W3C);
        test.ActivityTraceFlags = ActivityTraceFlags.Recorded;
        test.Start();
        var response = await container.GetRequiredService<IChatClient>().GetResponseAsync([new ChatMessage(ChatRole.User, "Tell me a story.")], new ChatOptions { MaxOutputTokens = 12 });
        test.Stop();
        Assert.True(tracer.ForceFlush());
        Assert.True(meter.ForceFlush());

        var span = Assert.Single(spans, s => s.TraceId == test.TraceId && s.OperationName == "chat stories260k");
        Assert.Equal("chat", span.GetTagItem("gen_ai.operation.name"));
        Assert.Equal("stories260k", span.GetTagItem("gen_ai.request.model"));
        Assert.Equal((int)response.Usage!.InputTokenCount!, span.GetTagItem("gen_ai.usage.input_tokens"));
        Assert.Equal(12, span.GetTagItem("gen_ai.usage.output_tokens"));
        Assert.Equal(0, span.GetTagItem("gen_ai.usage.cache_read.input_tokens"));
        Assert.IsType<double>(span.GetTagItem("gen_ai.response.time_to_first_chunk"));
        Assert.Equal("greedy", span.GetTagItem("agenthost.decoding.strategy"));

        // The container's meter only: other tests' clients never reach this exporter.
        Assert.Equal(12, Sum(metrics, AgentHostTelemetry.CompletionTokens));
        Assert.Equal(response.Usage.InputTokenCount, Sum(metrics, AgentHostTelemetry.PromptTokens));
        Assert.Equal(1, HistogramCount(metrics, AgentHostTelemetry.TimeToFirstToken));
        Assert.Equal(1, HistogramCount(metrics, AgentHostTelemetry.TimePerOutputToken));
    }

    [Fact]
    public async Task The_cli_exports_its_spans_and_metrics_over_otlp_when_configured()
    {
        // A stand-in collector on loopback: real Kestrel recording what the exporter posts.
        var received = new System.Collections.Concurrent.ConcurrentQueue<(string Path, string? ContentType, long Length)>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var collector = builder.Build();
        collector.MapPost("/v1/{signal}", async (Microsoft.AspNetCore.Http.HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            received.Enqueue((context.Request.Path, context.Request.ContentType, body.Length));
        });
        await collector.StartAsync();
        var address = AgentHost.Server.AgentHostServer.Addresses(collector)[0];

        var result = await AgentHostProcess.RunAsync(["chat", "--max-tokens", "4"], new Dictionary<string, string>
        {
            ["AGENTHOST_Telemetry__Otlp__Endpoint"] = address,
            ["AGENTHOST_Telemetry__Otlp__Protocol"] = "http/protobuf",
        }, input: "Hello.\n");

        Assert.True(result.ExitCode == 0, result.StdErr);
        Assert.Equal("", result.StdErr);
        Assert.Contains(received, r => r.Path == "/v1/traces" && r.ContentType == "application/x-protobuf" && r.Length > 0);
        Assert.Contains(received, r => r.Path == "/v1/metrics" && r.ContentType == "application/x-protobuf" && r.Length > 0);
    }

    private static long Sum(List<Metric> metrics, string name)
    {
        long sum = 0;
        foreach (var point in Last(metrics, name).GetMetricPoints())
            sum += point.GetSumLong();
        return sum;
    }

    private static long HistogramCount(List<Metric> metrics, string name)
    {
        long count = 0;
        foreach (var point in Last(metrics, name).GetMetricPoints())
            count += point.GetHistogramCount();
        return count;
    }

    // The exporter appends a snapshot per collection; the last one holds the totals.
    private static Metric Last(List<Metric> metrics, string name) => metrics.Last(m => m.Name == name);
}
