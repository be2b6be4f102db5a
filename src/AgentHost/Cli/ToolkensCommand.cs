using System.Globalization;
using AgentHost.Llama;
using AgentHost.Llama.ToolTokens;
using AgentHost.SemanticKernel.ToolTokens;
using Microsoft.SemanticKernel;

namespace AgentHost.Cli;

/// <summary>
/// The tools tool-token heads fire from the CLI: the built-in arithmetic functions (add, subtract, multiply,
/// what the demo corpus annotates) and every function of the configured plugins (a head names a tool by its
/// function name, e.g. <c>Add</c> for <c>Math.Add</c>; the corpus must use the same name).
/// </summary>
internal sealed class ToolTokenTools(AppPlugins plugins)
{
    private static readonly Kernel _builtInKernel = new();

    private static readonly KernelFunction[] _arithmetic =
    [
        KernelFunctionFactory.CreateFromMethod((long a, long b) => a + b, "add", "Adds two whole numbers."),
        KernelFunctionFactory.CreateFromMethod((long a, long b) => a - b, "subtract", "Subtracts b from a."),
        KernelFunctionFactory.CreateFromMethod((long a, long b) => a * b, "multiply", "Multiplies two whole numbers."),
    ];

    private Kernel? _kernel;

    /// <summary>The <c>--plugins</c> option.</summary>
    public static OptionSpec PluginsOption { get; } = new("plugins",
        "Tools, comma-separated: 'arithmetic' (add, subtract, multiply; the default), a built-in name, a configured plugin (Math) or plugin function (Math.Add).", Repeatable: true, ValueName: "NAMES");

    /// <summary>The tools named by <c>--plugins</c> (default: arithmetic).</summary>
    public IReadOnlyList<ToolDefinition> FromOption(CommandLine line)
    {
        var names = line.GetAll("plugins").SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();
        if (names.Count == 0)
            names.Add("arithmetic");
        var functions = names.SelectMany(name => name == "arithmetic" ? _arithmetic.Select(f => (f, _builtInKernel))
            : !name.Contains('.', StringComparison.Ordinal) && Configured().Plugins.TryGetPlugin(name, out var plugin) ? plugin.Select(f => (f, Configured()))
            : [Find(name)]);
        return [.. functions.DistinctBy(f => f.Item1.Name).Select(f => f.Item1.AsToolDefinition(f.Item2))];
    }

    /// <summary>The tools with these names (a head's tools), in this order.</summary>
    public IReadOnlyList<ToolDefinition> Resolve(IEnumerable<string> names) => [.. names.Select(Find).Select(f => f.Function.AsToolDefinition(f.Kernel))];

    /// <summary>The same tools as functions a chat client can be given (same schemas as <see cref="Resolve"/>).</summary>
    public IReadOnlyList<Microsoft.Extensions.AI.AIFunction> Functions(IEnumerable<string> names) =>
    [
#pragma warning disable CS0618   // binds the function to its kernel; SK 1.82 has no other way
        .. names.Select(Find).Select(f => f.Function.AsAIFunction(f.Kernel)),
#pragma warning restore CS0618
    ];

    /// <summary>A built-in tool, <c>Plugin.Function</c>, or a configured function by its (unique) name.</summary>
    private (KernelFunction Function, Kernel Kernel) Find(string name)
    {
        if (_arithmetic.FirstOrDefault(f => f.Name == name) is { } builtIn)
            return (builtIn, _builtInKernel);
        var kernel = Configured();
        var parts = name.Split('.', 2);
        if (parts.Length == 2)
        {
            return kernel.Plugins.TryGetFunction(parts[0], parts[1], out var function) ? (function, kernel)
                : throw CommandLine.Usage($"unknown tool or plugin '{name}': no configured plugin function of that name.");
        }
        var matches = kernel.Plugins.SelectMany(p => p.Where(f => f.Name == name)).ToList();
        return matches.Count switch
        {
            1 => (matches[0], kernel),
            0 => throw CommandLine.Usage($"unknown tool or plugin '{name}'; built-in: arithmetic ({string.Join(", ", _arithmetic.Select(f => f.Name))}); configured plugins: {string.Join(", ", kernel.Plugins.Select(p => p.Name))}."),
            _ => throw CommandLine.Usage($"tool '{name}' is ambiguous: {string.Join(", ", matches.Select(f => $"{f.PluginName}.{f.Name}"))}; name it as Plugin.Function."),
        };
    }

    private Kernel Configured()
    {
        if (_kernel is null)
        {
            _kernel = new Kernel();
            plugins.ImportInto(_kernel);
        }
        return _kernel;
    }
}

/// <summary><c>toolkens corpus</c>: writes the demo corpus (training, held-out, and held-out from unseen templates).</summary>
internal sealed class ToolkensCorpusCommand : ICommand
{
    public string Name => "toolkens corpus";

    public string Summary => "Write the demo corpus of story sentences with arithmetic calls (train.txt, heldout.txt, unseen.txt).";

    public IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("out", "Folder to write train.txt, heldout.txt and unseen.txt (templates never in training) into (required).", ValueName: "DIR"),
        new("train", "Training lines (default 400).", ValueName: "N"),
        new("heldout", "Held-out lines, each of heldout.txt and unseen.txt (default 100).", ValueName: "N"),
        new("seed", "Random seed (default 1).", ValueName: "S"),
    ];

    public Task<int> RunAsync(CommandLine line, CancellationToken cancellationToken)
    {
        var directory = line.RequireString("out");
        try
        {
            var (train, heldOut, unseen) = DemoCorpus.Write(directory, line.GetInt("train", min: 1, max: DemoCorpus.MaxLines) ?? 400, line.GetInt("heldout", min: 1, max: DemoCorpus.MaxLines) ?? 100, line.GetInt("seed", min: 0) ?? 1);
            Console.Out.WriteLine($"{train}\n{heldOut}\n{unseen}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Cannot write the corpus to '{directory}': {e.Message}", e);
        }
        return Task.FromResult(CliApp.ExitOk);
    }
}

/// <summary><c>toolkens train</c>: trains a tool-token head on an annotated corpus and saves it.</summary>
internal sealed class ToolkensTrainCommand(ModelLoader loader, ToolTokenTools toolTokenTools) : ICommand
{
    public string Name => "toolkens train";

    public string Summary => "Train a tool-token head (ToolkenGPT / TokenLearning) on an annotated corpus.";

    public IReadOnlyList<OptionSpec> Options { get; } =
    [
        ModelLoader.ModelOption,
        ToolTokenTools.PluginsOption,
        new("corpus", "Annotated corpus: one example per line, calls as <name>(args)=result (required).", ValueName: "FILE"),
        new("out", "Head file to write (required).", ValueName: "HEAD"),
        new("epochs", "Passes over the corpus (default 30).", ValueName: "N"),
        new("lr", "Adam learning rate (default 0.01).", ValueName: "X"),
        new("batch-size", "Positions per Adam step (default 64).", ValueName: "N"),
        new("lambda", "Weight of the penalty towards the prior (default 0.003; ToolkenGPT: none, TokenLearning: 0.01).", ValueName: "X"),
        new("regularizer", "frobenius (lambda*||W-W0||, default) or squared (lambda*||W-W0||^2).", ValueName: "KIND"),
        new("prior", "Prior W0: hidden (name's hidden states, default), embedding (output-embedding rows) or none.", ValueName: "KIND"),
        new("prior-scale", "Norm of the hidden-state prior rows (default 1/sqrt(5120)).", ValueName: "X"),
        new("only-tool-tokens", "Train on call starts only (TokenLearning's setting).", IsFlag: true),
        new("bias", "Bias stored in the head, added to tool scores at inference (default 0).", ValueName: "X"),
        new("seed", "Seed of the batch order (default 1).", ValueName: "S"),
        new("json", "Print the summary as JSON.", IsFlag: true),
    ];

    public async Task<int> RunAsync(CommandLine line, CancellationToken cancellationToken)
    {
        var tools = toolTokenTools.FromOption(line);
        var examples = AnnotatedCorpus.Load(line.RequireString("corpus"));
        var output = line.RequireString("out");
        var defaults = new ToolTokenTrainingOptions();
        var options = new ToolTokenTrainingOptions
        {
            Epochs = line.GetInt("epochs", min: 1) ?? defaults.Epochs,
            LearningRate = line.GetFloat("lr") ?? defaults.LearningRate,
            BatchSize = line.GetInt("batch-size", min: 1) ?? defaults.BatchSize,
            Lambda = line.GetFloat("lambda") ?? defaults.Lambda,
            Regularizer = line.GetString("regularizer") switch
            {
                null or "frobenius" => ToolTokenRegularizer.Frobenius,
                "squared" => ToolTokenRegularizer.SquaredL2,
                var other => throw CommandLine.Usage($"--regularizer must be frobenius or squared, not '{other}'."),
            },
            OnlyToolTokens = line.Has("only-tool-tokens"),
            Seed = line.GetInt("seed", min: 0) ?? defaults.Seed,
        };
        options.Validate();
        var priorKind = line.GetString("prior") switch
        {
            null or "hidden" => ToolTokenPrior.HiddenStates,
            "embedding" => ToolTokenPrior.OutputEmbeddings,
            "none" => ToolTokenPrior.None,
            var other => throw CommandLine.Usage($"--prior must be hidden, embedding or none, not '{other}'."),
        };
        var bias = line.GetFloat("bias") ?? 0;

        using var model = await loader.LoadAsync(line.GetString("model"), cancellationToken, s => s.HiddenStates = true);
        using var session = await model.CreateSessionAsync(cancellationToken);
        var names = tools.Select(t => t.Name).ToList();

        var reading = new ConsoleProgressBar("reading corpus");
        var data = await ToolTokenDataset.BuildAsync(session, examples, names, new SyncProgress<double>(f => reading.Show(f, $"{examples.Count} examples")), cancellationToken);
        reading.Finish();
        var prior = await ToolTokenPriors.BuildAsync(priorKind, session, names, line.GetFloat("prior-scale") ?? ToolTokenPriors.DefaultScale, cancellationToken);

        var trainer = new ToolTokenTrainer(data, prior, options);
        var initialLoss = trainer.CrossEntropy(prior);
        var training = new ConsoleProgressBar("training");
        var weights = trainer.Train(new SyncProgress<ToolTokenTrainingProgress>(p =>
            training.Show(p.Epoch / (double)p.Epochs, $"epoch {p.Epoch}/{p.Epochs} loss {p.Loss.ToString("F4", CultureInfo.InvariantCulture)}")), cancellationToken);
        training.Finish();
        var finalLoss = trainer.CrossEntropy(weights);

        var head = new ToolTokenHead(model.Name, ModelFingerprint.Compute(model.Path), data.Dimension, [.. tools.Select(t => new ToolTokenSlot(t.Name, t.SchemaHash))], weights, prior, bias)
        {
            TrainingInfo = new Dictionary<string, double>
            {
                ["positions"] = data.Count,
                ["calls"] = data.CallPositions,
                ["skipped_calls"] = data.SkippedCalls,
                ["epochs"] = options.Epochs,
                ["initial_loss"] = initialLoss,
                ["final_loss"] = finalLoss,
            },
        };
        head.Save(output);
        var fit = ToolTokenEvaluation.Evaluate(head, data);

        if (line.Has("json"))
        {
            Console.Out.WriteLine(JsonOutput.Serialize(new Dictionary<string, object?>
            {
                ["head"] = Path.GetFullPath(output),
                ["model"] = model.Name,
                ["tools"] = names,
                ["training"] = head.TrainingInfo,
                ["train_set"] = ToolkensEvalCommand.Metrics(fit),
            }));
        }
        else
        {
            Console.Out.WriteLine($"head: {Path.GetFullPath(output)} (model {model.Name}, tools {string.Join(", ", names)})");
            Console.Out.WriteLine(FormattableString.Invariant($"positions {data.Count}, calls {data.CallPositions}, skipped {data.SkippedCalls}; loss {initialLoss:F4} -> {finalLoss:F4}; training set F1 {fit.F1:F3}"));
        }
        return CliApp.ExitOk;
    }

    /// <summary>Reports synchronously (Progress&lt;T&gt; would post to the thread pool and print late).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}

/// <summary><c>toolkens eval</c>: precision / recall / F1 of a head's firing on an annotated corpus, against its prior alone and chance.</summary>
internal sealed class ToolkensEvalCommand(ModelLoader loader) : ICommand
{
    public string Name => "toolkens eval";

    public string Summary => "Evaluate where a tool-token head fires on an annotated corpus (vs its prior alone and chance).";

    public IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("head", "Head file (required).", ValueName: "HEAD"),
        new("corpus", "Annotated held-out corpus (required).", ValueName: "FILE"),
        new("unseen", "A second held-out corpus, written from templates never used in training (e.g. the demo's unseen.txt); reported beside --corpus.", ValueName: "FILE"),
        new("model", "Model name or path (default: the model the head was trained on).", ValueName: "NAME|PATH"),
        new("bias", "Override the head's bias.", ValueName: "X"),
        new("json", "Print the metrics as JSON.", IsFlag: true),
    ];

    public async Task<int> RunAsync(CommandLine line, CancellationToken cancellationToken)
    {
        var head = ToolTokenHead.Load(line.RequireString("head"));
        if (line.GetFloat("bias") is { } bias)
            head = head.WithBias(bias);
        var corpora = new List<(string Label, IReadOnlyList<AnnotatedExample> Examples)> { ("corpus", AnnotatedCorpus.Load(line.RequireString("corpus"))) };
        if (line.GetString("unseen") is { } unseenPath)
            corpora.Add(("unseen", AnnotatedCorpus.Load(unseenPath)));
        using var model = await loader.LoadAsync(line.GetString("model") ?? head.ModelName, cancellationToken, s => s.HiddenStates = true);
        head.EnsureMatches(model);
        using var session = await model.CreateSessionAsync(cancellationToken);

        var results = new List<Figures>();
        foreach (var (label, examples) in corpora)
        {
            var data = await ToolTokenDataset.BuildAsync(session, examples, [.. head.Tools.Select(t => t.Name)], cancellationToken: cancellationToken);
            results.Add(new Figures(label, data, ToolTokenEvaluation.Evaluate(head, data), ToolTokenEvaluation.Evaluate(head.PriorOnly(), data), ToolTokenEvaluation.Chance(data)));
        }
        if (line.Has("json"))
        {
            // The --corpus figures at the top level (as before); the unseen corpus's under "unseen".
            var json = new Dictionary<string, object?> { ["model"] = model.Name };
            foreach (var (key, value) in results[0].ToJson())
                json[key] = value;
            if (results.Count > 1)
                json["unseen"] = results[1].ToJson();
            Console.Out.WriteLine(JsonOutput.Serialize(json));
        }
        else
        {
            foreach (var r in results)
            {
                var title = r.Label == "unseen" ? "unseen templates: " : "";
                Console.Out.WriteLine($"{title}{r.Data.Count} positions, {r.Data.CallPositions} calls ({r.Data.SkippedCalls} skipped)");
                Console.Out.WriteLine("          precision  recall  f1");
                foreach (var (label, e) in new[] { ("head", r.Head), ("prior", r.Prior), ("chance", r.Chance) })
                    Console.Out.WriteLine(FormattableString.Invariant($"{label,-8}  {e.Precision,9:F3}  {e.Recall,6:F3}  {e.F1:F3}"));
            }
        }
        return CliApp.ExitOk;
    }

    // One corpus's figures: the head, its prior alone, and chance.
    private sealed record Figures(string Label, ToolTokenDataset Data, ToolTokenEvaluation Head, ToolTokenEvaluation Prior, ToolTokenEvaluation Chance)
    {
        public Dictionary<string, object?> ToJson() => new()
        {
            ["positions"] = Data.Count,
            ["calls"] = Data.CallPositions,
            ["skipped_calls"] = Data.SkippedCalls,
            ["head"] = Metrics(Head),
            ["prior"] = Metrics(Prior),
            ["chance"] = Metrics(Chance),
        };
    }

    public static Dictionary<string, double> Metrics(ToolTokenEvaluation e) => new()
    {
        ["precision"] = Math.Round(e.Precision, 4),
        ["recall"] = Math.Round(e.Recall, 4),
        ["f1"] = Math.Round(e.F1, 4),
        ["fired"] = Math.Round(e.Fired, 2),
    };
}
