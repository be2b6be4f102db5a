using System.Diagnostics;
using System.Globalization;
using AgentHost.Cli;
using AgentHost.Llama;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;
using LLama;
using LLama.Common;
using LLama.Sampling;

namespace AgentHost.Bench;

/// <summary>
/// <c>bench</c>: a fixed prompt set, warm-up, several runs, medians, and each row's
/// tokens/s as a ratio against the baseline measured in the same run. The peer row is LLamaSharp's
/// own <see cref="StatelessExecutor"/> with greedy sampling on the same weights and parameters.
/// </summary>
internal sealed class BenchCommand(ModelLoader loader, AgentHostOptions options) : ICommand
{
    public const string PeerRow = "llamasharp-stateless";

    /// <summary>The bare llama_decode greedy loop (<see cref="RawDecodeLoop"/>): the limit greedy is measured against.</summary>
    public const string RawRow = "raw";

    public string Name => "bench";

    public string Summary => "Measure strategies' tokens/s on a fixed prompt set against a baseline, a bare llama_decode loop and LLamaSharp's StatelessExecutor.";

    public IReadOnlyList<OptionSpec> Options { get; } =
    [
        ModelLoader.ModelOption,
        new("strategies", $"Comma-separated strategies to measure (default greedy,sample); the peer row '{PeerRow}' is always added.", ValueName: "A,B"),
        new("baseline", "Row the ratios are relative to (default greedy).", ValueName: "NAME"),
        new("runs", "Measured runs (default 5).", ValueName: "N"),
        new("warmup", "Warm-up runs, not counted (default 1).", ValueName: "N"),
        new("max-tokens", "Most tokens per prompt (default 128; per reply with --chat: 32).", ValueName: "N"),
        new("prompts", "Prompt file, one per line (default: the bench/prompts.txt shipped with AgentHost).", ValueName: "FILE"),
        new("json", "Also write every measurement to this JSON file.", ValueName: "FILE"),
        new("chat", "Chat scenario instead: a multi-turn conversation with the prompt cache on and off (prefill tokens, turn latency).", IsFlag: true),
        new("turns", "Turns of the chat scenario (default 5).", ValueName: "N"),
        new("server", "Server scenario instead: tokens/s over HTTP at 1, 4 and 16 clients, and the HTTP overhead against in-process at 1 client.", IsFlag: true),
        new("slots", "Session slots of the server scenario (default 4).", ValueName: "N"),
        new("batching", "Server scenario with continuous batching on only (default: on, then off).", IsFlag: true),
        new("trees", "Comma-separated tree templates: one recycling row per template (e.g. auto,chain-2,tree-6).", ValueName: "A,B"),
        .. StrategyArguments.Specs,
    ];

    public async Task<int> RunAsync(CommandLine line, CancellationToken cancellationToken)
    {
        if (line.Has("chat") && line.Has("server"))
            throw CommandLine.Usage("--chat and --server are separate scenarios; pick one.");
        if (line.Has("chat"))
            return await RunChatAsync(line, cancellationToken);
        if (line.Has("server"))
            return await RunServerAsync(line, cancellationToken);
        var strategyNames = (line.GetString("strategies") ?? "greedy,sample")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var rows = ExpandTrees(line, StrategyArguments.Create(line, strategyNames)).Append(new Row(RawRow, null)).Append(new Row(PeerRow, null)).ToList();
        var baseline = line.GetString("baseline") ?? "greedy";
        var baselineRow = rows.FirstOrDefault(r => string.Equals(r.Name, baseline, StringComparison.OrdinalIgnoreCase))
            ?? throw CommandLine.Usage($"--baseline '{baseline}' is not one of the measured rows ({string.Join(", ", rows.Select(r => r.Name))}).");
        var runs = line.GetInt("runs", min: 1, max: 1000) ?? 5;
        var warmup = line.GetInt("warmup", min: 0, max: 100) ?? 1;
        var maxTokens = line.GetInt("max-tokens", min: 1) ?? 128;
        var prompts = ReadPrompts(line.GetString("prompts") ?? Path.Combine(AppContext.BaseDirectory, "Bench", "prompts.txt"));
        var jsonPath = line.GetString("json");

        using var model = await loader.LoadAsync(line.GetString("model"), cancellationToken);
        using var session = await model.CreateSessionAsync(cancellationToken);

        var settings = model.Settings;
        Console.Error.WriteLine($"bench: {model.Name}, {prompts.Count} prompts x {maxTokens} max tokens, {runs} runs + {warmup} warm-up, " +
            $"threads {settings.Threads}/{settings.BatchThreads}, flash attention {settings.FlashAttention.ToString().ToLowerInvariant()}, context {settings.ContextSize}");

        // AgentHost's rows first, interleaved within each run so slow drifts of a shared machine hit
        // them alike; the peer afterwards. Order matters: once code decodes from several threads
        // (StatelessExecutor's async continuations hop between pool threads), libgomp counts more
        // OpenMP threads than cores and throttles its spin-waits for the whole process, which
        // would slow every row measured after it.
        for (var run = 0; run < warmup + runs; run++)
        {
            foreach (var row in rows.Where(r => r.Strategy is not null))
            {
                var sample = await RunStrategyAsync(session, row.Strategy!, prompts, maxTokens, cancellationToken);
                if (run >= warmup)
                    row.Samples.Add(sample);
            }
            var raw = await RawDecodeLoop.RunAsync(model, prompts, maxTokens, cancellationToken);
            if (run >= warmup)
                rows[^2].Samples.Add(new RunSample(raw.Tokens, raw.Tokens, raw.Elapsed, []) { Outputs = raw.Outputs });
            Report(run, warmup, runs, "AgentHost rows");
        }
        for (var run = 0; run < warmup + runs; run++)
        {
            var sample = await RunPeerAsync(model, prompts, maxTokens, cancellationToken);
            if (run >= warmup)
                rows[^1].Samples.Add(sample);
            Report(run, warmup, runs, PeerRow);
        }

        PrintTable(rows, baselineRow);
        if (rows.FirstOrDefault(r => r.Name == "greedy") is { } greedyRow)
            Console.WriteLine($"{RawRow} outputs equal to greedy: {rows[^2].SameOutputs(greedyRow)}/{prompts.Count}");
        PrintSpeculativeTable(rows, baselineRow);
        if (jsonPath is not null)
            await WriteJsonAsync(jsonPath, model, rows, baselineRow, prompts, runs, warmup, maxTokens, cancellationToken);
        return CliApp.ExitOk;
    }

    private async Task<int> RunChatAsync(CommandLine line, CancellationToken cancellationToken)
    {
        foreach (var other in new[] { "strategies", "baseline", "prompts", "trees", "slots", "batching" })
        {
            if (line.Has(other))
                throw CommandLine.Usage($"--{other} does not apply to the chat scenario.");
        }
        var turns = line.GetInt("turns", min: 1, max: ChatBench.MaxTurns) ?? 5;
        var runs = line.GetInt("runs", min: 1, max: 1000) ?? 5;
        var warmup = line.GetInt("warmup", min: 0, max: 100) ?? 1;
        var maxTokens = line.GetInt("max-tokens", min: 1) ?? 32;
        using var model = await loader.LoadAsync(line.GetString("model"), cancellationToken);
        await ChatBench.RunAsync(model, turns, runs, warmup, maxTokens, line.GetString("json"), cancellationToken);
        return CliApp.ExitOk;
    }

    private async Task<int> RunServerAsync(CommandLine line, CancellationToken cancellationToken)
    {
        foreach (var other in new[] { "strategies", "baseline", "trees", "turns" })
        {
            if (line.Has(other))
                throw CommandLine.Usage($"--{other} does not apply to the server scenario.");
        }
        var runs = line.GetInt("runs", min: 1, max: 1000) ?? 3;
        var warmup = line.GetInt("warmup", min: 0, max: 100) ?? 1;
        var maxTokens = line.GetInt("max-tokens", min: 1) ?? 64;
        var slots = line.GetInt("slots", min: 1, max: 64) ?? 4;
        var prompts = ReadPrompts(line.GetString("prompts") ?? Path.Combine(AppContext.BaseDirectory, "Bench", "prompts.txt"));
        var model = line.GetString("model") ?? options.DefaultModel;
        if (!options.Models.ContainsKey(model))
            throw CommandLine.Usage($"--model must name a catalog model for the server scenario (known: {string.Join(", ", options.Models.Keys)}).");
        await ServerBench.RunAsync(options, model, prompts, runs, warmup, maxTokens, slots, line.Has("batching") ? [true] : [true, false], line.GetString("json"), cancellationToken);
        return CliApp.ExitOk;
    }

    private static async Task<RunSample> RunStrategyAsync(InferenceSession session, IDecodingStrategy strategy, IReadOnlyList<string> prompts, int maxTokens, CancellationToken cancellationToken)
    {
        var samples = DecodingStrategies.Find(strategy.Name).Sampling == SamplingUse.Always;
        return await session.RunAsync(s =>
        {
            var tokens = 0;
            var decodeCalls = 0;
            var extra = new Dictionary<string, double>();
            var outputs = new List<IReadOnlyList<int>>();
            object? details = null;
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < prompts.Count; i++)
            {
                var request = new GenerationRequest
                {
                    Prompt = prompts[i],
                    MaxTokens = maxTokens,
                    // Strategies that always sample get the same seed per prompt; the others decode greedily.
                    Sampling = samples ? new SamplingOptions { Seed = (ulong)(i + 1) } : null,
                };
                var result = strategy.Generate(s, request, null, cancellationToken);
                tokens += result.Stats.GeneratedTokens;
                decodeCalls += result.Stats.DecodeCalls;
                outputs.Add(result.Tokens);
                details = result.Details;
                foreach (var (key, value) in result.Stats.Extra)
                    extra[key] = extra.GetValueOrDefault(key) + value;
            }
            return new RunSample(tokens, decodeCalls, clock.Elapsed, extra) { Outputs = outputs, Details = details };
        }, cancellationToken);
    }

    // What a .NET user gets without AgentHost: StatelessExecutor (a fresh context per call) with greedy sampling.
    private static async Task<RunSample> RunPeerAsync(LlamaModel model, IReadOnlyList<string> prompts, int maxTokens, CancellationToken cancellationToken)
    {
        var executor = new StatelessExecutor(model.Weights, model.Parameters);
        var tokens = 0;
        var clock = Stopwatch.StartNew();
        foreach (var prompt in prompts)
        {
            var inference = new InferenceParams { MaxTokens = maxTokens, SamplingPipeline = new GreedySamplingPipeline() };
            // The executor tokenizes on its own: the guard must see the text first.
            await foreach (var _ in executor.InferAsync(model.MakeTokenizable(prompt), inference, cancellationToken))
                tokens++;
        }
        return new RunSample(tokens, DecodeCalls: null, clock.Elapsed, Extra: []);
    }

    // --trees: each recycling row becomes one row per template.
    private static IEnumerable<Row> ExpandTrees(CommandLine line, IReadOnlyList<IDecodingStrategy> strategies)
    {
        var trees = line.GetString("trees")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (trees is not null && line.Has("tree"))
            throw CommandLine.Usage("give either --tree or --trees, not both.");
        if (trees is not null && !strategies.Any(s => s is RecyclingStrategy))
            throw CommandLine.Usage("--trees needs recycling among --strategies.");
        foreach (var strategy in strategies)
        {
            if (trees is null || strategy is not RecyclingStrategy)
            {
                yield return new Row(strategy.Name, strategy);
                continue;
            }
            foreach (var tree in trees)
            {
                var options = new List<KeyValuePair<string, string>> { new(RecyclingStrategy.TreeOption, tree) };
                if (line.GetString("recycling-matrix") is { } matrix)
                    options.Add(new(RecyclingStrategy.MatrixOption, matrix));
                yield return new Row($"recycling[{tree}]", DecodingStrategies.Create("recycling", new StrategyOptions(options)));
            }
        }
    }

    private static void PrintSpeculativeTable(IReadOnlyList<Row> rows, Row baseline)
    {
        var speculative = rows.Where(r => r.MedianMat is not null).ToList();
        if (speculative.Count == 0)
            return;
        var greedy = rows.FirstOrDefault(r => r.Name == "greedy");
        var ci = CultureInfo.InvariantCulture;
        Console.WriteLine();
        Console.WriteLine($"{"speculative",-22} {"template",-10} {"nodes",5} {"MAT",6} {"C(tree)",8} {"MAT/C",6} {"measured",9} {"= greedy",9}");
        foreach (var row in speculative)
        {
            var details = row.Samples[^1].Details as IReadOnlyDictionary<string, object?>;
            var template = details?.GetValueOrDefault("template") as string ?? "chain";
            var nodes = details?.GetValueOrDefault("tree_nodes");
            var cost = details?.GetValueOrDefault("c_tree") as double?;
            var mat = row.MedianMat!.Value;
            Console.WriteLine(string.Format(ci, "{0,-22} {1,-10} {2,5} {3,6:F2} {4,8} {5,6} {6,8:F2}x {7,9}",
                row.Name, template, nodes ?? "-", mat, cost is { } c ? c.ToString("F2", ci) : "-", cost is { } c2 ? (mat / c2).ToString("F2", ci) : "-",
                row.MedianTokensPerSecond / baseline.MedianTokensPerSecond,
                greedy is null ? "-" : $"{row.SameOutputs(greedy)}/{greedy.Samples[0].Outputs.Count}"));
        }
    }

    private static void Report(int run, int warmup, int runs, string what)
        => Console.Error.WriteLine(run >= warmup ? $"  {what}: run {run - warmup + 1}/{runs} done" : $"  {what}: warm-up {run + 1}/{warmup} done");

    private static List<string> ReadPrompts(string path)
    {
        if (!File.Exists(path))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Prompt file '{path}' does not exist.");
        var prompts = File.ReadAllLines(path).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        return prompts.Count > 0 ? prompts : throw new AgentHostException(ErrorKind.InvalidArgument, $"Prompt file '{path}' has no prompts.");
    }

    private static void PrintTable(IReadOnlyList<Row> rows, Row baseline)
    {
        var ci = CultureInfo.InvariantCulture;
        Console.WriteLine($"{"strategy",-22} {"median tok/s",12} {"vs " + baseline.Name,14} {"tokens/run",11} {"decodes/run",12}");
        foreach (var row in rows)
        {
            Console.WriteLine(string.Format(ci, "{0,-22} {1,12:N0} {2,13:F2}x {3,11:N0} {4,12}",
                row.Name, row.MedianTokensPerSecond, row.MedianTokensPerSecond / baseline.MedianTokensPerSecond,
                row.MedianTokens, row.MedianDecodeCalls is { } d ? d.ToString("N0", ci) : "n/a"));
        }
    }

    private static async Task WriteJsonAsync(string path, LlamaModel model, IReadOnlyList<Row> rows, Row baseline, IReadOnlyList<string> prompts,
        int runs, int warmup, int maxTokens, CancellationToken cancellationToken)
    {
        var settings = model.Settings;
        var report = new Dictionary<string, object?>
        {
            ["model"] = model.Name,
            ["model_path"] = model.Path,
            ["machine"] = new Dictionary<string, object?> { ["cores"] = Environment.ProcessorCount, ["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription },
            ["settings"] = new Dictionary<string, object?>
            {
                ["threads"] = settings.Threads,
                ["batch_threads"] = settings.BatchThreads,
                ["flash_attention"] = settings.FlashAttention,
                ["context_size"] = settings.ContextSize,
                ["batch_size"] = settings.BatchSize,
                ["gpu_layers"] = settings.GpuLayers,
            },
            ["prompts"] = prompts,
            ["max_tokens"] = maxTokens,
            ["runs"] = runs,
            ["warmup"] = warmup,
            ["baseline"] = baseline.Name,
            ["rows"] = rows.Select(r => new Dictionary<string, object?>
            {
                ["name"] = r.Name,
                ["median_tokens_per_second"] = Math.Round(r.MedianTokensPerSecond, 1),
                ["ratio_vs_baseline"] = Math.Round(r.MedianTokensPerSecond / baseline.MedianTokensPerSecond, 3),
                ["median_tokens"] = r.MedianTokens,
                ["median_decode_calls"] = r.MedianDecodeCalls,
                ["median_extra"] = r.MedianExtra(),
                ["median_mat"] = r.MedianMat is { } mat ? Math.Round(mat, 4) : null,
                ["details"] = r.Samples.Count > 0 ? r.Samples[^1].Details : null,
                ["outputs_equal_to_greedy"] = r.Name != PeerRow && rows.FirstOrDefault(g => g.Name == "greedy") is { } greedy ? r.SameOutputs(greedy) : null,
                ["runs"] = r.Samples.Select(s => new Dictionary<string, object?>
                {
                    ["tokens"] = s.Tokens,
                    ["decode_calls"] = s.DecodeCalls,
                    ["elapsed_ms"] = Math.Round(s.Elapsed.TotalMilliseconds, 3),
                    ["tokens_per_second"] = Math.Round(s.TokensPerSecond, 1),
                    ["extra"] = s.Extra,
                }).ToList(),
            }).ToList(),
        };
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
            Directory.CreateDirectory(directory);
        await File.WriteAllTextAsync(path, JsonOutput.Serialize(report), cancellationToken);
        Console.Error.WriteLine($"wrote {path}");
    }

    // Extra: the strategies' own statistics, summed over the prompts of the run.
    private sealed record RunSample(int Tokens, int? DecodeCalls, TimeSpan Elapsed, Dictionary<string, double> Extra)
    {
        public IReadOnlyList<IReadOnlyList<int>> Outputs { get; init; } = [];

        public object? Details { get; init; }

        public double TokensPerSecond => Tokens / Elapsed.TotalSeconds;
    }

    private sealed class Row(string name, IDecodingStrategy? strategy)
    {
        public string Name { get; } = name;

        /// <summary>The strategy measured, or null for the peer row.</summary>
        public IDecodingStrategy? Strategy { get; } = strategy;

        /// <summary>Tokens per forward of a speculative row: emitted by trees over forwards, medians over runs.</summary>
        public double? MedianMat => Samples.Count > 0 && Samples[0].Extra.ContainsKey("forwards")
            ? Statistics.Median(Samples.Select(s => s.Extra["tree_emitted_tokens"] / Math.Max(1, s.Extra["forwards"])))
            : null;

        /// <summary>How many prompts' outputs equal the reference row's, in the first measured run.</summary>
        public int SameOutputs(Row reference)
            => Samples[0].Outputs.Zip(reference.Samples[0].Outputs).Count(p => p.First.SequenceEqual(p.Second));

        public List<RunSample> Samples { get; } = [];

        public double MedianTokensPerSecond => Statistics.Median(Samples.Select(s => s.TokensPerSecond));

        public double MedianTokens => Statistics.Median(Samples.Select(s => (double)s.Tokens));

        public double? MedianDecodeCalls => Samples.Any(s => s.DecodeCalls is null) ? null : Statistics.Median(Samples.Select(s => (double)s.DecodeCalls!.Value));

        public Dictionary<string, double> MedianExtra()
            => Samples.SelectMany(s => s.Extra.Keys).Distinct().ToDictionary(k => k, k => Statistics.Median(Samples.Select(s => s.Extra.GetValueOrDefault(k))));

    }
}
