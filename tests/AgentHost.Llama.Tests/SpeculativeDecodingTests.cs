using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Speculative;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Tests;

/// <summary>stories260K with the default Sequences (room for the paper's 2.2.2 tree), shared by the speculative tests.</summary>
public sealed class SpeculativeFixture() : ModelFixture(TestModels.Stories260K,
    new ModelSettings { ContextSize = 512, Threads = TestModels.Threads, BatchThreads = TestModels.Threads });

/// <summary>Token recycling and prompt lookup on the real model: the "done" list of the spec.</summary>
public sealed class SpeculativeDecodingTests(SpeculativeFixture fixture, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<SpeculativeFixture>
{
    private static readonly string[] _prompts =
    [
        "Once upon a time", "One day, a little girl named Lily", "Tom and his dog went to the park", "The sun was shining",
        "There was a big red ball", "Mom said, \"Let's bake a cake", "The little boy was sad because", "A friendly cat lived in a small house",
        "Sam had a toy car", "The bird sat on the tree", "Lily and Ben wanted to play", "It was a rainy day",
        "The old man had a garden", "Anna found a shiny stone", "The dog barked at the mailman", "Max liked to eat apples",
        "In the forest there was a bear", "Sue went to the beach", "The princess lost her crown", "Tim could not find his shoe",
    ];

    private static RecyclingStrategy Recycling(string tree) => (RecyclingStrategy)DecodingStrategies.Create("recycling", Options((RecyclingStrategy.TreeOption, tree)));

    private static StrategyOptions Options(params (string Key, string Value)[] values) => new(values.Select(v => KeyValuePair.Create(v.Key, v.Value)));

    private Task<GenerationResult> Generate(IDecodingStrategy strategy, string prompt, int maxTokens, SamplingOptions? sampling = null, IReadOnlyList<string>? stop = null)
        => fixture.Session.GenerateAsync(strategy, new GenerationRequest { Prompt = prompt, MaxTokens = maxTokens, Sampling = sampling, Stop = stop ?? [] });

    [Theory]
    [InlineData("recycling", "chain-3")]
    [InlineData("recycling", "tree-6")]
    [InlineData("lookup", null)]
    public async Task Greedy_output_equals_plain_greedy_on_20_prompts_except_at_measured_near_ties(string strategyName, string? tree)
    {
        var divergences = await NearTieDivergencesAsync(() => tree is null ? DecodingStrategies.Create(strategyName) : Recycling(tree), _prompts, 200);
        // Reported, not hidden: on stories260K three of these prompts meet a near-tie within 200 tokens.
        output.WriteLine($"{strategyName} {tree}: {_prompts.Length - divergences.Count}/{_prompts.Length} identical; near-tie divergences: {string.Join(", ", divergences)}");
        Assert.True(divergences.Count <= _prompts.Length / 4, $"near-ties are rare, yet {divergences.Count} prompts diverged: {string.Join(", ", divergences)}");
    }

    [Fact]
    public async Task The_papers_2_2_2_tree_runs_with_the_default_sequences_and_diverges_from_greedy_only_at_near_ties()
    {
        // 81-token verification batches differ from single-token decodes in the last bits more often than narrow trees
        // (13 of 20 prompts identical over 200 tokens, every divergence at a top-2 gap below 0.01), so only the
        // lossless property is asserted here, on the first 8 prompts.
        var prompts = _prompts[..8];
        var divergences = await NearTieDivergencesAsync(() => Recycling("2.2.2"), prompts, 100);
        output.WriteLine($"recycling 2.2.2: {prompts.Length - divergences.Count}/{prompts.Length} identical; near-tie divergences: {string.Join(", ", divergences)}");
    }

    [Fact]
    public async Task The_paper_preset_drafts_2_2_2_walks_the_longest_accepted_path_and_stays_lossless()
    {
        var prompts = _prompts[..6];
        RecyclingStrategy Paper() => (RecyclingStrategy)DecodingStrategies.Create("recycling", Options((RecyclingStrategy.PresetOption, "paper")));
        var strategy = Paper();
        Assert.Equal("2.2.2", strategy.Template!.Name);
        var steps = new List<SpeculativeStep>();
        strategy.StepObserver = (_, step) => steps.Add(step);
        var result = await Generate(strategy, "Once upon a time", 120);
        var details = Assert.IsType<Dictionary<string, object?>>(result.Details);
        Assert.Equal("paper", details["preset"]);
        Assert.Equal("longest", details["accepted_path"]);
        Assert.InRange(result.Stats.Extra["longest_path_gain"], 0, 120);
        // The longest path is made of verified tokens only: each emitted token is the argmax at its parent node.
        Assert.Contains(steps, s => s.Path.Length > 1);
        foreach (var step in steps)
        {
            for (var i = 0; i < step.Emitted.Length; i++)
                Assert.Equal(step.ArgMax[step.Path[i]], step.Emitted[i]);
        }
        var divergences = await NearTieDivergencesAsync(Paper, prompts, 100);
        output.WriteLine($"recycling paper preset: {prompts.Length - divergences.Count}/{prompts.Length} identical; near-tie divergences: {string.Join(", ", divergences)}");

        var sampling = await Assert.ThrowsAsync<AgentHostException>(() => Generate(Paper(), "Once", 8, new SamplingOptions { Temperature = 0.8f, Seed = 1 }));
        Assert.Contains("recycling_preset=paper is greedy", sampling.Message, StringComparison.Ordinal);
        var unknown = Assert.Throws<AgentHostException>(() => DecodingStrategies.Create("recycling", Options((RecyclingStrategy.PresetOption, "fast"))));
        Assert.Equal("recycling_preset must be 'auto' or 'paper', not 'fast'.", unknown.Message);
    }

    // Runs each prompt with plain greedy and with the strategy; asserts that any divergence starts at a near-tie of
    // greedy (NearTie: anything else is a bug) and returns those divergences as "prompt@index".
    private async Task<List<string>> NearTieDivergencesAsync(Func<IDecodingStrategy> strategy, IReadOnlyList<string> prompts, int maxTokens)
    {
        var divergences = new List<string>();
        foreach (var prompt in prompts)
        {
            var reference = await Generate(new GreedyStrategy(), prompt, maxTokens);
            var result = await Generate(strategy(), prompt, maxTokens);
            var comparison = await NearTie.AssertEqualUpToNearTieAsync(fixture.Session, fixture.Model.Tokenize(prompt, addBos: true), reference.Tokens, result.Tokens, $"'{prompt}'");
            if (!comparison.Exact)
                divergences.Add($"{prompt}@{comparison.Agreed}");
        }
        return divergences;
    }

    [Theory]
    [InlineData("chain-4")]
    [InlineData("tree-10")]
    [InlineData("2.2.2")]
    public async Task Every_emitted_token_is_the_verifier_argmax_at_its_parent_node_and_the_cache_stays_exact(string tree)
    {
        var strategy = Recycling(tree);
        var steps = new List<SpeculativeStep>();
        strategy.StepObserver = (_, step) => steps.Add(step);
        await Generate(strategy, "Once upon a time", 150);
        await Generate(strategy, "Once upon a time", 150); // the matrix is warm now: drafts get accepted

        Assert.NotEmpty(steps);
        Assert.Contains(steps, s => s.Path.Length > 1);
        var maxDepth = TreeTemplate.Parse(tree).MaxDepth;
        foreach (var step in steps)
        {
            Assert.InRange(step.Emitted.Length, 1, maxDepth + 1);
            for (var i = 0; i < step.Emitted.Length; i++)
            {
                Assert.Equal(step.ArgMax[step.Path[i]], step.Emitted[i]);
                if (i + 1 < step.Path.Length)
                {
                    Assert.Equal(step.Path[i], step.Parents[step.Path[i + 1]]);
                    Assert.Equal(step.Emitted[i], step.Tokens[step.Path[i + 1]]);
                }
            }
        }
        // The base class verified the KV cache after every step (prompt + accepted in sequence 0, no leaf left).
        await fixture.Session.RunAsync(s => { s.VerifyKvCache(); return true; });
    }

    [Fact]
    public async Task After_a_step_each_node_row_holds_its_top_candidates_and_the_matrix_survives_requests()
    {
        var strategy = Recycling("tree-6");
        var checkedRows = 0;
        strategy.StepObserver = (session, step) =>
        {
            var matrix = session.Model.GetState(m => new RecyclingState(m)).Matrix;
            // Rows are written in BFS order, so the last node holding a token decides its row.
            for (var n = 0; n < step.Tokens.Length; n++)
            {
                if (Array.LastIndexOf(step.Tokens, step.Tokens[n]) != n)
                    continue;
                Assert.Equal(step.ArgMax[n], matrix.Row(step.Tokens[n])[0]);
                Assert.Equal(TreeTemplate.Width, matrix.Row(step.Tokens[n]).ToArray().Distinct().Count());
                checkedRows++;
            }
        };
        await Generate(strategy, "The little boy was sad because", 60);
        Assert.True(checkedRows > 10);

        var state = fixture.Model.GetState(m => new RecyclingState(m));
        Assert.Equal(fixture.Model.Vocabulary.Count, state.Matrix.VocabularySize);
        var snapshot = Enumerable.Range(0, state.Matrix.VocabularySize).Select(t => state.Matrix.Row(t).ToArray()).ToArray();
        var touched = new HashSet<int>();   // every node of every step writes its row, drafts included
        strategy.StepObserver = (_, step) => touched.UnionWith(step.Tokens);
        await Generate(strategy, "Sue went to the beach", 40);
        Assert.NotEmpty(touched);
        for (var t = 0; t < snapshot.Length; t++)
        {
            if (!touched.Contains(t))
                Assert.Equal(snapshot[t], state.Matrix.Row(t).ToArray()); // not reset between requests
        }
    }

    [Fact]
    public void Template_2_2_2_has_the_papers_shape_and_drafts_exactly_from_a_hand_filled_matrix()
    {
        var template = TreeTemplate.Parse("2.2.2");
        Assert.Equal(81, template.Size);
        Assert.Equal([8, 21, 25, 15, 8, 3], Enumerable.Range(1, 6).Select(d => template.Depth.Count(x => x == d)));
        Assert.Equal(40, template.LeafCount);

        // Row of token t: candidate c is (7t + c + 1) mod V, so every path has one known token.
        const int vocabulary = 512;
        var matrix = new AdjacencyMatrix(vocabulary);
        for (var t = 0; t < vocabulary; t++)
            matrix.SetRow(t, Enumerable.Range(0, 8).Select(c => (7 * t + c + 1) % vocabulary).ToArray());
        var tree = new DraftTree();
        tree.Reset(100);
        template.Draft(tree, matrix, maxDepth: 10);
        tree.Complete();

        Assert.Equal(81, tree.Count);
        Assert.Equal(40, tree.LeafCount);
        for (var n = 1; n < template.Size; n++)
        {
            var token = 100;
            foreach (var rank in template.Paths[n - 1])
                token = (7 * token + rank + 1) % vocabulary;
            Assert.Equal(token, tree.Token(n));
            Assert.Equal(template.Depth[n], tree.Depth(n));
        }
        // Every leaf sequence is in the root's set; a leaf's set is itself.
        Assert.Equal(40, tree.Sequences(0).Length);

        // A context with room for depth 2 only cuts the deeper nodes.
        var cut = new DraftTree();
        cut.Reset(100);
        template.Draft(cut, matrix, maxDepth: 2);
        Assert.Equal(1 + 8 + 21, cut.Count);
    }

    [Fact]
    public void Top_k_selection_matches_a_full_sort()
    {
        var random = new Random(5);
        var logits = Enumerable.Range(0, 512).Select(_ => (float)random.NextDouble()).ToArray();
        logits[17] = logits[300]; // a tie: the lower index comes first
        var ids = new int[8];
        AdjacencyMatrix.TopK(logits, ids, new float[8]);
        var expected = logits.Select((v, i) => (v, i)).OrderByDescending(x => x.v).ThenBy(x => x.i).Take(8).Select(x => x.i);
        Assert.Equal(expected, ids);
    }

    [Fact]
    public async Task End_of_generation_max_tokens_and_stop_strings_stop_where_plain_decoding_stops()
    {
        // Verification batches may flip a near-tie (NearTie); where they do, the stopping rule cannot be compared and only
        // the near-tie is asserted. Everywhere else the speculative run must stop exactly where greedy stops.
        using var story = LlamaModel.Load("656k", TestModels.TinyStories656K, new ModelSettings { ContextSize = 512, Threads = TestModels.Threads, Sequences = 16 });
        using var session = await story.CreateSessionAsync();
        var storyPrompt = story.Tokenize("Once upon a time", addBos: true);
        var greedy = await session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 480 });
        Assert.Equal(StopReason.EndOfGeneration, greedy.StopReason);
        foreach (var strategy in new IDecodingStrategy[] { Recycling("chain-3"), DecodingStrategies.Create("lookup") })
        {
            var result = await session.GenerateAsync(strategy, new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 480 });
            if ((await NearTie.AssertEqualUpToNearTieAsync(session, storyPrompt, greedy.Tokens, result.Tokens, $"{strategy.Name} on 656K")).Exact)
                Assert.Equal(StopReason.EndOfGeneration, result.StopReason);
        }

        var prompt = fixture.Model.Tokenize("Once upon a time", addBos: true);
        var reference = await Generate(new GreedyStrategy(), "Once upon a time", 120);
        var stop = reference.Text.Substring(reference.Text.IndexOf("ball", StringComparison.Ordinal) - 2, 6); // spans tokens
        var plainStop = await Generate(new GreedyStrategy(), "Once upon a time", 120, stop: [stop]);
        Assert.Equal(StopReason.StopString, plainStop.StopReason);
        for (var max = 1; max <= 41; max += 8)
        {
            var plain = await Generate(new GreedyStrategy(), "Once upon a time", max);
            foreach (var strategy in new IDecodingStrategy[] { Recycling("tree-6"), DecodingStrategies.Create("lookup") })
            {
                var result = await Generate(strategy, "Once upon a time", max);
                Assert.Equal(StopReason.MaxTokens, result.StopReason);
                await NearTie.AssertEqualUpToNearTieAsync(fixture.Session, prompt, plain.Tokens, result.Tokens, $"{strategy.Name}, {max} tokens");
                var stopped = await Generate(strategy, "Once upon a time", 120, stop: [stop]);
                if ((await NearTie.AssertEqualUpToNearTieAsync(fixture.Session, prompt, plainStop.Tokens, stopped.Tokens, $"{strategy.Name}, stop string")).Exact)
                {
                    Assert.Equal(plainStop.Text, stopped.Text);
                    Assert.Equal(StopReason.StopString, stopped.StopReason);
                }
            }
        }
    }

    [Theory]
    [InlineData("recycling")]
    [InlineData("lookup")]
    public async Task Sampling_mode_has_the_plain_sampling_distribution_chi_square(string strategyName)
    {
        // Warm the matrix so drafts are proposed and sometimes accepted during sampling.
        await Generate(Recycling("chain-2"), "Once upon a time", 100);
        var speculative = strategyName == "recycling" ? Recycling("chain-2") : DecodingStrategies.Create("lookup");

        const int runs = 300;
        var plainCounts = new Dictionary<string, int>();
        var specCounts = new Dictionary<string, int>();
        var accepted = 0.0;
        for (var seed = 1; seed <= runs; seed++)
        {
            var sampling = new SamplingOptions { Temperature = 1.5f, TopK = 0, TopP = 1, MinP = 0, Seed = (ulong)seed };
            // Two tokens after the first: the joint distribution of the 2nd and 3rd tokens goes through a tree step.
            var plain = await Generate(new SamplingStrategy(), "Once upon a time, there was a", 3, sampling);
            var spec = await Generate(speculative, "Once upon a time, there was a", 3, sampling with { Seed = (ulong)(seed + 100_000) });
            Count(plainCounts, plain.Tokens);
            Count(specCounts, spec.Tokens);
            accepted += spec.Stats.Extra["accepted_drafts"];
        }

        var (chiSquare, degrees) = TwoSampleChiSquare(plainCounts, specCounts);
        var critical = ChiSquareQuantile999(degrees);
        Assert.True(chiSquare < critical, $"chi-square {chiSquare:F1} over {degrees} df exceeds {critical:F1} (p < 0.001)");
        if (strategyName == "recycling")
            Assert.True(accepted > 0, "no draft was accepted, so the test did not exercise the tree walk");

        static void Count(Dictionary<string, int> counts, IReadOnlyList<int> tokens)
        {
            var key = string.Join(',', tokens.Skip(1).Take(2));
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }
    }

    [Fact]
    public async Task The_matrix_round_trips_through_a_file_and_a_file_for_another_model_is_refused()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("agenthost-matrix-").FullName, "m.bin");
        try
        {
            var strategy = (RecyclingStrategy)DecodingStrategies.Create("recycling", Options((RecyclingStrategy.TreeOption, "chain-2"), (RecyclingStrategy.MatrixOption, path)));
            await Generate(strategy, "Once upon a time", 40);
            Assert.True(File.Exists(path)); // the generation ends by saving it (the next run's warm start): no host saves it
            File.Delete(path);
            Assert.True(await fixture.Session.RunAsync(_ => strategy.SaveMatrix()));
            Assert.True(File.Exists(path));

            var key = AdjacencyMatrix.KeyOf(fixture.Model);
            var loaded = new AdjacencyMatrix(fixture.Model.Vocabulary.Count);
            loaded.Load(path, key);
            var state = fixture.Model.GetState(m => new RecyclingState(m));
            for (var t = 0; t < loaded.VocabularySize; t++)
                Assert.Equal(state.Matrix.Row(t).ToArray(), loaded.Row(t).ToArray());

            var error = Assert.Throws<AgentHostException>(() => loaded.Load(path, "another-model"));
            Assert.Contains("saved for another model", error.Message);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }

    [Fact]
    public async Task Auto_decodes_nothing_but_its_own_steps_and_learns_their_cost_from_them()
    {
        var result = await Generate(Recycling("auto"), "Once upon a time", 80);
        var details = Assert.IsType<Dictionary<string, object?>>(result.Details);

        Assert.Equal("auto", details["chosen_by"]);
        Assert.Equal("auto", details["template"]);
        var extra = result.Stats.Extra;
        // No calibration inside the request: one prefill decode, then one decode per step.
        Assert.Equal(1 + extra["forwards"], result.Stats.DecodeCalls);
        Assert.True(extra["plain_steps"] >= 1, "plain steps keep C(1) measured");
        Assert.True(extra["verification_cost"] >= extra["forwards"], "every step costs at least a plain step");
        Assert.True(extra["expected_tokens"] >= extra["forwards"], "every step expects at least the verifier's own token");
        var costs = fixture.Model.GetState(_ => new VerificationCosts());
        Assert.True(costs.IsMeasured(1));
        Assert.Equal(1.0, costs.Cost(1));
        Assert.True(costs.PlainStepMilliseconds > 0);
    }

    [Theory]
    [InlineData("chain-99", "Unknown tree template")]
    [InlineData("[[0],[0,0,0]]", "comes before its parent")]
    [InlineData("[[9]]", "ranks from 0 to 7")]
    [InlineData("[[0],[0]]", "appears twice")]
    public void Invalid_templates_are_clear_errors(string spec, string expected)
    {
        var error = Assert.Throws<AgentHostException>(() => TreeTemplate.Parse(spec));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public async Task A_tree_with_more_leaves_than_sequences_is_refused_before_decoding()
    {
        // 8 children of the root, 8 below each: 64 leaves, more than the default 40 sequences.
        var wide = "[" + string.Join(",", Enumerable.Range(0, 8).Select(a => $"[{a}]").Concat(Enumerable.Range(0, 64).Select(n => $"[{n / 8},{n % 8}]"))) + "]";
        var error = await Assert.ThrowsAsync<AgentHostException>(() => Generate(Recycling(wide), "Once upon a time", 10));
        Assert.Contains("Sequences >= 64", error.Message);
    }

    private static (double ChiSquare, int Degrees) TwoSampleChiSquare(Dictionary<string, int> a, Dictionary<string, int> b)
    {
        // Pool categories with fewer than 10 observations in total into one "rare" bin.
        var rareA = 0;
        var rareB = 0;
        var bins = new List<(int A, int B)>();
        foreach (var key in a.Keys.Union(b.Keys))
        {
            int x = a.GetValueOrDefault(key), y = b.GetValueOrDefault(key);
            if (x + y < 10)
            {
                rareA += x;
                rareB += y;
            }
            else
            {
                bins.Add((x, y));
            }
        }
        if (rareA + rareB > 0)
            bins.Add((rareA, rareB));
        double totalA = bins.Sum(p => p.A), totalB = bins.Sum(p => p.B);
        var chi = 0.0;
        foreach (var (x, y) in bins)
        {
            var pooled = (x + y) / (totalA + totalB);
            chi += Math.Pow(x - totalA * pooled, 2) / (totalA * pooled) + Math.Pow(y - totalB * pooled, 2) / (totalB * pooled);
        }
        return (chi, bins.Count - 1);
    }

    // Wilson-Hilferty approximation of the 0.999 quantile of chi-square(k).
    private static double ChiSquareQuantile999(int k)
    {
        const double z = 3.090;
        var h = 2.0 / (9 * k);
        return k * Math.Pow(1 - h + z * Math.Sqrt(h), 3);
    }
}
