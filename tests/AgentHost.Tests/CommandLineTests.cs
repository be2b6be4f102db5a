using System.Text.Json;

namespace AgentHost.Tests;

/// <summary>The command line's shape: groups, help printed from the options' values, strategy flags, shell completion.</summary>
public sealed class CommandLineTests
{
    private static Task<AgentHostProcess.Result> Run(params string[] args) => AgentHostProcess.RunAsync(args);

    [Theory]
    [InlineData("analyze", "rollouts", "contrast")]
    [InlineData("toolkens", "corpus", "train", "eval")]
    [InlineData("bench", "strategies", "chat", "server")]
    [InlineData("models", "pull", "list", "rm", "show")]
    public async Task A_group_help_lists_its_subcommands_and_exits_0(string group, params string[] subcommands)
    {
        var result = await Run(group, "--help");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("", result.StdErr);
        foreach (var subcommand in subcommands)
            Assert.Matches($"(?m)^  {subcommand} ", result.StdOut);
    }

    [Fact]
    public async Task Help_prints_each_default_from_the_value_the_verb_uses()
    {
        var result = await Run("generate", "--help");

        Assert.Equal(0, result.ExitCode);
        var sampling = new Llama.Decoding.SamplingOptions();
        Assert.Matches(@"--max-tokens <N>\s+Most tokens to generate\. \[default: 256\]", result.StdOut);
        Assert.Matches($@"--temperature <T>\s+Sampling temperature\. \[default: {sampling.Temperature.ToString(System.Globalization.CultureInfo.InvariantCulture)}\]", result.StdOut);
        Assert.Matches($@"--top-k <K>\s+Top-k, 0 = off\. \[default: {sampling.TopK}\]", result.StdOut);
        Assert.Matches(@"--strategy <NAME>\s+Decoding strategy: greedy, sample, recycling, lookup, cautious, toolkens\. \[default: greedy\]", result.StdOut);
    }

    [Fact]
    public async Task A_strategy_flag_derives_from_its_engine_key_and_keeps_its_short_alias()
    {
        string[] common = ["generate", "--prompt", "Once upon a time", "--max-tokens", "12", "--strategy", "recycling", "--json"];

        var derived = await Run([.. common, "--recycling-tree", "chain-2"]);
        var alias = await Run([.. common, "--tree", "chain-2"]);

        Assert.Equal(0, derived.ExitCode);
        Assert.Equal(0, alias.ExitCode);
        var derivedRoot = JsonDocument.Parse(derived.StdOut).RootElement;
        Assert.Equal(JsonDocument.Parse(alias.StdOut).RootElement.GetProperty("token_ids").ToString(), derivedRoot.GetProperty("token_ids").ToString());
        Assert.Equal("chain-2", derivedRoot.GetProperty("details").GetProperty("template").GetString());
    }

    [Fact]
    public async Task A_strategy_flag_that_does_not_apply_is_named_as_typed()
    {
        var result = await Run("generate", "--prompt", "Once", "--cautious-max-trials", "3");

        Assert.Equal(2, result.ExitCode);
        Assert.Equal("error: --cautious-max-trials does not apply to strategy greedy.", result.StdErr.Trim());
    }

    [Theory]
    [InlineData("bash", "complete -o default -F _agenthost_complete agenthost")]
    [InlineData("zsh", "compdef _agenthost_complete agenthost")]
    public async Task Completion_prints_a_script_that_asks_the_suggest_directive(string shell, string registration)
    {
        var result = await Run("completion", shell);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("agenthost \"[suggest:", result.StdOut, StringComparison.Ordinal);
        Assert.Contains(registration, result.StdOut, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("agenthost an", "analyze")]
    [InlineData("agenthost generate --stra", "--strategy")]
    [InlineData("agenthost generate --strategy rec", "recycling")]
    [InlineData("agenthost bench s", "server")]
    public async Task The_suggest_directive_completes_verbs_options_and_values(string line, string expected)
    {
        var result = await Run($"[suggest:{line.Length}]", line);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains(expected, result.StdOut.Split('\n', StringSplitOptions.TrimEntries));
    }

    [Fact]
    public async Task An_unknown_shell_is_one_usage_error()
    {
        var result = await Run("completion", "fish");

        Assert.Equal(2, result.ExitCode);
        Assert.Equal("error: completion: the shell must be bash or zsh, not 'fish'.", result.StdErr.Trim());
    }

    [Fact]
    public async Task Bench_chat_is_a_subcommand_that_reports_its_turns()
    {
        var result = await Run("bench", "chat", "--turns", "1", "--runs", "1", "--warmup", "0", "--max-tokens", "2");

        Assert.True(result.ExitCode == 0, result.StdErr);
        Assert.Contains("bench chat:", result.StdErr, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^\s+1\s", result.StdOut);
    }

    [Fact]
    public async Task A_bench_option_of_another_scenario_is_an_unknown_option()
    {
        var result = await Run("bench", "chat", "--strategies", "greedy");

        Assert.Equal(2, result.ExitCode);
        Assert.Equal("error: unknown option '--strategies' for 'bench chat' (see 'bench chat --help').", result.StdErr.Trim());
    }

    [Fact]
    public void The_server_never_imports_the_command_line()
    {
        // A download in 'serve' reports through the provider's progress to the log, never a console bar of the CLI's.
        var root = Llama.Tests.TestModels.RepositoryRoot();
        Assert.NotNull(root);
        var server = Path.Combine(root, "src", "AgentHost", "Server");

        var offenders = Directory.EnumerateFiles(server, "*.cs").Where(f => File.ReadAllText(f).Contains("AgentHost.Cli", StringComparison.Ordinal)).ToList();

        Assert.Empty(offenders);
    }
}
