using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using AgentHost.Cli;
using AgentHost.Llama.Models;
using AgentHost.Server;
using Microsoft.Extensions.AI;

namespace AgentHost.Bench;

/// <summary>
/// <c>bench server</c>: the OpenAI-compatible server on loopback, measured from real HTTP clients.
/// Throughput is generated tokens per second summed over 1, 4 and 16 concurrent clients; the HTTP path's
/// overhead is the 1-client throughput against the same requests made in-process on the same client
/// (same model, slots and prompt cache), measured in the same run.
/// </summary>
internal static class ServerBench
{
    private static readonly int[] _clientCounts = [1, 4, 16];

    public static async Task RunAsync(AgentHostOptions options, string modelName, IReadOnlyList<string> prompts, int runs, int warmup, int maxTokens, int slots, bool batching, string? jsonPath, CancellationToken cancellationToken)
    {
        var serverOptions = new ServerOptions { Urls = "http://127.0.0.1:0", Slots = slots, MaxQueue = 64, Batching = batching };
        await using var app = AgentHostServer.Build(options, serverOptions);
        await app.StartAsync(cancellationToken);
        using var http = new HttpClient { BaseAddress = new Uri(AgentHostServer.Addresses(app)[0]), Timeout = TimeSpan.FromMinutes(10) };
        var hosted = await app.Services.GetRequiredService<ModelHost>().GetAsync(modelName, cancellationToken);
        Console.Error.WriteLine($"bench server: {hosted.Name} on {http.BaseAddress}, {prompts.Count} prompts x {maxTokens} tokens per client, {slots} slots, batching {(batching ? "on" : "off")}, {runs} runs + {warmup} warm-up, greedy");

        var inProcess = new List<double>();
        var overHttp = _clientCounts.ToDictionary(c => c, _ => new List<double>());
        for (var run = 0; run < warmup + runs; run++)
        {
            var direct = await MeasureAsync(1, prompts, async prompt =>
            {
                var response = await hosted.Client.GetResponseAsync([new ChatMessage(ChatRole.User, prompt)], new ChatOptions { MaxOutputTokens = maxTokens }, cancellationToken);
                return (int)response.Usage!.OutputTokenCount!;
            });
            var viaHttp = new Dictionary<int, double>();
            foreach (var clients in _clientCounts)
                viaHttp[clients] = await MeasureAsync(clients, prompts, prompt => PostAsync(http, hosted.Name, prompt, maxTokens, cancellationToken));
            if (run >= warmup)
            {
                inProcess.Add(direct);
                foreach (var (clients, value) in viaHttp)
                    overHttp[clients].Add(value);
            }
            Console.Error.WriteLine(run >= warmup ? $"  run {run - warmup + 1}/{runs} done" : $"  warm-up {run + 1}/{warmup} done");
        }

        var ci = CultureInfo.InvariantCulture;
        var baseline = Statistics.Median(inProcess);
        Console.WriteLine($"{"path",-22} {"clients",8} {"median tok/s",13} {"vs in-process",14}");
        Console.WriteLine(string.Format(ci, "{0,-22} {1,8} {2,13:N0} {3,13:F2}x", "in-process", 1, baseline, 1.0));
        foreach (var clients in _clientCounts)
            Console.WriteLine(string.Format(ci, "{0,-22} {1,8} {2,13:N0} {3,13:F2}x", "http", clients, Statistics.Median(overHttp[clients]), Statistics.Median(overHttp[clients]) / baseline));
        var overhead = 1 - Statistics.Median(overHttp[1]) / baseline;
        Console.WriteLine(string.Format(ci, "HTTP overhead at 1 client: {0:P1} of in-process throughput", overhead));

        if (jsonPath is not null)
        {
            var report = new Dictionary<string, object?>
            {
                ["model"] = hosted.Name,
                ["scenario"] = "server",
                ["prompts"] = prompts,
                ["max_tokens"] = maxTokens,
                ["slots"] = slots,
                ["batching"] = batching,
                ["runs"] = runs,
                ["warmup"] = warmup,
                ["in_process_tokens_per_second"] = inProcess,
                ["http_tokens_per_second"] = overHttp.ToDictionary(p => p.Key.ToString(ci), p => p.Value),
                ["http_overhead_at_1_client"] = Math.Round(overhead, 4),
            };
            await File.WriteAllTextAsync(jsonPath, JsonOutput.Serialize(report), cancellationToken);
            Console.Error.WriteLine($"wrote {jsonPath}");
        }
        await app.StopAsync(CancellationToken.None);
    }

    /// <summary>Every client sends every prompt in turn; returns generated tokens per second of wall time, summed over clients.</summary>
    private static async Task<double> MeasureAsync(int clients, IReadOnlyList<string> prompts, Func<string, Task<int>> send)
    {
        var clock = Stopwatch.StartNew();
        var tokens = await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            var total = 0;
            for (var i = 0; i < prompts.Count; i++)
                total += await send(prompts[(i + c) % prompts.Count]);
            return total;
        })));
        return tokens.Sum() / clock.Elapsed.TotalSeconds;
    }

    private static async Task<int> PostAsync(HttpClient http, string model, string prompt, int maxTokens, CancellationToken cancellationToken)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model"] = model,
            ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = prompt } },
            ["max_tokens"] = maxTokens,
        });
        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"), cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"The server answered {(int)response.StatusCode}: {text}");
        using var document = JsonDocument.Parse(text);
        return document.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
    }

}
