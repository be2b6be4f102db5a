namespace AgentHost.Tests;

/// <summary>The chat verb, fed from a pipe like a script would.</summary>
public sealed class ChatCliTests
{
    private static Task<AgentHostProcess.Result> Chat(string input, params string[] args)
        => AgentHostProcess.RunAsync(["chat", .. args], input: input);

    [Fact]
    public async Task Each_input_line_gets_a_streamed_reply_and_the_second_turn_hits_the_prompt_cache()
    {
        var result = await Chat("Tell me a story.\n/stats\nWhat happened next?\n/stats\n", "--max-tokens", "20");

        Assert.Equal(0, result.ExitCode);
        var replies = result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, replies.Length);
        Assert.All(replies, r => Assert.False(string.IsNullOrWhiteSpace(r)));
        var stats = result.StdErr.Split('\n').Where(l => l.StartsWith("[strategy greedy")).ToList();
        Assert.Equal(2, stats.Count);
        Assert.Contains("(0 from cache)", stats[0]);
        Assert.DoesNotContain("(0 from cache)", stats[1]);
        Assert.Contains("reply 20 tokens", stats[1]);
    }

    [Fact]
    public async Task Slash_commands_switch_strategy_reset_and_exit()
    {
        var result = await Chat("/strategy lookup\nTell me a story.\n/stats\n/strategy beam\n/bogus\n/reset\nHello.\n/stats\n/exit\nNever read.\n", "--max-tokens", "10");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("[strategy: lookup]", result.StdErr);
        Assert.Contains("[strategy lookup, prompt", result.StdErr);
        Assert.Contains("error: Unknown decoding strategy 'beam'", result.StdErr);
        Assert.Contains("error: unknown command '/bogus'", result.StdErr);
        Assert.Contains("[conversation reset]", result.StdErr);
        // After /reset the history is empty again, so nothing is shared with the cached conversation but its start.
        Assert.Equal(2, result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task A_knob_of_another_strategy_is_a_usage_error()
    {
        var result = await Chat("Hello.\n", "--lookup-ngram", "2");

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("error: --lookup-ngram does not apply to strategy greedy", result.StdErr);
        Assert.Equal("", result.StdOut);
    }

    [Fact]
    public async Task A_configured_formats_folder_overrides_the_built_in_template()
    {
        var folder = Directory.CreateTempSubdirectory("agenthost-formats-").FullName;
        try
        {
            // Whatever the conversation, this plain format renders the same story opening.
            File.WriteAllText(Path.Combine(folder, "plain.scriban"), "Once upon a time");
            var result = await AgentHostProcess.RunAsync(["chat", "--max-tokens", "5"],
                new Dictionary<string, string> { ["AGENTHOST_AgentHost__ChatFormatsDir"] = folder }, input: "Tell me about dogs.\n/stats\n");

            Assert.Equal(0, result.ExitCode);
            Assert.Contains("prompt 5 tokens", result.StdErr);
            Assert.StartsWith(", there was", result.StdOut);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
