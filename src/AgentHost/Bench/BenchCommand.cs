using System.Diagnostics;
using System.Globalization;
using AgentHost.Cli;
using AgentHost.Llama;
using AgentHost.Llama.Decoding;
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
internal sealed class BenchCommand(ModelLoader loader) : ICommand
{
    public const string PeerRow = "llamasharp-stateless";

    public string Name => "bench";

    public string Summary => "Measure strategies' tokens/s on a fixed prompt set against a baseline and LLamaSharp's StatelessExecutor.";

    public IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("model", "Catalog name or path to a .gguf file (default: AgentHost:DefaultModel).", ValueName: "NAME|PATH"),
        new("strategies", $"Comma-separated strategies to measure (default greedy,sample); the peer row '{PeerRow}' is always added.", ValueName: "A,B"),
        new("baseline", "Row the ratios are relative to (default greedy).", ValueName: "NAME"),
        new("runs", "Measured runs (default 5).", ValueName: "N"),
        new("warmup", "Warm-up runs, not counted (default 1).", ValueName: "N"),
        new("max-tokens", "Most tokens per prompt (default 128).", ValueName: "N"),
        new("prompts", "Prompt file, one per line (default: the bench/prompts.txt shipped with AgentHost).", ValueName: "FILE"),
        new("json", "Also write every measurement to this JSON file.", ValueName: "FILE"),
        .. StrategyArguments.Specs,
    ];

    public async Task<int> RunAsync(CommandLine line, CancellationToken cancellationToken)
    {
        var strategyNames = (line.GetString("strategies") ?? "greedy,sample")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var strategies = StrategyArguments.Create(line, strategyNames);
        var baseline = line.GetString("baseline") ?? "greedy";
        if (!strategyNames.Contains(baseline, StringComparer.OrdinalIgnoreCase) && baseline != PeerRow)
            throw CommandLine.Usage($"--baseline '{baseline}' is not one of the measured rows ({string.Join(", ", strategyNames.Append(PeerRow))}).");
        var runs = line.GetInt("runs", min: 1, max: 1000) ?? 5;
        var warmup = line.GetInt("warmup", min: 0, max: 100) ?? 1;
        var maxTokens = line.GetInt("max-tokens", min: 1) ?? 128;
        var prompts = ReadPrompts(line.GetString("prompts") ?? Path.Combine(AppContext.BaseDirectory, "Bench", "prompts.txt"));
        var jsonPath = line.GetString("json");

        using var model = await loader.LoadAsync(line.GetString("model"), cancellationToken);
        using var session = await model.CreateSessionAsync(cancellationToken);

        var rows = strategies.Select(s => new Row(s.Name)).Append(new Row(PeerRow)).ToList();
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
            for (var r = 0; r < strategies.Count; r++)
            {
                var sample = await RunStrategyAsync(session, strategies[r], prompts, maxTokens, cancellationToken);
                if (run >= warmup)
                    rows[r].Samples.Add(sample);
            }
            Report(run, warmup, runs, "AgentHost rows");
        }
        for (var run = 0; run < warmup + runs; run++)
        {
            var sample = await RunPeerAsync(model, prompts, maxTokens, cancellationToken);
            if (run >= warmup)
                rows[^1].Samples.Add(sample);
            Report(run, warmup, runs, PeerRow);
        }

        var baselineRow = rows.First(r => string.Equals(r.Name, baseline, StringComparison.OrdinalIgnoreCase));
        PrintTable(rows, baselineRow);
        if (jsonPath is not null)
            await WriteJsonAsync(jsonPath, model, rows, baselineRow, prompts, runs, warmup, maxTokens, cancellationToken);
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
                foreach (var (key, value) in result.Stats.Extra)
                    extra[key] = extra.GetValueOrDefault(key) + value;
            }
            return new RunSample(tokens, decodeCalls, clock.Elapsed, extra);
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
            await foreach (var _ in executor.InferAsync(prompt, inference, cancellationToken))
                tokens++;
        }
        return new RunSample(tokens, DecodeCalls: null, clock.Elapsed, Extra: []);
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
        public double TokensPerSecond => Tokens / Elapsed.TotalSeconds;
    }

    private sealed class Row(string name)
    {
        public string Name { get; } = name;

        public List<RunSample> Samples { get; } = [];

        public double MedianTokensPerSecond => Median(Samples.Select(s => s.TokensPerSecond));

        public double MedianTokens => Median(Samples.Select(s => (double)s.Tokens));

        public double? MedianDecodeCalls => Samples.Any(s => s.DecodeCalls is null) ? null : Median(Samples.Select(s => (double)s.DecodeCalls!.Value));

        public Dictionary<string, double> MedianExtra()
            => Samples.SelectMany(s => s.Extra.Keys).Distinct().ToDictionary(k => k, k => Median(Samples.Select(s => s.Extra.GetValueOrDefault(k))));

        private static double Median(IEnumerable<double> values)
        {
            var sorted = values.Order().ToArray();
            var mid = sorted.Length / 2;
            return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
        }
    }
}
