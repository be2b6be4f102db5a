using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using AgentHost.Cli;
using AgentHost.Extensions.AI;
using AgentHost.Llama.Models;
using AgentHost.Server;
using Microsoft.Extensions.AI;

namespace AgentHost.Bench;

/// <summary>
/// <c>bench server</c>: the OpenAI-compatible server on loopback, measured from real HTTP clients.
/// Throughput is generated tokens per second summed over 1, 4 and 16 concurrent clients; the HTTP path's
/// overhead is the 1-client throughput against the same requests made in-process on the same client
/// (same model and prompt cache), measured in the same run. Continuous batching on and off are measured on a
/// server each, with the cost curve C(b) of batched decodes, which bounds what many clients can reach.
/// </summary>
internal static class ServerBench
{
    private static readonly int[] _clientCounts = [1, 4, 16];

    /// <summary>Measures each of <paramref name="batchingModes"/> (continuous batching on / off) on a server of its own, one after the other.</summary>
    public static async Task RunAsync(AgentHostOptions options, string modelName, IReadOnlyList<string> prompts, int runs, int warmup, int maxTokens, IReadOnlyList<bool> batchingModes, string? jsonPath, CancellationToken cancellationToken)
    {
        var reports = new List<Dictionary<string, object?>>();
        foreach (var batching in batchingModes)
            reports.Add(await MeasureServerAsync(options, modelName, prompts, runs, warmup, maxTokens, batching, cancellationToken));
        if (jsonPath is not null)
        {
            var report = new Dictionary<string, object?>
            {
                ["model"] = modelName,
                ["scenario"] = "server",
                ["prompts"] = prompts,
                ["max_tokens"] = maxTokens,
                ["runs"] = runs,
                ["warmup"] = warmup,
                ["servers"] = reports,
            };
            await File.WriteAllTextAsync(jsonPath, JsonOutput.Serialize(report), cancellationToken);
            Console.Error.WriteLine($"wrote {jsonPath}");
        }
    }

    private static async Task<Dictionary<string, object?>> MeasureServerAsync(AgentHostOptions options, string modelName, IReadOnlyList<string> prompts, int runs, int warmup, int maxTokens, bool batching, CancellationToken cancellationToken)
    {
        if (options.FindRemote(modelName) is { } remote)
            throw remote.Settings.NeedsLocalModel(remote.Name, "bench");
        var serverOptions = new ServerOptions { Urls = "http://127.0.0.1:0", Models = modelName, MaxQueue = 64, Batching = batching };
        await using var app = AgentHostServer.Build(options, serverOptions);
        await app.StartAsync(cancellationToken);
        using var http = new HttpClient { BaseAddress = new Uri(AgentHostServer.Addresses(app)[0]), Timeout = TimeSpan.FromMinutes(10) };
        var hosted = await app.Services.GetRequiredService<ModelHost>().GetAsync(modelName, cancellationToken);
        var local = hosted.Local("bench server");
        var model = local.Model;
        // With batching on, the same requests in-process on a plain slot too: what one client costs without the batcher.
        using var slot = batching ? new LlamaChatClient(model, new LlamaChatClientOptions { ContinuousBatching = false, FormatsDirectory = options.FormatsDirectory() }) : null;
        Console.Error.WriteLine($"bench server: {hosted.Name} on {http.BaseAddress}, {prompts.Count} prompts x {maxTokens} tokens per client, batching {(batching ? "on" : "off")}, {runs} runs + {warmup} warm-up, greedy");

        var inProcess = new List<double>();
        var onSlot = new List<double>();
        var overHttp = _clientCounts.ToDictionary(c => c, _ => new List<double>());
        var costs = CostCurve.Sizes(model).ToDictionary(b => b, _ => new List<double>());
        for (var run = 0; run < warmup + runs; run++)
        {
            var direct = await MeasureInProcessAsync(local, prompts, maxTokens, cancellationToken);
            var plain = slot is null ? 0 : await MeasureInProcessAsync(slot, prompts, maxTokens, cancellationToken);
            var viaHttp = new Dictionary<int, double>();
            foreach (var clients in _clientCounts)
                viaHttp[clients] = await MeasureAsync(clients, prompts, (_, i) => PostAsync(http, hosted.Name, prompts[i], maxTokens, cancellationToken));
            // Decodes at about the middle of a bench request: a chat prompt and half a reply.
            var cost = await CostCurve.MeasureAsync(model, position: 32 + maxTokens / 2, steps: 8, cancellationToken);
            if (run >= warmup)
            {
                inProcess.Add(direct);
                if (slot is not null)
                    onSlot.Add(plain);
                foreach (var (clients, value) in viaHttp)
                    overHttp[clients].Add(value);
                foreach (var (b, ms) in cost)
                    costs[b].Add(ms);
            }
            Console.Error.WriteLine(run >= warmup ? $"  run {run - warmup + 1}/{runs} done" : $"  warm-up {run + 1}/{warmup} done");
        }

        var ci = CultureInfo.InvariantCulture;
        var baseline = Statistics.Median(inProcess);
        var one = Statistics.Median(overHttp[1]);
        var c = costs.ToDictionary(p => p.Key, p => Statistics.Median(p.Value) / Statistics.Median(costs[1]));
        Console.WriteLine($"batching {(batching ? "on" : "off")}");
        var table = Cli.CliConsole.Table("path", ">clients", ">median tok/s", ">vs in-process", ">vs 1 client");
        table.Row("in-process", "1", baseline.ToString("N0", ci), 1.0.ToString("F2", ci) + "x", "-");
        double? slotBaseline = onSlot.Count > 0 ? Statistics.Median(onSlot) : null;
        if (slotBaseline is { } plainSpeed)
            table.Row("in-process, no batcher", "1", plainSpeed.ToString("N0", ci), (plainSpeed / baseline).ToString("F2", ci) + "x", "-");
        foreach (var clients in _clientCounts)
        {
            var value = Statistics.Median(overHttp[clients]);
            table.Row("http", clients.ToString(ci), value.ToString("N0", ci), (value / baseline).ToString("F2", ci) + "x", (value / one).ToString("F2", ci) + "x");
        }
        Cli.CliConsole.WriteOut(table);
        Console.WriteLine(string.Format(ci, "HTTP overhead at 1 client: {0:P1} of in-process throughput", 1 - one / baseline));
        if (slotBaseline is { } plainBaseline)
            Console.WriteLine(string.Format(ci, "1 client batched over HTTP against in-process without the batcher: {0:F2}x", one / plainBaseline));
        Console.WriteLine("cost of a decode of b sequences x 1 token: " + string.Join(", ", c.Select(p => string.Format(ci, "C({0}) = {1:F2}", p.Key, p.Value))) +
            string.Format(ci, " (C(1) = {0:F1} ms)", Statistics.Median(costs[1])));
        var largest = _clientCounts[^1];
        double? ofLimit = null;
        if (c.TryGetValue(largest, out var cLargest))
        {
            var limit = largest / cLargest * one;
            ofLimit = Statistics.Median(overHttp[largest]) / limit;
            Console.WriteLine(string.Format(ci, "{0} clients: {1:P0} of the limit {0} / C({0}) x 1 client = {2:N0} tok/s", largest, ofLimit, limit));
        }
        Console.WriteLine();

        await app.StopAsync(CancellationToken.None);
        return new Dictionary<string, object?>
        {
            ["batching"] = batching,
            ["in_process_tokens_per_second"] = inProcess,
            ["in_process_no_batcher_tokens_per_second"] = slot is null ? null : onSlot,
            ["http_tokens_per_second"] = overHttp.ToDictionary(p => p.Key.ToString(ci), p => p.Value),
            ["http_overhead_at_1_client"] = Math.Round(1 - one / baseline, 4),
            ["decode_ms_by_batch"] = costs.ToDictionary(p => p.Key.ToString(ci), p => p.Value),
            ["cost_by_batch"] = c.ToDictionary(p => p.Key.ToString(ci), p => Math.Round(p.Value, 3)),
            ["share_of_limit_at_16_clients"] = ofLimit is { } share ? Math.Round(share, 3) : null,
        };
    }

    /// <summary>One in-process client sends every prompt in turn through <paramref name="client"/>; returns tokens per second.</summary>
    private static Task<double> MeasureInProcessAsync(IChatClient client, IReadOnlyList<string> prompts, int maxTokens, CancellationToken cancellationToken)
        => MeasureAsync(1, prompts, async (_, i) =>
        {
            var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, prompts[i])], new ChatOptions { MaxOutputTokens = maxTokens }, cancellationToken);
            return (int)response.Usage!.OutputTokenCount!;
        });

    /// <summary>
    /// Every client sends every prompt in turn (client c starts at prompt c; <paramref name="send"/> gets the client and the
    /// prompt's index and returns the tokens generated); returns generated tokens per second of wall time over all clients.
    /// </summary>
    internal static async Task<double> MeasureAsync(int clients, IReadOnlyList<string> prompts, Func<int, int, Task<int>> send)
    {
        var clock = Stopwatch.StartNew();
        var tokens = await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            var total = 0;
            for (var i = 0; i < prompts.Count; i++)
                total += await send(c, (i + c) % prompts.Count);
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
