using System.Diagnostics;
using System.Globalization;
using AgentHost.Cli;
using AgentHost.Llama.Models;
using AgentHost.Extensions.AI;
using Microsoft.Extensions.AI;

namespace AgentHost.Bench;

/// <summary>
/// <c>bench chat</c>: a multi-turn conversation through <see cref="LlamaChatClient"/>, run with the prompt
/// cache on and off in alternation. Per turn it reports the prompt size, the tokens actually prefilled
/// and the turn latency (medians over the runs), and the totals: what the cache saves.
/// </summary>
internal static class ChatBench
{
    private static readonly string[] _turns =
    [
        "Tell me a story about a little dog.",
        "What did the dog find in the garden?",
        "Who came to help the dog?",
        "What did they do together?",
        "How did the story end?",
        "Tell me another story about a cat.",
        "What did the cat like to eat?",
        "Where did the cat sleep?",
    ];

    public static int MaxTurns => _turns.Length;

    public static async Task RunAsync(LlamaModel model, int turns, int runs, int warmup, int maxTokens, string? jsonPath, CancellationToken cancellationToken)
    {
        Console.Error.WriteLine($"bench chat: {model.Name}, {turns} turns x {maxTokens} max tokens per reply, {runs} runs + {warmup} warm-up, greedy, cache on and off");
        var cached = new List<TurnSample[]>();
        var uncached = new List<TurnSample[]>();
        for (var run = 0; run < warmup + runs; run++)
        {
            var on = await RunConversationAsync(model, turns, maxTokens, promptCache: true, cancellationToken);
            var off = await RunConversationAsync(model, turns, maxTokens, promptCache: false, cancellationToken);
            if (run >= warmup)
            {
                cached.Add(on);
                uncached.Add(off);
            }
            Console.Error.WriteLine(run >= warmup ? $"  run {run - warmup + 1}/{runs} done" : $"  warm-up {run + 1}/{warmup} done");
        }

        var rows = Enumerable.Range(0, turns).Select(t => new TurnRow(
            t + 1,
            cached[0][t].PromptTokens,
            cached[0][t].PrefilledTokens,
            uncached[0][t].PrefilledTokens,
            Statistics.Median(cached.Select(r => r[t].Latency.TotalMilliseconds)),
            Statistics.Median(uncached.Select(r => r[t].Latency.TotalMilliseconds)),
            cached.All(r => r[t].Text == uncached[0][t].Text))).ToList();

        var ci = CultureInfo.InvariantCulture;
        Console.WriteLine($"{"turn",4} {"prompt tokens",14} {"prefilled (cache)",18} {"prefilled (no cache)",21} {"ms (cache)",11} {"ms (no cache)",14} {"speedup",8} {"same reply",11}");
        foreach (var row in rows)
        {
            Console.WriteLine(string.Format(ci, "{0,4} {1,14:N0} {2,18:N0} {3,21:N0} {4,11:F1} {5,14:F1} {6,7:F2}x {7,11}",
                row.Turn, row.PromptTokens, row.PrefilledWithCache, row.PrefilledWithoutCache, row.MillisecondsWithCache, row.MillisecondsWithoutCache,
                row.MillisecondsWithoutCache / row.MillisecondsWithCache, row.SameReply ? "yes" : "no"));
        }
        var prefilledOn = rows.Sum(r => r.PrefilledWithCache);
        var prefilledOff = rows.Sum(r => r.PrefilledWithoutCache);
        var msOn = rows.Sum(r => r.MillisecondsWithCache);
        var msOff = rows.Sum(r => r.MillisecondsWithoutCache);
        Console.WriteLine(string.Format(ci, "total prefill tokens: {0:N0} with the cache, {1:N0} without ({2:P0} saved); conversation time {3:F2}x faster with the cache",
            prefilledOn, prefilledOff, 1 - (double)prefilledOn / prefilledOff, msOff / msOn));

        if (jsonPath is not null)
        {
            var report = new Dictionary<string, object?>
            {
                ["model"] = model.Name,
                ["scenario"] = "chat",
                ["turns"] = turns,
                ["max_tokens"] = maxTokens,
                ["runs"] = runs,
                ["warmup"] = warmup,
                ["rows"] = rows,
                ["total_prefilled_with_cache"] = prefilledOn,
                ["total_prefilled_without_cache"] = prefilledOff,
                ["conversation_speedup"] = Math.Round(msOff / msOn, 3),
            };
            await File.WriteAllTextAsync(jsonPath, JsonOutput.Serialize(report), cancellationToken);
            Console.Error.WriteLine($"wrote {jsonPath}");
        }
    }

    private static async Task<TurnSample[]> RunConversationAsync(LlamaModel model, int turns, int maxTokens, bool promptCache, CancellationToken cancellationToken)
    {
        // A fresh client each time: a new slot whose cache starts empty, like a new conversation.
        using var client = new LlamaChatClient(model, new LlamaChatClientOptions { PromptCache = promptCache });
        var history = new List<ChatMessage>();
        var samples = new TurnSample[turns];
        var options = new ChatOptions { MaxOutputTokens = maxTokens };
        for (var t = 0; t < turns; t++)
        {
            history.Add(new ChatMessage(ChatRole.User, _turns[t]));
            var clock = Stopwatch.StartNew();
            var response = await client.GetResponseAsync(history, options, cancellationToken);
            clock.Stop();
            history.AddRange(response.Messages);
            var usage = response.Usage!;
            samples[t] = new TurnSample((int)usage.InputTokenCount!, (int)(usage.InputTokenCount - (usage.CachedInputTokenCount ?? 0))!, clock.Elapsed, response.Text);
        }
        return samples;
    }


    private sealed record TurnSample(int PromptTokens, int PrefilledTokens, TimeSpan Latency, string Text);

    private sealed record TurnRow(int Turn, int PromptTokens, int PrefilledWithCache, int PrefilledWithoutCache, double MillisecondsWithCache, double MillisecondsWithoutCache, bool SameReply);
}
