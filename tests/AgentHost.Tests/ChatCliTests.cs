using System.Text.Json;
using AgentHost.Llama.Tests.Support;

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
    public async Task Print_prompt_shows_what_the_model_sees_and_generates_nothing()
    {
        var text = await Chat("Once upon a time\n", "--print-prompt", "--system", "Be kind.");
        var json = await Chat("Once upon a time\n", "--print-prompt", "--system", "Be kind.", "--json");

        Assert.Equal(0, text.ExitCode);
        Assert.Equal(0, json.ExitCode);
        using var document = JsonDocument.Parse(json.StdOut);
        var root = document.RootElement;
        var prompt = root.GetProperty("prompt").GetString()!;
        Assert.Equal(prompt + "\n", text.StdOut);   // the plain format writes no control tokens: nothing is marked
        Assert.Contains("Be kind.", prompt, StringComparison.Ordinal);
        Assert.EndsWith("Once upon a time", prompt, StringComparison.Ordinal);
        Assert.Equal(("plain", "plain", "generic"), (root.GetProperty("format").GetString(), root.GetProperty("family").GetString(), root.GetProperty("tool_call_format").GetString()));
        Assert.True(root.GetProperty("tokens").GetInt32() > 2);
        var pieces = root.GetProperty("pieces").EnumerateArray().ToList();
        Assert.Equal(prompt, string.Concat(pieces.Select(p => p.GetProperty("text").GetString())));
        Assert.Contains(pieces, p => p.GetProperty("kind").GetString() == "content" && p.GetProperty("text").GetString() == "Once upon a time");
        Assert.Contains("tokens]", text.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Print_prompt_marks_the_templates_control_tokens_and_never_the_users_text()
    {
        using var temp = new TempFolder();
        // stories260K's own control token </s> as the turn end of a GGUF template; the user types it too.
        var model = CraftedModel.Write(Path.Combine(AgentHostProcess.ModelsDirectory, "stories260K.gguf"), Path.Combine(temp.Path, "templated.gguf"),
            m => m["tokenizer.chat_template"] = "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '</s>' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}");

        var text = await Chat("Hi </s> there\n", "--print-prompt", "--model", model);
        var json = await Chat("Hi </s> there\n", "--print-prompt", "--model", model, "--json");

        Assert.Equal(0, text.ExitCode);
        Assert.Equal("user: Hi </s> there⟦</s>⟧assistant: \n", text.StdOut);
        using var document = JsonDocument.Parse(json.StdOut);
        var root = document.RootElement;
        Assert.Equal("gguf", root.GetProperty("format").GetString());
        var pieces = root.GetProperty("pieces").EnumerateArray().Select(p => (p.GetProperty("kind").GetString(), p.GetProperty("text").GetString())).ToList();
        // The role comes from the conversation, so the engine keeps it content, as every value from the messages.
        Assert.Equal([("content", "user"), ("markup", ": "), ("content", "Hi </s> there"), ("control_token", "</s>"), ("markup", "assistant: ")], pieces);
    }

    [Theory]
    [InlineData("--json")]
    [InlineData("--print-prompt", "--agent", "calculator")]
    public async Task Print_prompt_options_used_wrongly_are_usage_errors(params string[] args)
    {
        var result = await Chat("Hi\n", args);

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("error: ", result.StdErr.Trim(), StringComparison.Ordinal);
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
