using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using AgentHost.Cli;
using AgentHost.Extensions.AI;
using AgentHost.Llama.Models;
using AgentHost.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AgentHost.Bench;

/// <summary>
/// The one engine's scenarios of <c>bench server</c> (<c>--mix</c>, <c>--shared-prefix</c>), on one loopback server
/// with continuous batching, every ratio taken within a run:
/// <list type="bullet">
/// <item><c>--mix</c>: 16 clients of mixed strategies (greedy, sample, recycling, lookup, cautious, a JSON-grammar
/// request) against 16 greedy clients; each recycling/lookup output against the serial greedy output of its prompt;
/// one recycling client over HTTP against the same requests in-process.</item>
/// <item><c>--shared-prefix</c>: 8 agents with one long system prompt (instructions and a tool list) and distinct user
/// turns: the first request alone (cold), then the other 7 at once; cached prompt tokens and time to first token.</item>
/// </list>
/// </summary>
internal static class EngineBench
{
    /// <summary>The request kinds of the mixed clients, client c taking kind c mod the count.</summary>
    public static readonly string[] MixKinds = ["greedy", "sample", "recycling", "lookup", "cautious", "json"];

    private const int Clients = 16;
    private const int Agents = 8;

    public static async Task RunMixAsync(AgentHostOptions options, string modelName, IReadOnlyList<string> prompts, int runs, int warmup, int maxTokens, string? jsonPath, CancellationToken cancellationToken)
    {
        await using var server = await BenchServer.StartAsync(options, modelName, cancellationToken);
        var http = server.Http;
        Console.Error.WriteLine($"bench server --mix: {server.Name} on {http.BaseAddress}, {prompts.Count} prompts x {maxTokens} tokens per client, {Clients} clients, {runs} runs + {warmup} warm-up");

        // The reference: every prompt greedy, alone (a batch of one decodes exactly as serial greedy).
        var reference = new List<string>();
        foreach (var prompt in prompts)
            reference.Add((await PostAsync(http, server.Name, "greedy", prompt, 0, maxTokens, cancellationToken)).Text);

        var greedy = new List<double>();
        var mixed = new List<double>();
        var ratios = new List<double>();
        var recyclingHttp = new List<double>();
        var recyclingLocal = new List<double>();
        var oneClientRatios = new List<double>();
        int equal = 0, compared = 0;
        var mismatches = new List<string>();
        for (var run = 0; run < warmup + runs; run++)
        {
            var allGreedy = await ServerBench.MeasureAsync(Clients, prompts, async (_, i) => (await PostAsync(http, server.Name, "greedy", prompts[i], i, maxTokens, cancellationToken)).Tokens);
            var outputs = new List<(string Kind, int Prompt, string Text)>();
            var mix = await ServerBench.MeasureAsync(Clients, prompts, async (client, i) =>
            {
                var kind = MixKinds[client % MixKinds.Length];
                var reply = await PostAsync(http, server.Name, kind, prompts[i], i, maxTokens, cancellationToken);
                lock (outputs)
                    outputs.Add((kind, i, reply.Text));
                return reply.Tokens;
            });
            // One client, recycling: over HTTP and in-process on the server's own client, interleaved by run.
            var viaHttp = await ServerBench.MeasureAsync(1, prompts, async (_, i) => (await PostAsync(http, server.Name, "recycling", prompts[i], i, maxTokens, cancellationToken)).Tokens);
            var inProcess = await ServerBench.MeasureAsync(1, prompts, async (_, i) =>
            {
                var chatOptions = new ChatOptions { MaxOutputTokens = maxTokens, AdditionalProperties = new() { [ChatRequestMapper.StrategyKey] = "recycling" } };
                var response = await server.Local.GetResponseAsync([new ChatMessage(ChatRole.User, prompts[i])], chatOptions, cancellationToken);
                return (int)response.Usage!.OutputTokenCount!;
            });
            if (run >= warmup)
            {
                greedy.Add(allGreedy);
                mixed.Add(mix);
                ratios.Add(mix / allGreedy);
                recyclingHttp.Add(viaHttp);
                recyclingLocal.Add(inProcess);
                oneClientRatios.Add(viaHttp / inProcess);
                foreach (var (kind, i, text) in outputs.Where(o => o.Kind is "recycling" or "lookup"))
                {
                    compared++;
                    if (text == reference[i])
                        equal++;
                    else if (mismatches.Count < 4)
                        mismatches.Add($"{kind} on prompt {i + 1}: \"{Clip(text)}\" vs greedy \"{Clip(reference[i])}\"");
                }
            }
            Console.Error.WriteLine(run >= warmup ? $"  run {run - warmup + 1}/{runs} done" : $"  warm-up {run + 1}/{warmup} done");
        }

        var ci = CultureInfo.InvariantCulture;
        var table = CliConsole.Table("clients", ">median tok/s", ">vs 16 greedy");
        table.Row($"{Clients} greedy", Statistics.Median(greedy).ToString("N0", ci), "1.00x");
        table.Row($"{Clients} mixed ({string.Join(", ", MixKinds)})", Statistics.Median(mixed).ToString("N0", ci), Statistics.Median(ratios).ToString("F2", ci) + "x");
        CliConsole.WriteOut(table);
        Console.WriteLine(string.Format(ci, "mixed vs greedy, per run: {0} (median {1:F2}x; the ratio of medians {2:F2}x)",
            string.Join(", ", ratios.Select(r => r.ToString("F2", ci) + "x")), Statistics.Median(ratios), Statistics.Median(mixed) / Statistics.Median(greedy)));
        Console.WriteLine($"recycling/lookup outputs equal to serial greedy: {equal}/{compared}");
        foreach (var mismatch in mismatches)
            Console.WriteLine("  differs: " + mismatch);
        Console.WriteLine(string.Format(ci, "one client, recycling over HTTP vs in-process: {0:N0} vs {1:N0} tok/s, {2:F2}x (per run: {3})",
            Statistics.Median(recyclingHttp), Statistics.Median(recyclingLocal), Statistics.Median(oneClientRatios), string.Join(", ", oneClientRatios.Select(r => r.ToString("F2", ci) + "x"))));

        if (jsonPath is not null)
        {
            await WriteJsonAsync(jsonPath, new Dictionary<string, object?>
            {
                ["model"] = server.Name,
                ["scenario"] = "server --mix",
                ["prompts"] = prompts,
                ["max_tokens"] = maxTokens,
                ["runs"] = runs,
                ["warmup"] = warmup,
                ["kinds"] = MixKinds,
                ["greedy_16_tokens_per_second"] = greedy,
                ["mixed_16_tokens_per_second"] = mixed,
                ["mixed_vs_greedy"] = ratios,
                ["outputs_equal_to_greedy"] = equal,
                ["outputs_compared"] = compared,
                ["recycling_1_http_tokens_per_second"] = recyclingHttp,
                ["recycling_1_in_process_tokens_per_second"] = recyclingLocal,
                ["recycling_http_vs_in_process"] = oneClientRatios,
            }, cancellationToken);
        }
    }

    public static async Task RunSharedPrefixAsync(AgentHostOptions options, string modelName, int runs, int warmup, int maxTokens, int prefixTokens, string? jsonPath, CancellationToken cancellationToken)
    {
        await using var server = await BenchServer.StartAsync(options, modelName, cancellationToken);
        var http = server.Http;
        Console.Error.WriteLine($"bench server --shared-prefix: {server.Name} on {http.BaseAddress}, {Agents} agents, a system prompt of at least {prefixTokens} tokens, {maxTokens} tokens each, {runs} runs + {warmup} warm-up");

        var firstTtft = new List<double>();
        var laterTtft = new List<double>();
        var firstShare = new List<double>();
        var laterShare = new List<double>();
        var promptTokens = 0L;
        for (var run = 0; run < warmup + runs; run++)
        {
            // A new system prompt each run, so that its first request finds nothing cached.
            var system = SystemPrompt(run, prefixTokens, server.Local.Model);
            var first = await StreamAsync(http, server.Name, system, UserTurn(0), maxTokens, cancellationToken);
            var others = await Task.WhenAll(Enumerable.Range(1, Agents - 1).Select(a => Task.Run(() => StreamAsync(http, server.Name, system, UserTurn(a), maxTokens, cancellationToken))));
            if (run >= warmup)
            {
                promptTokens = first.PromptTokens;
                firstTtft.Add(first.FirstToken.TotalMilliseconds);
                firstShare.Add((double)first.CachedTokens / first.PromptTokens);
                foreach (var other in others)
                {
                    laterTtft.Add(other.FirstToken.TotalMilliseconds);
                    laterShare.Add((double)other.CachedTokens / other.PromptTokens);
                }
            }
            Console.Error.WriteLine(run >= warmup ? $"  run {run - warmup + 1}/{runs} done" : $"  warm-up {run + 1}/{warmup} done");
        }

        var ci = CultureInfo.InvariantCulture;
        var table = CliConsole.Table("requests", ">prompt tokens", ">cached share (median)", ">min", ">TTFT ms (median)");
        table.Row("first (cold)", promptTokens.ToString(ci), Statistics.Median(firstShare).ToString("P1", ci), firstShare.Min().ToString("P1", ci), Statistics.Median(firstTtft).ToString("F0", ci));
        table.Row($"the other {Agents - 1}, at once", promptTokens.ToString(ci), Statistics.Median(laterShare).ToString("P1", ci), laterShare.Min().ToString("P1", ci), Statistics.Median(laterTtft).ToString("F0", ci));
        CliConsole.WriteOut(table);
        Console.WriteLine(string.Format(ci, "time to first token after sharing vs the cold first request: {0:F2}x", Statistics.Median(laterTtft) / Statistics.Median(firstTtft)));

        if (jsonPath is not null)
        {
            await WriteJsonAsync(jsonPath, new Dictionary<string, object?>
            {
                ["model"] = server.Name,
                ["scenario"] = "server --shared-prefix",
                ["agents"] = Agents,
                ["prompt_tokens"] = promptTokens,
                ["max_tokens"] = maxTokens,
                ["runs"] = runs,
                ["warmup"] = warmup,
                ["first_ttft_ms"] = firstTtft,
                ["later_ttft_ms"] = laterTtft,
                ["first_cached_share"] = firstShare,
                ["later_cached_share"] = laterShare,
            }, cancellationToken);
        }
    }

    /// <summary>An agent's instructions and tool list of at least <paramref name="tokens"/> tokens; <paramref name="run"/> makes it new.</summary>
    private static string SystemPrompt(int run, int tokens, LlamaModel model)
    {
        var text = new StringBuilder($"Session {run + 1}. You are a helpful agent. Answer briefly and call a tool when it helps.\nTools:\n");
        string[] verbs = ["find", "read", "count", "list", "check", "send", "sort", "add"];
        string[] things = ["file", "story", "word", "friend", "ball", "cake", "park", "house"];
        for (var i = 0; model.Tokenize(text.ToString(), false).Length < tokens; i++)
        {
            var name = $"{verbs[i % verbs.Length]}_{things[(i / verbs.Length) % things.Length]}";
            text.Append(CultureInfo.InvariantCulture, $"- {name}{i}: {verbs[i % verbs.Length]} the {things[(i / verbs.Length) % things.Length]} the user names; argument \"name\" (text).\n");
        }
        return text.ToString();
    }

    private static string UserTurn(int agent) => $"Agent {agent + 1} asks: tell me a story about a {(new[] { "cat", "dog", "bird", "girl", "boy", "tree", "ball", "cake" })[agent % 8]}.";

    private static string Clip(string text) => text.Length <= 40 ? text : text[..40] + "...";

    private sealed record Reply(int Tokens, string Text, long PromptTokens, long CachedTokens, TimeSpan FirstToken);

    /// <summary>One chat request of a mix kind; sampling kinds get a seed per prompt, so runs repeat.</summary>
    private static async Task<Reply> PostAsync(HttpClient http, string model, string kind, string prompt, int promptIndex, int maxTokens, CancellationToken cancellationToken)
    {
        var body = new Dictionary<string, object>
        {
            ["model"] = model,
            ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = prompt } },
            ["max_tokens"] = maxTokens,
            [ChatRequestMapper.StrategyKey] = kind == "json" ? "greedy" : kind,
        };
        if (kind is "sample" or "cautious")
        {
            body["temperature"] = 0.8;
            body["seed"] = promptIndex + 1;
        }
        if (kind == "json")
            body["response_format"] = new Dictionary<string, string> { ["type"] = "json_object" };
        using var document = await SendAsync(http, body, cancellationToken);
        var root = document.RootElement;
        return new Reply(root.GetProperty("usage").GetProperty("completion_tokens").GetInt32(),
            root.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString() ?? "", 0, 0, TimeSpan.Zero);
    }

    /// <summary>A streamed greedy agent turn: the time to its first content piece and its usage (cached prompt tokens).</summary>
    private static async Task<Reply> StreamAsync(HttpClient http, string model, string system, string user, int maxTokens, CancellationToken cancellationToken)
    {
        var body = new Dictionary<string, object>
        {
            ["model"] = model,
            ["messages"] = new[]
            {
                new Dictionary<string, string> { ["role"] = "system", ["content"] = system },
                new Dictionary<string, string> { ["role"] = "user", ["content"] = user },
            },
            ["max_tokens"] = maxTokens,
            [ChatRequestMapper.StrategyKey] = "greedy",
            ["stream"] = true,
            ["stream_options"] = new Dictionary<string, bool> { ["include_usage"] = true },
        };
        var clock = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Json(body) };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"The server answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        TimeSpan? firstToken = null;
        var text = new StringBuilder();
        long prompt = 0, cached = 0, completion = 0;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]")
                continue;
            using var chunk = JsonDocument.Parse(line.AsMemory(6));
            var root = chunk.RootElement;
            if (root.TryGetProperty("choices", out var choices) && choices.GetArrayLength() > 0
                && choices[0].GetProperty("delta").TryGetProperty("content", out var content) && content.GetString() is { Length: > 0 } piece)
            {
                firstToken ??= clock.Elapsed;
                text.Append(piece);
            }
            if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
            {
                prompt = usage.GetProperty("prompt_tokens").GetInt64();
                completion = usage.GetProperty("completion_tokens").GetInt64();
                cached = usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt64();
            }
        }
        return new Reply((int)completion, text.ToString(), prompt, cached, firstToken ?? clock.Elapsed);
    }

    private static async Task<JsonDocument> SendAsync(HttpClient http, Dictionary<string, object> body, CancellationToken cancellationToken)
    {
        using var response = await http.PostAsync("/v1/chat/completions", Json(body), cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"The server answered {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text);
    }

    private static StringContent Json(Dictionary<string, object> body)
        => new(JsonSerializer.Serialize(body), Encoding.UTF8, new MediaTypeHeaderValue("application/json"));

    private static async Task WriteJsonAsync(string path, Dictionary<string, object?> report, CancellationToken cancellationToken)
    {
        await File.WriteAllTextAsync(path, JsonOutput.Serialize(report), cancellationToken);
        Console.Error.WriteLine($"wrote {path}");
    }

    /// <summary>A loopback server with continuous batching and its model's in-process client.</summary>
    private sealed class BenchServer : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private BenchServer(WebApplication app, HttpClient http, string name, LlamaChatClient local)
        {
            _app = app;
            Http = http;
            Name = name;
            Local = local;
        }

        public HttpClient Http { get; }

        public string Name { get; }

        public LlamaChatClient Local { get; }

        public static async Task<BenchServer> StartAsync(AgentHostOptions options, string modelName, CancellationToken cancellationToken)
        {
            if (options.FindRemote(modelName) is { } remote)
                throw remote.Settings.NeedsLocalModel(remote.Name, "bench");
            var app = AgentHostServer.Build(options, new ServerOptions { Urls = "http://127.0.0.1:0", Models = modelName, MaxQueue = 256, Batching = true });
            await app.StartAsync(cancellationToken);
            var http = new HttpClient { BaseAddress = new Uri(AgentHostServer.Addresses(app)[0]), Timeout = TimeSpan.FromMinutes(30) };
            var hosted = await app.Services.GetRequiredService<ModelHost>().GetAsync(modelName, cancellationToken);
            return new BenchServer(app, http, hosted.Name, hosted.Local("bench server"));
        }

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await _app.StopAsync(CancellationToken.None);
            await _app.DisposeAsync();
        }
    }
}
