using System.Text.Json;
using System.Text.RegularExpressions;
using AgentHost.Llama.Analysis;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests;
using AgentHost.Llama.Tests.Support;

namespace AgentHost.Tests;

/// <summary><c>analyze rollouts</c> and <c>analyze contrast</c>, run as real processes on stories260K.</summary>
public sealed class AnalyzeCliTests : IDisposable
{
    private const string Prompt = "Once upon a time";
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static Task<AgentHostProcess.Result> Run(params string[] args) => AgentHostProcess.RunAsync(args);

    [Fact]
    public async Task Rollouts_report_agrees_with_a_recount_and_its_html_renders_in_a_browser()
    {
        var json = _folder.Combine("report.json");
        var html = _folder.Combine("report.html");

        // "The story mentions play": on this seed some prefixes recover, so the recount and the rule's fallback are exercised.
        var result = await Run("analyze", "rollouts", "--prompt", Prompt, "--verify", "contains:play", "--rollouts", "6", "--stride", "4",
            "--max-tokens", "20", "--trajectory-tokens", "32", "--seed", "3", "--json", json, "--html", html);

        Assert.True(result.ExitCode == 0, result.StdErr);
        Assert.Contains("critical token:", result.StdOut, StringComparison.Ordinal);
        var root = JsonDocument.Parse(File.ReadAllText(json)).RootElement;
        Assert.Equal("rollouts", root.GetProperty("kind").GetString());
        Assert.True(root.GetProperty("trajectory_generated").GetBoolean());
        Assert.False(root.GetProperty("trajectory_passes").GetBoolean());
        var settings = root.GetProperty("settings");
        Assert.Equal(3UL, settings.GetProperty("seed").GetUInt64());
        Assert.Equal(4, settings.GetProperty("stride").GetInt32());
        var n = settings.GetProperty("rollouts").GetInt32();
        var tokens = root.GetProperty("trajectory_tokens").GetArrayLength();
        Assert.Equal(Math.Min(32, tokens), tokens);

        // Recount every c_i from the listed rollouts, apply the rule, recount the alternatives and pass@k.
        var prefixes = root.GetProperty("prefixes").EnumerateArray().ToList();
        Assert.Equal((tokens - 1) / 4, prefixes.Count);   // prefixes 1 .. T - 1
        Assert.Contains($"rollouts: {prefixes.Count * n}/{prefixes.Count * n}", result.StdErr, StringComparison.Ordinal);   // progress, on stderr
        var counts = new int[prefixes.Count];
        for (var p = 0; p < prefixes.Count; p++)
        {
            var rollouts = prefixes[p].GetProperty("rollouts").EnumerateArray().ToList();
            Assert.Equal(n, rollouts.Count);
            foreach (var rollout in rollouts)
            {
                var passes = rollout.GetProperty("text").GetString()!.Contains("play", StringComparison.OrdinalIgnoreCase);   // the completion only
                Assert.Equal(passes, rollout.GetProperty("passed").GetBoolean());
                counts[p] += passes ? 1 : 0;
            }
            Assert.Equal(counts[p], prefixes[p].GetProperty("correct").GetInt32());
        }
        var critical = CriticalTokenRule.Find(counts, settings.GetProperty("recover_threshold").GetInt32());
        if (critical < 0)
        {
            Assert.False(root.TryGetProperty("critical", out _));
        }
        else
        {
            Assert.Equal(prefixes[critical].GetProperty("length").GetInt32(), root.GetProperty("critical").GetProperty("length").GetInt32());
            var alternatives = root.GetProperty("alternatives");
            var excluded = alternatives.GetProperty("excluded").GetInt32();
            var completions = alternatives.GetProperty("completions").EnumerateArray().ToList();
            Assert.Equal(n, completions.Count);
            Assert.All(completions, c => Assert.NotEqual(excluded, c.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).FirstOrDefault(-1)));
            var passed = completions.Count(c => c.GetProperty("text").GetString()!.Contains("play", StringComparison.OrdinalIgnoreCase));
            Assert.Equal(passed, alternatives.GetProperty("correct").GetInt32());
            var passAtK = alternatives.GetProperty("pass_at_k").EnumerateArray().Select(v => v.GetDouble()).ToList();
            for (var k = 1; k <= n; k++)
                Assert.Equal(1 - Binomial.Choose(n - passed, k) / Binomial.Choose(n, k), passAtK[k - 1], 12);
        }

        await AssertRendersHeatMap(html, tokens);
    }

    [Fact]
    public async Task Ansi_view_colours_each_token_and_names_the_critical_one()
    {
        var result = await Run("analyze", "rollouts", "--prompt", Prompt, "--trajectory", ", there was a little girl named Lily.", "--verify", "contains:dog",
            "--rollouts", "3", "--stride", "3", "--max-tokens", "10", "--seed", "1", "--ansi");

        Assert.True(result.ExitCode == 0, result.StdErr);
        Assert.Contains("\u001b[38;2;0;0;0;48;2;", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("\u001b[2mOnce upon a time\u001b[0m", result.StdOut, StringComparison.Ordinal);
        Assert.Matches(new Regex("critical token: (y_\\d+ = \".*\" \\(token \\d+\\)|none)"), result.StdOut);
        Assert.Matches(new Regex("c_i: 3:\\d 6:\\d 9:\\d"), result.StdOut);
    }

    [Fact]
    public async Task Stop_strings_and_full_judging_reach_the_rollouts()
    {
        var json = _folder.Combine("stop.json");
        var result = await Run("analyze", "rollouts", "--prompt", Prompt, "--trajectory", ", there was a little girl named Lily.", "--verify", "contains:Lily",
            "--rollouts", "2", "--stride", "4", "--max-tokens", "16", "--seed", "1", "--stop", ".", "--stop", "!", "--judge", "full", "--json", json);

        Assert.True(result.ExitCode == 0, result.StdErr);
        var root = JsonDocument.Parse(File.ReadAllText(json)).RootElement;
        var settings = root.GetProperty("settings");
        Assert.Equal("full", settings.GetProperty("judge").GetString());
        Assert.Equal([".", "!"], settings.GetProperty("stop_strings").EnumerateArray().Select(s => s.GetString()));
        foreach (var prefix in root.GetProperty("prefixes").EnumerateArray())
        {
            var prefixText = prefix.GetProperty("prefix_text").GetString()!;
            foreach (var rollout in prefix.GetProperty("rollouts").EnumerateArray())
            {
                var text = rollout.GetProperty("text").GetString()!;
                Assert.DoesNotContain(".", text, StringComparison.Ordinal);
                Assert.Equal((prefixText + text).Contains("Lily", StringComparison.OrdinalIgnoreCase), rollout.GetProperty("passed").GetBoolean());
            }
        }
    }

    // A perturbed copy of stories260K as catalog model "perturbed" (one compute thread, like every test model).
    private Dictionary<string, string> PerturbedCatalog(out string path)
    {
        path = _folder.Combine("perturbed.gguf");
        PerturbedModel.Write(TestModels.Stories260K, path);
        return new Dictionary<string, string>
        {
            ["AGENTHOST_AgentHost__Models__perturbed__File"] = path,
            ["AGENTHOST_AgentHost__Models__perturbed__ContextSize"] = "512",
            ["AGENTHOST_AgentHost__Models__perturbed__Threads"] = "1",
            ["AGENTHOST_AgentHost__Models__perturbed__BatchThreads"] = "1",
        };
    }

    [Fact]
    public async Task Contrast_scores_each_token_against_a_perturbed_model_and_its_html_renders()
    {
        var catalog = PerturbedCatalog(out _);
        var json = _folder.Combine("contrast.json");
        var html = _folder.Combine("contrast.html");
        const string Response = ", there was a big dog named Max.";

        var result = await AgentHostProcess.RunAsync(
            ["analyze", "contrast", "--negative", "perturbed", "--prompt", Prompt, "--response", Response, "--beta", "0.5", "--json", json, "--html", html, "--ansi"], catalog);

        Assert.True(result.ExitCode == 0, result.StdErr);
        Assert.Contains("scoring:", result.StdErr, StringComparison.Ordinal);
        Assert.Contains("lowest score: token ", result.StdOut, StringComparison.Ordinal);
        var root = JsonDocument.Parse(File.ReadAllText(json)).RootElement;
        Assert.Equal("contrast", root.GetProperty("kind").GetString());
        Assert.Equal("perturbed", root.GetProperty("negative_model").GetString());
        Assert.Equal(0.5, root.GetProperty("beta").GetDouble());
        Assert.Equal(Response, root.GetProperty("response_text").GetString());
        var scores = root.GetProperty("tokens").EnumerateArray().Select(t => t.GetProperty("score").GetDouble()).ToList();
        Assert.All(scores, s => Assert.InRange(s, 0, 1));
        Assert.Equal(scores.IndexOf(scores.Min()), root.GetProperty("lowest_index").GetInt32());
        await AssertRendersHeatMap(html, scores.Count);
    }

    [Fact]
    public async Task Contrast_takes_two_lora_adapters_on_the_default_model()
    {
        var good = _folder.Combine("good.gguf");
        var bad = _folder.Combine("bad.gguf");
        LoraFile.Write(good, "llama", "output.weight", 64, 512, rank: 4, scale: 0.7f, seed: 2);
        LoraFile.Write(bad, "llama", "output.weight", 64, 512, rank: 4, scale: 0.7f, seed: 3);

        var result = await Run("analyze", "contrast", "--lora", good, "--negative-lora", bad, "--prompt", Prompt, "--response", ", there was a dog.", "--json", "-");

        Assert.True(result.ExitCode == 0, result.StdErr);
        var root = JsonDocument.Parse(result.StdOut).RootElement;
        Assert.Equal("stories260k+good.gguf", root.GetProperty("positive_model").GetString());
        Assert.Equal("stories260k+bad.gguf", root.GetProperty("negative_model").GetString());
        Assert.Contains("lowest: token ", result.StdErr, StringComparison.Ordinal);   // the summary moves to stderr with --json -
    }

    [Fact]
    public async Task Cdpo_export_writes_weighted_pairs_that_a_dpo_consumer_loads()
    {
        var catalog = PerturbedCatalog(out var negative);
        var pairs = _folder.Combine("pairs.jsonl");
        var cdpo = _folder.Combine("cdpo.jsonl");
        (string Prompt, string Chosen, string Rejected)[] given =
        [
            (Prompt, ", there was a little girl named Lily.", ", there was a big dog named Max."),
            ("Lily and Tom went to the park", ". They played with a ball.", " and they saw a big tree."),
        ];
        File.WriteAllLines(pairs, given.Select(p => JsonSerializer.Serialize(new { prompt = p.Prompt, chosen = p.Chosen, rejected = p.Rejected })).Append(""));

        var result = await AgentHostProcess.RunAsync(["analyze", "contrast", "--negative", "perturbed", "--pairs", pairs, "--cdpo", cdpo, "--cdpo-only-neg", "false"], catalog);

        Assert.True(result.ExitCode == 0, result.StdErr);
        Assert.Contains("2 pairs scored", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("TRL JSONL, chosen weighted", result.StdOut, StringComparison.Ordinal);
        // As a TRL-style trainer reads it: one JSON object per line, the DPO fields as given, and per side one weight per token.
        var lines = File.ReadAllLines(cdpo);
        Assert.Equal(given.Length, lines.Length);
        using var model = LlamaModel.Load("stories260k", TestModels.Stories260K, new ModelSettings { ContextSize = 256, Threads = TestModels.Threads, BatchThreads = TestModels.Threads });
        using var perturbed = LlamaModel.Load("perturbed", negative, new ModelSettings { ContextSize = 256, Threads = TestModels.Threads, BatchThreads = TestModels.Threads });
        for (var i = 0; i < lines.Length; i++)
        {
            var record = JsonDocument.Parse(lines[i]).RootElement;
            Assert.Equal(given[i].Prompt, record.GetProperty("prompt").GetString());
            Assert.Equal(given[i].Chosen, record.GetProperty("chosen").GetString());
            Assert.Equal(given[i].Rejected, record.GetProperty("rejected").GetString());
            Assert.Equal(1.0, record.GetProperty("beta").GetDouble());
            foreach (var (side, response, positiveScore) in new[] { ("chosen", given[i].Chosen, true), ("rejected", given[i].Rejected, false) })
            {
                var ids = record.GetProperty($"{side}_token_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                var weights = record.GetProperty($"{side}_weights").EnumerateArray().Select(e => e.GetDouble()).ToArray();
                Assert.Equal(ids.Length, weights.Length);
                Assert.Equal(ids.Length, record.GetProperty($"{side}_tokens").GetArrayLength());
                Assert.Equal(response, model.Detokenize(ids));   // the ids spell the response: a consumer can align them
                // The weights are the paper's: s_t on the chosen side, 1 - s_t on the rejected one, recomputed here.
                var scores = await ContrastiveScorer.ScoreAsync(model, perturbed, new ContrastiveRequest { Prompt = given[i].Prompt, Response = response });
                Assert.Equal(scores.Tokens.Select(t => t.Token), ids);
                for (var t = 0; t < ids.Length; t++)
                {
                    Assert.InRange(weights[t], 0, 1);
                    Assert.Equal(positiveScore ? scores.Tokens[t].Score : 1 - scores.Tokens[t].Score, weights[t], 5);
                }
            }
        }
    }

    [Fact]
    public async Task The_paper_preset_takes_the_papers_rollout_sampling_and_explicit_options_win()
    {
        var json = _folder.Combine("paper.json");

        var result = await Run("analyze", "rollouts", "--prompt", Prompt, "--trajectory", ", there was a little girl named Lily. She", "--verify", "contains:dragon",
            "--preset", "paper", "--paper-model", "meta-llama-3-8b", "--paper-dataset", "MATH", "--rollouts", "2", "--stride", "6", "--max-tokens", "8", "--seed", "1", "--json", json);

        Assert.True(result.ExitCode == 0, result.StdErr);
        var settings = JsonDocument.Parse(File.ReadAllText(json)).RootElement.GetProperty("settings");
        Assert.Equal(0.1, settings.GetProperty("temperature").GetDouble(), 6);      // MATH, Meta-Llama-3-8B in data_config.py
        Assert.Equal(0.95, settings.GetProperty("top_p").GetDouble(), 6);
        Assert.Equal(["\n\nQuestion:", ".\n\nQuestion:", "\n\nProblem:", ".\n\nProblem:"], settings.GetProperty("stop_strings").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal((2, 8), (settings.GetProperty("rollouts").GetInt32(), settings.GetProperty("max_tokens").GetInt32()));   // given: they win over 64 / 1,024

        var missing = await Run("analyze", "rollouts", "--prompt", Prompt, "--verify", "contains:dragon", "--preset", "paper");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("give --paper-model (Meta-Llama-3-8B, Meta-Llama-3-70B, deepseek-math-7b-base, Qwen2.5-7B, Qwen2.5-32B) or --temperature", missing.StdErr, StringComparison.Ordinal);
        var unknown = await Run("analyze", "rollouts", "--prompt", Prompt, "--verify", "contains:dragon", "--preset", "paper", "--paper-model", "gpt-2");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("no temperature for model 'gpt-2'", unknown.StdErr, StringComparison.Ordinal);
        var stray = await Run("analyze", "rollouts", "--prompt", Prompt, "--verify", "contains:dragon", "--paper-model", "Qwen2.5-7B");
        Assert.Equal(2, stray.ExitCode);
        Assert.Contains("--paper-dataset and --paper-model go with --preset paper.", stray.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_agent_run_from_a_conversation_file_marks_its_critical_token_in_json_and_html_and_exports_pairs()
    {
        // The agent adds 2 and 3 right, then calls Math_Add again with b = 4; the task: never add 4.
        var conversation = _folder.Combine("run.json");
        File.WriteAllText(conversation, """
            {"messages": [
             {"role": "user", "content": "What is 2 plus 3?"},
             {"role": "assistant", "content": "I add.", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "Math_Add", "arguments": "{\"a\": 2, \"b\": 3}"}}]},
             {"role": "tool", "tool_call_id": "c1", "content": "5"},
             {"role": "assistant", "content": "Again.", "tool_calls": [{"id": "c2", "type": "function", "function": {"name": "Math_Add", "arguments": "{\"a\": 2, \"b\": 4}"}}]},
             {"role": "tool", "tool_call_id": "c2", "content": "6"},
             {"role": "assistant", "content": "It is 6."}
            ]}
            """);
        var json = _folder.Combine("agent.json");
        var html = _folder.Combine("agent.html");
        var pairs = _folder.Combine("pairs.jsonl");

        var result = await Run("analyze", "rollouts", "--conversation", conversation, "--plugin", "Math", "--verify", "tool:Math_Add{\"a\": 2, \"b\": 3}",
            "--verify", "not-contains:\"b\": 4", "--rollouts", "2", "--stride", "6", "--max-tokens", "6", "--agent-turns", "1", "--seed", "2",
            "--json", json, "--html", html, "--pairs-out", pairs);

        Assert.True(result.ExitCode == 0, result.StdErr);
        var root = JsonDocument.Parse(File.ReadAllText(json)).RootElement;
        var spans = root.GetProperty("token_spans").EnumerateArray().Select(e => e.GetString()!).ToArray();
        Assert.Equal(root.GetProperty("trajectory_tokens").GetArrayLength(), spans.Length);
        Assert.Contains("tool_result", spans);
        Assert.StartsWith("agent (plain format, tools Math_", root.GetProperty("continuation").GetString(), StringComparison.Ordinal);
        foreach (var prefix in root.GetProperty("prefixes").EnumerateArray())
            Assert.Contains(spans[prefix.GetProperty("length").GetInt32() - 1], new[] { "plan", "tool_call" });
        var critical = root.GetProperty("critical");
        var span = critical.GetProperty("span").GetString();
        Assert.Equal(spans[critical.GetProperty("length").GetInt32() - 1], span);
        Assert.Contains($", in a {span!.Replace('_', ' ')}.", result.StdOut, StringComparison.Ordinal);
        // The heat map marks the critical token and shows which tokens are tool calls.
        var page = File.ReadAllText(html);
        Assert.Contains("tok marked span-" + span, page, StringComparison.Ordinal);
        Assert.Contains("span-tool_call", page, StringComparison.Ordinal);
        await AssertRendersHeatMap(html, spans.Length);
        // The pairs file is what analyze contrast --pairs reads: one object per passing alternative.
        var passing = root.GetProperty("alternatives").GetProperty("completions").EnumerateArray().Where(c => c.GetProperty("passed").GetBoolean())
            .Select(c => c.GetProperty("text").GetString()).Distinct().Count();
        var lines = File.ReadAllLines(pairs);
        Assert.InRange(lines.Length, 0, passing);
        Assert.All(lines, line => Assert.Equal(["prompt", "chosen", "rejected"], JsonDocument.Parse(line).RootElement.EnumerateObject().Select(p => p.Name)));
    }

    [Theory]
    [InlineData("--verify", "tool:Math_Add{}", "--prompt", "Hi", "a tool verifier judges an agent run; give --conversation.")]
    [InlineData("--verify", "contains:x", "--plugin", "Math", "--plugin goes with --conversation.")]
    [InlineData("--verify", "contains:x", "--conversation", "run.json", "--conversation gives the prompt and the trajectory; drop --trajectory.")]
    public async Task Agent_run_options_out_of_place_are_usage_errors(string option1, string value1, string option2, string value2, string expected)
    {
        string[] args = option2 == "--conversation" ? ["analyze", "rollouts", option1, value1, option2, value2, "--trajectory", "x"] : ["analyze", "rollouts", option1, value1, option2, value2];
        if (option2 == "--plugin")
            args = [.. args, "--prompt", "Hi"];

        var result = await Run(args);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(expected, result.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cdpo_paper_format_is_the_column_json_train_cdpo_reads_and_only_neg_is_the_default_of_trl()
    {
        var catalog = PerturbedCatalog(out var negative);
        var pairs = _folder.Combine("pairs.jsonl");
        (string Prompt, string Chosen, string Rejected)[] given =
        [
            (Prompt, ", there was a little girl named Lily.", ", there was a big dog named Max."),
            ("Lily and Tom went to the park", ". They played with a ball.", " and they saw a big tree."),
        ];
        File.WriteAllLines(pairs, given.Select(p => JsonSerializer.Serialize(new { prompt = p.Prompt, chosen = p.Chosen, rejected = p.Rejected })));
        var paperPath = _folder.Combine("cdpo.json");
        var trlPath = _folder.Combine("cdpo.jsonl");

        var paper = await AgentHostProcess.RunAsync(["analyze", "contrast", "--negative", "perturbed", "--pairs", pairs, "--cdpo", paperPath, "--cdpo-format", "paper"], catalog);
        var trl = await AgentHostProcess.RunAsync(["analyze", "contrast", "--negative", "perturbed", "--pairs", pairs, "--cdpo", trlPath], catalog);

        Assert.True(paper.ExitCode == 0, paper.StdErr);
        Assert.True(trl.ExitCode == 0, trl.StdErr);
        Assert.Contains("the paper trainer's column JSON", paper.StdOut, StringComparison.Ordinal);
        // Read as train_cdpo.py's get_cdpo_train_dataset does: json.load, the four columns zipped, and (Dataset.from_dict
        // of the whole object) no other column, all equally long.
        var data = JsonDocument.Parse(File.ReadAllText(paperPath)).RootElement;
        Assert.Equal(["prompt", "chosen", "rejected", "prob_result"], data.EnumerateObject().Select(p => p.Name));
        Assert.All(data.EnumerateObject(), column => Assert.Equal(given.Length, column.Value.GetArrayLength()));
        using var model = LlamaModel.Load("stories260k", TestModels.Stories260K, new ModelSettings { ContextSize = 256, Threads = TestModels.Threads, BatchThreads = TestModels.Threads });
        using var perturbed = LlamaModel.Load("perturbed", negative, new ModelSettings { ContextSize = 256, Threads = TestModels.Threads, BatchThreads = TestModels.Threads });
        var trlLines = File.ReadAllLines(trlPath).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        for (var i = 0; i < given.Length; i++)
        {
            var question = data.GetProperty("prompt")[i].GetString()!;
            Assert.Equal(given[i].Prompt, question);
            Assert.Equal(given[i].Chosen, data.GetProperty("chosen")[i].GetString());
            Assert.Equal(given[i].Rejected, data.GetProperty("rejected")[i].GetString());
            var probs = data.GetProperty("prob_result")[i];
            foreach (var (key, response) in new[] { ("pos", given[i].Chosen), ("neg", given[i].Rejected) })
            {
                var side = probs.GetProperty(key);
                // line["pos"]["ce_prob"] / line["neg"]["ce_prob"]: a list of floats over input_ids[1:] of tokenizer(question + response).
                var ceProb = side.GetProperty("ce_prob").EnumerateArray().Select(e => e.GetDouble()).ToArray();
                var inputIds = model.Tokenize(question + response, model.Vocabulary.AddBos);
                Assert.Equal(inputIds.Length - 1, ceProb.Length);
                Assert.All(ceProb, p => Assert.InRange(p, 0, 1));
                // The trainer's own arithmetic: chosen ce_prob + [1]; rejected 1 - (ce_prob + [0]); one weight per input id.
                double[] weights = key == "pos" ? [.. ceProb, 1] : [.. ceProb.Append(0).Select(p => 1 - p)];
                Assert.Equal(inputIds.Length, weights.Length);
                var start = side.GetProperty("response_start_idx").GetInt32();
                var promptLength = model.Tokenize(question, model.Vocabulary.AddBos).Length;
                Assert.Equal(promptLength - 1, start);   // the index of the question's last token
                Assert.Equal(response, side.GetProperty("text").GetString());
                // Recomputed here from the response alone: s_t of every response token, the tail of ce_prob.
                var scores = await ContrastiveScorer.ScoreAsync(model, perturbed, new ContrastiveRequest { Prompt = question, Response = response });
                for (var t = 0; t < scores.Tokens.Count; t++)
                    Assert.Equal(scores.Tokens[t].Score, ceProb[start + t], 5);
                // The TRL line of the same pair under the default only_neg: chosen weights 1, rejected 1 - s from the same numbers.
                var trlWeights = trlLines[i].GetProperty(key == "pos" ? "chosen_weights" : "rejected_weights").EnumerateArray().Select(e => e.GetDouble()).ToArray();
                Assert.Equal(scores.Tokens.Count, trlWeights.Length);
                for (var t = 0; t < trlWeights.Length; t++)
                    Assert.Equal(key == "pos" ? 1.0 : 1 - ceProb[start + t], trlWeights[t], 9);
            }
        }
        Assert.True(trlLines[0].GetProperty("only_neg").GetBoolean());
    }

    [Theory]
    [InlineData("{\"prompt\": \"Hi\", \"chosen\": \" there\"}", "line 2 needs a non-empty string 'rejected'.")]
    [InlineData("[1, 2]", "line 2 is not a JSON object.")]
    [InlineData("{\"prompt\": ", "line 2 is not valid JSON")]
    public async Task A_bad_pairs_line_is_one_clear_error_naming_it(string badLine, string expected)
    {
        var pairs = _folder.Combine("pairs.jsonl");
        File.WriteAllLines(pairs, ["{\"prompt\": \"Hi\", \"chosen\": \" there\", \"rejected\": \" you\"}", badLine]);

        var result = await Run("analyze", "contrast", "--negative", "stories260k", "--pairs", pairs, "--cdpo", _folder.Combine("out.jsonl"));

        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", line);
        Assert.Contains(pairs + " " + expected, line, StringComparison.Ordinal);
        Assert.False(File.Exists(_folder.Combine("out.jsonl")));
    }

    [Theory]
    [InlineData(new[] { "analyze" }, "'analyze' needs one of: rollouts, contrast.")]
    [InlineData(new[] { "analyze", "contrast", "--prompt", "Hi", "--response", "there" }, "'analyze contrast' needs --negative")]
    [InlineData(new[] { "analyze", "everything" }, "'analyze' needs one of: rollouts, contrast.")]
    [InlineData(new[] { "analyze", "rollouts", "--prompt", "Hi" }, "'analyze rollouts' needs --verify")]
    [InlineData(new[] { "analyze", "rollouts", "--prompt", "Hi", "--verify", "smells:dog" }, "Unknown verifier 'smells:dog'")]
    [InlineData(new[] { "analyze", "rollouts", "--prompt", "Hi", "--verify", "function:Math.Nope" }, "--verify function:Math.Nope: no plugin function 'Math.Nope'")]
    [InlineData(new[] { "analyze", "rollouts", "--prompt", "Hi", "--verify", "contains:dog", "--json", "-", "--ansi" }, "--json - and --ansi both write to stdout")]
    [InlineData(new[] { "analyze", "rollouts", "--prompt", "Once upon a time", "--trajectory", ", a cat", "--verify", "contains:dog", "--stride", "9" }, "so it needs more than the prefix stride 9")]
    [InlineData(new[] { "analyze", "rollouts", "--prompt", "Hi", "--verify", "contains:dog", "--judge", "partial" }, "--judge must be 'completion' or 'full', not 'partial'.")]
    [InlineData(new[] { "analyze", "rollouts", "--prompt", "Hi", "--verify", "contains:dog", "--stop", "" }, "a stop string must have 1 to 256 characters.")]
    [InlineData(new[] { "analyze", "contrast", "--prompt", "Hi", "--response", "there", "--negative", "tinystories656k" }, "Models stories260k and tinystories656k have different vocabularies")]
    [InlineData(new[] { "analyze", "contrast", "--negative", "stories260k", "--pairs", "pairs.jsonl" }, "--pairs and --cdpo go together")]
    [InlineData(new[] { "analyze", "contrast", "--negative", "stories260k", "--pairs", "missing-pairs.jsonl", "--cdpo", "out.jsonl" }, "Cannot read the pairs file 'missing-pairs.jsonl'")]
    [InlineData(new[] { "analyze", "contrast", "--negative", "stories260k", "--pairs", "p.jsonl", "--cdpo", "o.jsonl", "--prompt", "Hi" }, "--prompt scores one response; with --pairs the output is --cdpo.")]
    public async Task Bad_analyze_input_is_one_clear_usage_error(string[] args, string expected)
    {
        var result = await Run(args);

        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", line);
        Assert.Contains(expected, line, StringComparison.Ordinal);
    }

    private async Task AssertRendersHeatMap(string html, int tokens)
    {
        var page = File.ReadAllText(html);
        Assert.DoesNotContain("src=", page, StringComparison.Ordinal);   // self-contained: nothing to fetch
        Assert.DoesNotContain("href=", page, StringComparison.Ordinal);

        var (exitCode, dom, errors) = await HeadlessBrowser.DumpDomAsync(html, _folder.Combine("chromium-profile-" + Path.GetFileNameWithoutExtension(html)));

        Assert.True(exitCode == 0, errors);
        Assert.Empty(HeadlessBrowser.PageErrors(errors));
        // The page's script ran to its end and counted one heat-map cell per token.
        Assert.Contains($"data-rendered-tokens=\"{tokens}\"", dom, StringComparison.Ordinal);
        Assert.Equal(tokens, Regex.Count(dom, "<span class=\"tok"));
        Assert.Contains("style=\"background:rgb(", dom, StringComparison.Ordinal);
        Assert.Contains("<svg class=\"curve\"", dom, StringComparison.Ordinal);
    }
}
