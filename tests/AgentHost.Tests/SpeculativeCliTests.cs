using System.Text.Json;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests;

namespace AgentHost.Tests;

public sealed class SpeculativeCliTests
{
    [Theory]
    [InlineData("recycling", "--tree", "chain-2")]
    [InlineData("lookup", "--lookup-draft", "2")]
    public async Task Speculative_generate_reports_its_statistics_and_matches_greedy(string strategy, string option, string value)
    {
        var greedy = await AgentHostProcess.RunAsync(["generate", "--prompt", "Once upon a time", "--max-tokens", "60", "--json"]);
        var result = await AgentHostProcess.RunAsync(["generate", "--prompt", "Once upon a time", "--max-tokens", "60", "--strategy", strategy, option, value, "--json"]);

        Assert.Equal(0, result.ExitCode);
        var root = JsonDocument.Parse(result.StdOut).RootElement;
        Assert.Equal(strategy, root.GetProperty("strategy").GetString());
        // Verification batches sum in another order than greedy's single-token decodes: NearTie's rule.
        using var model = LlamaModel.Load("stories260k", TestModels.Stories260K, new ModelSettings { ContextSize = 256, Threads = TestModels.Threads, BatchThreads = TestModels.Threads });
        using var session = await model.CreateSessionAsync();
        await NearTie.AssertEqualUpToNearTieAsync(session, model.Tokenize("Once upon a time", addBos: true),
            TokenIds(JsonDocument.Parse(greedy.StdOut).RootElement), TokenIds(root), strategy);
        var stats = root.GetProperty("stats");
        Assert.True(stats.GetProperty("forwards").GetInt32() > 0);
        Assert.True(stats.GetProperty("forwards").GetInt32() < 60);
        Assert.True(root.GetProperty("details").GetProperty("mat").GetDouble() >= 1.0);
    }

    private static int[] TokenIds(JsonElement root) => [.. root.GetProperty("token_ids").EnumerateArray().Select(t => t.GetInt32())];

    [Theory]
    [InlineData("--strategy", "recycling", "--tree", "bogus", "Unknown tree template 'bogus'")]
    [InlineData("--strategy", "greedy", "--tree", "chain-2", "--tree does not apply to strategy greedy")]
    [InlineData("--strategy", "lookup", "--lookup-ngram", "0", "Option 'lookup_ngram' must be a whole number from 1 to 16, not '0'")]
    [InlineData("--strategy", "greedy", "--temperature", "0.5", "'--temperature' does not apply to decoding strategy 'greedy'")]
    public async Task Bad_strategy_options_are_one_clear_error(string a, string b, string c, string d, string expected)
    {
        var result = await AgentHostProcess.RunAsync(["generate", "--prompt", "Once", a, b, c, d]);

        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(expected, line);
        Assert.DoesNotContain("   at ", result.StdErr);
    }
}
