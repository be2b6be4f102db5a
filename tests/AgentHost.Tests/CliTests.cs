using System.Text.Json;

namespace AgentHost.Tests;

/// <summary>The command line, run as a real process on the real models.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("agenthost-cli-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static Task<AgentHostProcess.Result> Run(params string[] args) => AgentHostProcess.RunAsync(args);

    private static void AssertOneClearError(AgentHostProcess.Result result, int exitCode, string expected)
    {
        Assert.Equal(exitCode, result.ExitCode);
        var lines = result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(expected, lines[0]);
        Assert.DoesNotContain("   at ", result.StdErr);
        Assert.Equal("", result.StdOut);
    }

    [Fact]
    public async Task Generate_streams_the_greedy_story_to_stdout()
    {
        var result = await Run("generate", "--prompt", "Once upon a time", "--max-tokens", "20");

        Assert.Equal(0, result.ExitCode);
        Assert.StartsWith(", there was a little girl named Lily.", result.StdOut);
        Assert.Contains("greedy: 20 tokens", result.StdErr);
    }

    [Fact]
    public async Task The_native_log_reaches_stderr_through_the_logger_only_when_asked()
    {
        var quiet = await Run("generate", "--prompt", "Once", "--max-tokens", "3");
        var verbose = await Run("generate", "--prompt", "Once", "--max-tokens", "3", "--verbose");

        Assert.DoesNotContain("LlamaCpp", quiet.StdErr);
        Assert.Contains("LlamaCpp", verbose.StdErr);
        Assert.Contains("llama_model_loader", verbose.StdErr);
        Assert.Equal(quiet.StdOut, verbose.StdOut); // logs never reach stdout
    }

    [Fact]
    public async Task Generate_json_has_text_token_ids_strategy_model_and_stats()
    {
        var result = await Run("generate", "--model", "stories260k", "--prompt", "Once upon a time", "--max-tokens", "12",
            "--strategy", "sample", "--seed", "5", "--json");

        Assert.Equal(0, result.ExitCode);
        using var json = JsonDocument.Parse(result.StdOut);
        var root = json.RootElement;
        Assert.Equal("sample", root.GetProperty("strategy").GetString());
        Assert.Equal("stories260k", root.GetProperty("model").GetString());
        Assert.Equal(12, root.GetProperty("token_ids").GetArrayLength());
        Assert.False(string.IsNullOrEmpty(root.GetProperty("text").GetString()));
        Assert.Equal("max_tokens", root.GetProperty("stop_reason").GetString());
        var stats = root.GetProperty("stats");
        Assert.Equal(12, stats.GetProperty("generated_tokens").GetInt32());
        Assert.Equal(5, stats.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(5UL, stats.GetProperty("seed").GetUInt64());
        Assert.True(stats.GetProperty("tokens_per_second").GetDouble() > 0);

        var again = await Run("generate", "--prompt", "Once upon a time", "--max-tokens", "12", "--strategy", "sample", "--seed", "5", "--json");
        Assert.Equal(root.GetProperty("token_ids").ToString(), JsonDocument.Parse(again.StdOut).RootElement.GetProperty("token_ids").ToString());
    }

    [Fact]
    public async Task Generate_accepts_an_explicit_model_path_and_stop_strings()
    {
        var path = Path.Combine(AgentHostProcess.ModelsDirectory, "stories260K.gguf");
        var result = await Run("generate", "--model", path, "--prompt", "Once upon a time", "--stop", "Lily", "--stop", "zzz", "--json");

        Assert.Equal(0, result.ExitCode);
        var root = JsonDocument.Parse(result.StdOut).RootElement;
        Assert.Equal(", there was a little girl named ", root.GetProperty("text").GetString());
        Assert.Equal("stop_string", root.GetProperty("stop_reason").GetString());
    }

    [Fact]
    public async Task The_hazard_prompt_on_the_656k_model_survives()
    {
        var result = await Run("generate", "--model", "tinystories656k", "--prompt", "Tom (the cat) said: café ☕", "--max-tokens", "30");

        Assert.Equal(0, result.ExitCode);
        Assert.False(string.IsNullOrWhiteSpace(result.StdOut));
    }

    [Fact]
    public async Task A_missing_model_file_is_one_clear_error()
        => AssertOneClearError(await Run("generate", "--model", "/nonexistent/model.gguf", "--prompt", "hi"), 1, "does not exist");

    [Fact]
    public async Task A_file_that_is_not_gguf_is_one_clear_error()
    {
        var path = Path.Combine(_temp, "notes.gguf");
        await File.WriteAllTextAsync(path, "these are not the weights you are looking for");
        AssertOneClearError(await Run("generate", "--model", path, "--prompt", "hi"), 1, "not a GGUF file");
    }

    [Fact]
    public async Task A_truncated_model_file_is_one_clear_error()
    {
        var bytes = await File.ReadAllBytesAsync(Path.Combine(AgentHostProcess.ModelsDirectory, "stories260K.gguf"));
        var path = Path.Combine(_temp, "half.gguf");
        await File.WriteAllBytesAsync(path, bytes[..(bytes.Length / 2)]);
        AssertOneClearError(await Run("generate", "--model", path, "--prompt", "hi"), 1, "truncated");
    }

    [Fact]
    public async Task An_unreadable_model_path_is_one_clear_error()
        => AssertOneClearError(await Run("generate", "--model", _temp, "--prompt", "hi"), 1, _temp);

    [Fact]
    public async Task An_unknown_model_name_lists_the_catalog()
        => AssertOneClearError(await Run("generate", "--model", "gpt-17", "--prompt", "hi"), 1, "stories260k");

    [Fact]
    public async Task An_empty_prompt_is_one_clear_error()
        => AssertOneClearError(await Run("generate", "--prompt", ""), 2, "prompt is empty");

    [Fact]
    public async Task A_prompt_longer_than_the_context_is_one_clear_error()
    {
        var result = await AgentHostProcess.RunAsync(
            ["generate", "--prompt", string.Join(' ', Enumerable.Repeat("Once upon a time there was a dog.", 20))],
            new Dictionary<string, string> { ["AGENTHOST_AgentHost__Models__stories260k__ContextSize"] = "64" });   // at least the catalog's 40 Sequences
        AssertOneClearError(result, 1, "context holds 64");
    }

    [Theory]
    [InlineData("--max-tokens", "abc", "--max-tokens expects a whole number")]
    [InlineData("--max-tokens", "0", "--max-tokens must be at least 1")]
    [InlineData("--temperature", "-1", "temperature must be 0 or more")]
    [InlineData("--top-p", "2", "top-p must be in (0, 1]")]
    [InlineData("--strategy", "beam", "Unknown decoding strategy 'beam'")]
    [InlineData("--frobnicate", "1", "unknown option '--frobnicate'")]
    public async Task Invalid_option_values_are_one_clear_error_with_exit_code_2(string option, string value, string expected)
        => AssertOneClearError(await Run("generate", "--prompt", "Once", option, value), 2, expected);

    [Fact]
    public async Task An_unknown_verb_is_a_usage_error()
        => AssertOneClearError(await Run("frobnicate"), 2, "unknown verb 'frobnicate'");

    [Theory]
    [InlineData("Models__stories260k__ContextSize", "abc", "'AgentHost:Models:stories260k:ContextSize'")]
    [InlineData("Models__stories260k__FlashAttention", "bogus", "'AgentHost:Models:stories260k:FlashAttention'")]
    [InlineData("Models__stories260k__FlashAttention", "7", "AgentHost:Models:stories260k:FlashAttention must be Auto, On or Off")]
    [InlineData("Models__stories260k__ContextSize", "100000000", "AgentHost:Models:stories260k:ContextSize must be 0")]
    [InlineData("Models__stories260k__ContextSize", "8", "AgentHost:Models:stories260k:ContextSize (8) must be at least Sequences (40)")]
    [InlineData("Models__stories260k__ContextSize", "20000", "AgentHost:Models:stories260k:ContextSize (20000) exceeds 8 times")]
    [InlineData("Models__stories260k__BatchSize", "4", "AgentHost:Models:stories260k:BatchSize (4) must be at least Sequences (40)")]
    [InlineData("Models__tinystories656k__Sequences", "-3", "AgentHost:Models:tinystories656k:Sequences must be between 1 and 256")]
    [InlineData("Models__tinystories656k__GpuLayers", "x", "'AgentHost:Models:tinystories656k:GpuLayers'")]
    [InlineData("AllowDownload", "bogus", "'AgentHost:AllowDownload'")]
    public async Task A_bad_configuration_value_is_one_error_naming_its_key_with_exit_code_2(string key, string value, string expected)
    {
        var environment = new Dictionary<string, string> { [$"AGENTHOST_AgentHost__{key}"] = value };

        var result = await AgentHostProcess.RunAsync(["generate", "--prompt", "Once", "--max-tokens", "2"], environment);

        AssertOneClearError(result, 2, expected);
    }

    [Theory]
    [InlineData("--rollouts 2147483647", "--rollouts must be")]
    [InlineData("--attempts 2147483647", "--attempts must be")]
    [InlineData("--rollouts 1024 --max-tokens 1", "more than the limit of 1000000 completions")]
    public async Task Analyze_counts_that_would_exhaust_the_machine_are_one_error_with_exit_code_2(string options, string expected)
    {
        // --rollouts 2147483647 used to size a list of that many jobs: an OutOfMemoryException and a stack trace.
        string[] args = ["analyze", "rollouts", "--prompt", "Once upon a time", "--trajectory", string.Concat(Enumerable.Repeat(" there was a dog", 250)),
            "--verify", "contains:cat", .. options.Split(' ')];

        var result = await AgentHostProcess.RunAsync(args);

        AssertOneClearError(result, 2, expected);
    }

    [Theory]
    [InlineData("--train", "2147483647")]
    [InlineData("--heldout", "1000001")]
    public async Task Toolkens_corpus_beyond_its_line_limit_is_one_error_and_writes_nothing(string option, string value)
    {
        var folder = Path.Combine(_temp, "corpus");

        var result = await AgentHostProcess.RunAsync(["toolkens", "corpus", "--out", folder, option, value]);

        AssertOneClearError(result, 2, $"{option} must be");
        Assert.False(Directory.Exists(folder));
    }

    [Theory]
    [InlineData("4", "AgentHost:Models:tinystories656k:ContextSize (4) must be at least Sequences (40)")]
    [InlineData("5000", "AgentHost:Models:tinystories656k:ContextSize (5000) exceeds 8 times the 512 tokens")]
    public async Task Serve_refuses_a_bad_model_setting_at_start_not_at_the_first_request(string contextSize, string expected)
    {
        // ContextSize below Sequences used to abort llama.cpp, and with it the server, on the first request.
        var environment = new Dictionary<string, string> { ["AGENTHOST_AgentHost__Models__tinystories656k__ContextSize"] = contextSize };

        var result = await AgentHostProcess.RunAsync(["serve", "--urls", "http://127.0.0.1:0"], environment, TimeSpan.FromSeconds(60));

        AssertOneClearError(result, 2, expected);
    }

    [Theory]
    [InlineData("stories260k;nosuch", 2, "Server:Models names 'nosuch', which is not in the model catalog")]
    [InlineData("qwen2.5-0.5b", 1, "downloads are disabled")]
    public async Task Serve_refuses_a_served_model_it_cannot_have_at_start(string models, int exitCode, string expected)
    {
        // serve fetches the models it serves before it listens (requests never do); with downloads off that is one clear error.
        var environment = new Dictionary<string, string> { ["AGENTHOST_AgentHost__AllowDownload"] = "false", ["AGENTHOST_AgentHost__CacheDir"] = _temp };

        var result = await AgentHostProcess.RunAsync(["serve", "--urls", "http://127.0.0.1:0", "--models", models], environment, TimeSpan.FromSeconds(60));

        AssertOneClearError(result, exitCode, expected);
    }

    [Fact]
    public async Task A_crafted_model_file_is_one_clear_error_not_a_native_crash()
    {
        var path = Llama.Tests.Support.CraftedModel.Write(Path.Combine(AgentHostProcess.ModelsDirectory, "stories260K.gguf"), Path.Combine(_temp, "crafted.gguf"),
            m => m["llama.attention.head_count"] = 0u);

        var result = await Run("generate", "--model", path, "--prompt", "Once", "--max-tokens", "2");

        AssertOneClearError(result, 1, "has an invalid 'llama.attention.head_count'");
    }

    [Fact]
    public async Task Bench_prompts_with_characters_the_vocabulary_lacks_reach_every_row_through_the_guard()
    {
        // TinyStories-656K has no byte fallback: the StatelessExecutor row used to tokenize these raw and abort (exit 134).
        var prompts = Path.Combine(_temp, "hazard.txt");
        await File.WriteAllTextAsync(prompts, "Tom (the cat) said: caf\u00E9 \u2615 {100%} #1 \t~\n");

        var result = await Run("bench", "--model", "tinystories656k", "--prompts", prompts, "--runs", "1", "--warmup", "0", "--max-tokens", "4");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("llamasharp-stateless", result.StdOut);
    }

    [Fact]
    public async Task Models_lists_the_catalog_and_where_each_model_resolves()
    {
        var result = await Run("models");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("stories260k", result.StdOut);
        Assert.Contains("tinystories656k", result.StdOut);
        Assert.Contains(Path.Combine(AgentHostProcess.ModelsDirectory, "stories260K.gguf"), result.StdOut);
    }

    [Fact]
    public async Task Bench_server_measures_batching_on_and_off_and_the_cost_curve()
    {
        var jsonPath = Path.Combine(_temp, "server.json");
        var prompts = Path.Combine(_temp, "one-prompt.txt");
        await File.WriteAllTextAsync(prompts, "Once upon a time\n");
        var result = await Run("bench", "server", "--prompts", prompts, "--runs", "1", "--warmup", "0", "--max-tokens", "2", "--json", jsonPath);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("16 clients:", result.StdOut);
        var servers = JsonDocument.Parse(await File.ReadAllTextAsync(jsonPath)).RootElement.GetProperty("servers").EnumerateArray().ToList();
        Assert.Equal([true, false], servers.Select(s => s.GetProperty("batching").GetBoolean()));
        var cost = servers[0].GetProperty("cost_by_batch");
        Assert.Equal(["1", "2", "4", "8", "16"], cost.EnumerateObject().Select(p => p.Name));
        Assert.Equal(1.0, cost.GetProperty("1").GetDouble());
    }

    [Fact]
    public async Task Bench_server_mix_measures_mixed_strategies_against_greedy_and_compares_speculative_outputs_with_greedy()
    {
        var jsonPath = Path.Combine(_temp, "mix.json");
        var prompts = Path.Combine(_temp, "one-prompt.txt");
        await File.WriteAllTextAsync(prompts, "Once upon a time\n");
        var result = await Run("bench", "server", "--mix", "--prompts", prompts, "--runs", "1", "--warmup", "0", "--max-tokens", "4", "--json", jsonPath);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("recycling/lookup outputs equal to serial greedy:", result.StdOut);
        var root = JsonDocument.Parse(await File.ReadAllTextAsync(jsonPath)).RootElement;
        // 16 clients of 6 kinds, one prompt each: clients 2, 8, 14 recycle and 3, 9, 15 look up.
        Assert.Equal(6, root.GetProperty("outputs_compared").GetInt32());
        Assert.InRange(root.GetProperty("outputs_equal_to_greedy").GetInt32(), 0, 6);
        Assert.True(root.GetProperty("mixed_vs_greedy")[0].GetDouble() > 0);
        Assert.True(root.GetProperty("recycling_http_vs_in_process")[0].GetDouble() > 0);
    }

    [Fact]
    public async Task Bench_server_shared_prefix_serves_the_later_agents_prefix_from_cache()
    {
        var jsonPath = Path.Combine(_temp, "prefix.json");
        var result = await Run("bench", "server", "--shared-prefix", "--prefix-tokens", "200", "--runs", "1", "--warmup", "0", "--max-tokens", "2", "--json", jsonPath);

        Assert.Equal(0, result.ExitCode);
        var root = JsonDocument.Parse(await File.ReadAllTextAsync(jsonPath)).RootElement;
        Assert.True(root.GetProperty("prompt_tokens").GetInt64() >= 200);
        Assert.True(root.GetProperty("first_cached_share")[0].GetDouble() < 0.5, "the first request finds its new system prompt uncached");
        var later = root.GetProperty("later_cached_share").EnumerateArray().Select(e => e.GetDouble()).ToList();
        Assert.Equal(7, later.Count);
        Assert.All(later, share => Assert.True(share > 0.75, $"a later agent had {share:P0} of its prompt from cache"));
    }

    [Fact]
    public async Task Bench_server_takes_one_scenario()
    {
        var result = await Run("bench", "server", "--mix", "--shared-prefix");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("either --mix or --shared-prefix", result.StdErr);
    }

    [Fact]
    public async Task Bench_reports_every_row_with_a_ratio_against_the_baseline()
    {
        var jsonPath = Path.Combine(_temp, "bench.json");
        var result = await Run("bench", "--runs", "2", "--warmup", "0", "--max-tokens", "8", "--json", jsonPath);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("llamasharp-stateless", result.StdOut);
        var root = JsonDocument.Parse(await File.ReadAllTextAsync(jsonPath)).RootElement;
        Assert.Equal("greedy", root.GetProperty("baseline").GetString());
        var rows = root.GetProperty("rows").EnumerateArray().ToDictionary(r => r.GetProperty("name").GetString()!);
        Assert.Equal(["greedy", "sample", "raw", "llamasharp-stateless"], rows.Keys);
        Assert.Equal(1.0, rows["greedy"].GetProperty("ratio_vs_baseline").GetDouble());
        // The bare llama_decode loop computes greedy's tokens.
        Assert.Equal(root.GetProperty("prompts").GetArrayLength(), rows["raw"].GetProperty("outputs_equal_to_greedy").GetInt32());
        Assert.Equal(2, rows["llamasharp-stateless"].GetProperty("runs").GetArrayLength());
        Assert.True(rows["llamasharp-stateless"].GetProperty("ratio_vs_baseline").GetDouble() > 0);
        Assert.Equal(1, root.GetProperty("settings").GetProperty("threads").GetInt32()); // as AgentHostProcess configures
    }

    [Fact]
    public async Task Bench_runs_the_papers_tree_with_the_catalog_defaults_and_labels_recycling_rows_with_their_tree()
    {
        var jsonPath = Path.Combine(_temp, "bench.json");
        var result = await Run("bench", "--strategies", "greedy,recycling", "--tree", "2.2.2", "--baseline", "recycling", "--runs", "1", "--warmup", "0", "--max-tokens", "16", "--json", jsonPath);

        Assert.True(result.ExitCode == 0, result.StdErr);
        var root = JsonDocument.Parse(await File.ReadAllTextAsync(jsonPath)).RootElement;
        Assert.Equal("recycling[2.2.2]", root.GetProperty("baseline").GetString());   // --baseline names the strategy of its only row
        var rows = root.GetProperty("rows").EnumerateArray().ToDictionary(r => r.GetProperty("name").GetString()!);
        Assert.Equal(["greedy", "recycling[2.2.2]", "raw", "llamasharp-stateless"], rows.Keys);
        Assert.Equal("2.2.2", rows["recycling[2.2.2]"].GetProperty("details").GetProperty("template").GetString());
        Assert.Matches(@"recycling\[2\.2\.2\]\s+2\.2\.2\s", result.StdOut);   // the speculative table's row and template column

        var trees = await Run("bench", "--strategies", "recycling", "--trees", "auto,chain-2", "--baseline", "recycling[auto]", "--runs", "1", "--warmup", "0", "--max-tokens", "8");
        Assert.True(trees.ExitCode == 0, trees.StdErr);
        Assert.Contains("recycling[auto]", trees.StdOut, StringComparison.Ordinal);
        Assert.Contains("recycling[chain-2]", trees.StdOut, StringComparison.Ordinal);
    }
}

public sealed class CancellationCliTests
{
    [Fact]
    public async Task Ctrl_C_during_long_work_stops_cleanly_with_exit_code_130()
    {
        using var process = System.Diagnostics.Process.Start(AgentHostProcess.StartInfo(["bench", "--runs", "1000", "--max-tokens", "128"]))!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            // Wait until the model is loaded and the bench runs, then interrupt it as a terminal would.
            string? line;
            while ((line = await process.StandardError.ReadLineAsync(deadline.Token)) is not null && !line.StartsWith("bench:", StringComparison.Ordinal))
            {
            }
            Assert.NotNull(line);
            using (var kill = System.Diagnostics.Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                await kill.WaitForExitAsync(deadline.Token);
            var rest = await process.StandardError.ReadToEndAsync(deadline.Token);
            await process.WaitForExitAsync(deadline.Token);

            Assert.Equal(130, process.ExitCode);
            Assert.Contains("cancelled.", rest);
            Assert.DoesNotContain("   at ", rest);
            await stdout;
        }
        finally
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }
    }
}
