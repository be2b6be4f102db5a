using System.Text.Json;

namespace AgentHost.Tests;

/// <summary><c>generate --strategy cautious</c>, run as a real process on stories260K.</summary>
public sealed class CautiousCliTests
{
    // One compute thread: on the shared 2-core test machine a second OpenMP thread spin-waits against other
    // processes and can slow decoding by orders of magnitude. Results do not depend on the thread count.
    private static readonly Dictionary<string, string> _oneThread = new()
    {
        ["AGENTHOST_AgentHost__Models__stories260k__Threads"] = "1",
        ["AGENTHOST_AgentHost__Models__stories260k__BatchThreads"] = "1",
    };

    private static Task<AgentHostProcess.Result> Run(params string[] args) => AgentHostProcess.RunAsync(args, _oneThread);

    [Fact]
    public async Task Generate_json_carries_the_branching_steps_and_the_cautious_statistics()
    {
        var result = await Run("generate", "--prompt", "Once upon a time", "--strategy", "cautious", "--max-trials", "4", "--seed", "1",
            "--max-tokens", "60", "--json");

        Assert.Equal(0, result.ExitCode);
        var root = JsonDocument.Parse(result.StdOut).RootElement;
        Assert.Equal("cautious", root.GetProperty("strategy").GetString());
        Assert.Equal(60, root.GetProperty("token_ids").GetArrayLength());

        var stats = root.GetProperty("stats");
        Assert.Equal(1UL, stats.GetProperty("seed").GetUInt64());
        var branching = stats.GetProperty("branching_steps").GetDouble();
        var trials = stats.GetProperty("trials").GetDouble();
        var sampled = stats.GetProperty("tokens_sampled").GetDouble();
        var kept = stats.GetProperty("tokens_kept").GetDouble();
        var parallel = stats.GetProperty("trial_decode_calls").GetDouble();
        var sequential = stats.GetProperty("sequential_decode_calls").GetDouble();
        Assert.True(branching > 0);
        Assert.InRange(trials, 2 * branching, 4 * branching);
        Assert.Equal(60, kept);
        Assert.True(sampled > kept);
        Assert.InRange(parallel, 1, sequential - 1);
        Assert.True(stats.GetProperty("decode_calls").GetInt32() > parallel);

        var details = root.GetProperty("details").EnumerateArray().ToList();
        Assert.Equal(branching, details.Count);
        var trialSum = 0;
        foreach (var step in details)
        {
            var n = step.GetProperty("trials").GetInt32();
            trialSum += n;
            Assert.InRange(n, 2, 4);
            Assert.InRange(step.GetProperty("winner").GetInt32(), 0, n - 1);
            Assert.True(step.GetProperty("entropy").GetDouble() > 0.01);
            Assert.True(step.GetProperty("winner_perplexity").GetDouble() >= 1);
            Assert.InRange(step.GetProperty("position").GetInt32(), 0, 59);
            Assert.InRange(step.GetProperty("winner_length").GetInt32(), 1, step.GetProperty("length_limit").GetInt32());
            Assert.False(step.TryGetProperty("trial_tokens", out _));
        }
        Assert.Equal(trials, trialSum);
    }

    [Fact]
    public async Task Verbose_logs_the_punctuation_stop_ids_once_at_debug_level()
    {
        var result = await Run("generate", "--prompt", "Once upon a time", "--strategy", "cautious", "--seed", "1", "--max-tokens", "20", "--verbose");

        Assert.Equal(0, result.ExitCode);
        var lines = result.StdErr.Split('\n').Where(l => l.Contains("punctuation stop ids", StringComparison.Ordinal)).ToList();
        var line = Assert.Single(lines);
        Assert.StartsWith("dbug: AgentHost.Llama.Decoding.Strategies.CautiousStrategy", line);
        // The running-text rule: '.', ',' and the newline byte token, not the bare space piece (410) of the code's rule.
        Assert.Contains("(running-text) '.'=426 ','=432 '\\n'=13 '?'=450 '!'=443 ':'=467 ';'=474 ')'=488 ']'=509 '}'=128.", line);
    }

    [Theory]
    [InlineData("cautious", "--max-trials", "0", "Option 'cautious_max_trials' must be a whole number from 1 to 255, not '0'.")]
    [InlineData("cautious", "--trial-formula", "beam", "Option 'cautious_formula' must be 'code' or 'paper', not 'beam'.")]
    [InlineData("cautious", "--stop-rule", "first", "Option 'cautious_stop_rule' must be 'running-text' or 'paper-code', not 'first'.")]
    [InlineData("cautious", "--cautious-sampler", "hf", "Option 'cautious_sampler' must be 'paper' or 'llama', not 'hf'.")]
    [InlineData("cautious", "--max-trials", "16", "Cautious decoding with 16 trials needs 17 sequences, but model stories260k has Sequences = 16")]
    [InlineData("greedy", "--max-trials", "3", "--max-trials does not apply to strategy greedy")]
    public async Task Bad_cautious_options_are_one_clear_error_with_exit_code_2(string strategy, string option, string value, string expected)
    {
        var result = await Run("generate", "--prompt", "Once upon a time", "--strategy", strategy, option, value);

        Assert.Equal(2, result.ExitCode);
        var lines = result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var line = Assert.Single(lines);
        Assert.StartsWith("error: ", line);
        Assert.Contains(expected, line);
        Assert.DoesNotContain("   at ", result.StdErr);
        Assert.Equal("", result.StdOut);
    }
}
