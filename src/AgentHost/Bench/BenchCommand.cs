using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using AgentHost.Cli;
using AgentHost.Llama;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;
using AgentHost.SemanticKernel.ToolTokens;
using LLama;
using LLama.Common;
using LLama.Sampling;

namespace AgentHost.Bench;

/// <summary>
/// <c>bench strategies</c> (plain <c>bench</c> too): a fixed prompt set, warm-up, several runs, medians, and each row's
/// tokens/s as a ratio against the baseline measured in the same run. The peer row is LLamaSharp's
/// own <see cref="StatelessExecutor"/> with greedy sampling on the same weights and parameters.
/// </summary>
internal sealed class BenchCommand(ILlamaModelProvider models, ToolTokenTools toolTokenTools) : ICommand
{
    public const string PeerRow = "llamasharp-stateless";

    private static readonly Option<string> _strategies = CliOption.Text("--strategies", $"Comma-separated strategies to measure; the peer row '{PeerRow}' is always added.", "A,B", "greedy,sample");
    private static readonly Option<string> _baseline = CliOption.Text("--baseline", "Row the ratios are relative to.", "NAME", "greedy");
    private static readonly Option<int> _runs = BenchOptions.Runs(5);
    private static readonly Option<int> _maxTokens = SharedOptions.MaxTokens(128, "Most tokens per prompt.");
    private static readonly Option<string?> _reference = CliOption.Text("--reference", "Also decode the prompts greedily on this model and report how far --model's greedy tokens agree with it (e.g. a quantized model against its F32 source).", "NAME|PATH");
    private static readonly Option<string?> _trees = CliOption.Text("--trees", "Comma-separated tree templates: one recycling row per template (e.g. auto,chain-2,tree-6).", "A,B");

    /// <summary>The bare llama_decode greedy loop (<see cref="RawDecodeLoop"/>): the limit greedy is measured against.</summary>
    public const string RawRow = "raw";

    public string Name => "bench strategies";

    public string Summary => "Measure strategies' tokens/s on a fixed prompt set against a baseline and LLamaSharp's StatelessExecutor; plain 'bench' runs this.";

    public IReadOnlyList<Symbol> Options { get; } =
    [
        SharedOptions.Model,
        _strategies,
        _baseline,
        _runs,
        BenchOptions.Warmup,
        _maxTokens,
        BenchOptions.Prompts,
        BenchOptions.JsonFile,
        _trees,
        _reference,
        .. StrategyArguments.Options,
    ];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var strategyNames = parse.GetValue(_strategies)!
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var strategies = StrategyArguments.Create(parse, strategyNames, new StrategyContext { ResolveTools = toolTokenTools.Resolve });
        var rows = ExpandTrees(parse, strategies).Append(new Row(RawRow, null)).Append(new Row(PeerRow, null)).ToList();
        var baseline = parse.GetValue(_baseline)!;
        // A row answers to its label, or to its strategy's name where it is that strategy's only row (recycling rows carry their tree).
        bool Named(string? name) => string.Equals(name, baseline, StringComparison.OrdinalIgnoreCase);
        var candidates = rows.Where(r => Named(r.Name) || Named(r.Strategy?.Name)).ToList();
        var baselineRow = candidates.FirstOrDefault(r => Named(r.Name)) ?? (candidates.Count == 1 ? candidates[0] : null)
            ?? throw CliOption.Usage($"--baseline '{baseline}' is not one of the measured rows ({string.Join(", ", rows.Select(r => r.Name))}).");
        var runs = parse.GetValue(_runs);
        var warmup = parse.GetValue(BenchOptions.Warmup);
        var maxTokens = parse.GetValue(_maxTokens);
        var prompts = BenchOptions.ReadPrompts(parse);
        var jsonPath = parse.GetValue(BenchOptions.JsonFile);

        var model = await models.GetModelAsync(parse.GetValue(SharedOptions.Model), cancellationToken);
        using var session = await model.CreateSessionAsync(cancellationToken);
        // Rows that read hidden states (toolkens) get their own session, so that the others do not pay for them.
        using var hiddenSession = strategies.Any(NeedsHiddenStates) ? await model.CreateSessionAsync(hiddenStates: true, cancellationToken) : null;

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
                var sample = await RunStrategyAsync(NeedsHiddenStates(row.Strategy!) ? hiddenSession! : session, row.Strategy!, prompts, maxTokens, cancellationToken);
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
        if (parse.GetValue(_reference) is { } referenceName)
        {
            var reference = await models.GetModelAsync(referenceName, cancellationToken);
            var expected = (await RawDecodeLoop.RunAsync(reference, prompts, maxTokens, cancellationToken)).Outputs;
            Console.WriteLine(Agreement.Describe(rows[^2].Samples[0].Outputs, expected, $"greedy ({RawRow}) against {reference.Name}"));
        }
        if (jsonPath is not null)
            await WriteJsonAsync(jsonPath, model, rows, baselineRow, prompts, runs, warmup, maxTokens, cancellationToken);
        return CliApp.ExitOk;
    }

    private static bool NeedsHiddenStates(IDecodingStrategy strategy) => DecodingStrategies.Find(strategy.Name).NeedsHiddenStates;

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
                var result = s.Generate(strategy, request, null, cancellationToken);
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

    // --trees: each recycling row becomes one row per template. Every recycling row is labelled with the tree it ran.
    private static IEnumerable<Row> ExpandTrees(ParseResult parse, IReadOnlyList<IDecodingStrategy> strategies)
    {
        var trees = parse.GetValue(_trees)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var values = StrategyArguments.Values(parse);
        if (trees is not null && values.ContainsKey(RecyclingStrategy.TreeOption))
            throw CliOption.Usage("give either --tree or --trees, not both.");
        if (trees is not null && !strategies.Any(s => s is RecyclingStrategy))
            throw CliOption.Usage("--trees needs recycling among --strategies.");
        foreach (var strategy in strategies)
        {
            if (strategy is not RecyclingStrategy recycling)
                yield return new Row(strategy.Name, strategy);
            else if (trees is null)
                yield return RecyclingRow(recycling);
            else
            {
                foreach (var tree in trees)
                    yield return RecyclingRow((RecyclingStrategy)StrategyArguments.Create(new Dictionary<string, string>(values) { [RecyclingStrategy.TreeOption] = tree }, [strategy.Name])[0]);
            }
        }
    }

    private static Row RecyclingRow(RecyclingStrategy recycling) => new($"{recycling.Name}[{recycling.Template?.Name ?? "auto"}]", recycling);

    // Per row, over each run's steps (medians over runs): verified tokens per step, MAT, the mean C(b)
    // the steps were costed at, the tokens per cost the drafts were chosen for (predicted) and got (MAT/C).
    private static void PrintSpeculativeTable(IReadOnlyList<Row> rows, Row baseline)
    {
        var speculative = rows.Where(r => r.MedianMat is not null).ToList();
        if (speculative.Count == 0)
            return;
        var greedy = rows.FirstOrDefault(r => r.Name == "greedy");
        var ci = CultureInfo.InvariantCulture;
        Console.WriteLine();
        var table = Cli.CliConsole.Table("speculative", "template", ">nodes", ">MAT", ">C", ">predicted", ">MAT/C", ">measured", ">= greedy");
        foreach (var row in speculative)
        {
            var details = row.Samples[^1].Details as IReadOnlyDictionary<string, object?>;
            var template = details?.GetValueOrDefault("template") as string ?? "chain";
            var nodes = row.MedianRatio("drafted_tokens", "forwards") + 1;
            var cost = row.MedianRatio("verification_cost", "forwards");
            var mat = row.MedianMat!.Value;
            table.Row(row.Name, template, nodes.ToString("F2", ci), mat.ToString("F2", ci), cost.ToString("F2", ci),
                row.MedianRatio("expected_tokens", "verification_cost").ToString("F2", ci) + "x", (mat / cost).ToString("F2", ci),
                (row.MedianTokensPerSecond / baseline.MedianTokensPerSecond).ToString("F2", ci) + "x",
                greedy is null ? "-" : $"{row.SameOutputs(greedy)}/{greedy.Samples[0].Outputs.Count}");
        }
        Cli.CliConsole.WriteOut(table);
    }

    private static void Report(int run, int warmup, int runs, string what)
        => Console.Error.WriteLine(run >= warmup ? $"  {what}: run {run - warmup + 1}/{runs} done" : $"  {what}: warm-up {run + 1}/{warmup} done");

    private static void PrintTable(IReadOnlyList<Row> rows, Row baseline)
    {
        var ci = CultureInfo.InvariantCulture;
        var table = Cli.CliConsole.Table("strategy", ">median tok/s", ">vs " + baseline.Name, ">tokens/run", ">decodes/run");
        foreach (var row in rows)
        {
            table.Row(row.Name, row.MedianTokensPerSecond.ToString("N0", ci), (row.MedianTokensPerSecond / baseline.MedianTokensPerSecond).ToString("F2", ci) + "x",
                row.MedianTokens.ToString("N0", ci), row.MedianDecodeCalls is { } d ? d.ToString("N0", ci) : "n/a");
        }
        Cli.CliConsole.WriteOut(table);
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
        public double? MedianMat => Samples.Count > 0 && Samples[0].Extra.ContainsKey("forwards") ? MedianRatio("tree_emitted_tokens", "forwards") : null;

        /// <summary>The median over runs of one summed statistic over another.</summary>
        public double MedianRatio(string numerator, string denominator)
            => Statistics.Median(Samples.Select(s => s.Extra.GetValueOrDefault(numerator) / Math.Max(1e-9, s.Extra.GetValueOrDefault(denominator))));

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
