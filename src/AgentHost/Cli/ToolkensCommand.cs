using System.CommandLine;
using System.Globalization;
using AgentHost.Llama.Hosting;
using AgentHost.Llama;
using AgentHost.Llama.ToolTokens;
using AgentHost.SemanticKernel.ToolTokens;
using Microsoft.SemanticKernel;

namespace AgentHost.Cli;

/// <summary><c>toolkens corpus</c>: writes the demo corpus (training, held-out, and held-out from unseen templates).</summary>
internal sealed class ToolkensCorpusCommand : ICommand
{
    public string Name => "toolkens corpus";

    public string Summary => "Write the demo corpus of story sentences with arithmetic calls (train.txt, heldout.txt, unseen.txt, phrasings.txt, demonstrations/).";

    private static readonly Option<string?> _out = CliOption.Text("--out",
        "Folder to write train.txt, heldout.txt, unseen.txt (templates never in training), phrasings.txt (written by hand) and demonstrations/TOOL.txt into (required).", "DIR");
    private static readonly Option<int> _train = CliOption.Int("--train", "Training lines.", "N", DemoCorpus.DefaultTrainLines, min: 1, max: DemoCorpus.MaxLines);
    private static readonly Option<int> _heldOut = CliOption.Int("--heldout", "Held-out lines, each of heldout.txt and unseen.txt.", "N", 100, min: 1, max: DemoCorpus.MaxLines);
    private static readonly Option<int> _seed = CliOption.Int("--seed", "Random seed.", "S", 1, min: 0);

    public IReadOnlyList<Symbol> Options { get; } = [_out, _train, _heldOut, _seed];

    public Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var directory = parse.Require(_out);
        try
        {
            var (train, heldOut, unseen) = DemoCorpus.Write(directory, parse.GetValue(_train), parse.GetValue(_heldOut), parse.GetValue(_seed));
            var phrasings = Path.Combine(directory, "phrasings.txt");
            File.WriteAllText(phrasings, DemoCorpus.Phrasings);
            var demonstrations = Path.Combine(directory, "demonstrations");
            ToolTokenDemonstrations.Write(demonstrations, DemoCorpus.ToolNames.ToDictionary(t => t, t => DemoCorpus.ArgumentPrompt(t)));
            Console.Out.WriteLine($"{train}\n{heldOut}\n{unseen}\n{phrasings}\n{demonstrations}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Cannot write the corpus to '{directory}': {e.Message}", e);
        }
        return Task.FromResult(CliApp.ExitOk);
    }
}

/// <summary><c>toolkens train</c>: trains a tool-token head on an annotated corpus and saves it.</summary>
internal sealed class ToolkensTrainCommand(ILlamaModelProvider models, ToolTokenTools toolTokenTools) : ICommand
{
    private static readonly ToolTokenTrainingOptions _defaults = new();
    private static readonly Option<string[]> _plugins = CliOption.Repeated("--plugins",
        "Tools, comma-separated: 'arithmetic' (add, subtract, multiply; the default), a built-in name, a configured plugin (Math) or plugin function (Math.Add).", "NAMES");
    private static readonly Option<string?> _corpus = CliOption.Text("--corpus", "Annotated corpus: one example per line, calls as <name>(args)=result (required).", "FILE");
    private static readonly Option<string?> _out = CliOption.Text("--out", "Head file to write (required).", "HEAD");
    private static readonly Option<int> _epochs = CliOption.Int("--epochs", "Passes over the corpus.", "N", _defaults.Epochs, min: 1);
    private static readonly Option<double> _lr = CliOption.Double("--lr", "Adam learning rate.", "X", _defaults.LearningRate);
    private static readonly Option<int> _batchSize = CliOption.Int("--batch-size", "Positions per Adam step.", "N", _defaults.BatchSize, min: 1);
    private static readonly Option<double> _lambda = CliOption.Double("--lambda", "Weight of the penalty towards the prior (ToolkenGPT: none, TokenLearning: 0.01).", "X", _defaults.Lambda);
    private static readonly Option<string> _regularizer = CliOption.Text("--regularizer", "frobenius (lambda*||W-W0||) or squared (lambda*||W-W0||^2).", "KIND", "frobenius", "frobenius", "squared");
    private static readonly Option<string> _prior = CliOption.Text("--prior", "Prior W0: hidden (the name's hidden states), embedding (output-embedding rows) or none.", "KIND", "hidden", "hidden", "embedding", "none");
    private static readonly Option<float> _priorScale = CliOption.Float("--prior-scale", "Norm of the hidden-state prior rows (1/sqrt(5120)).", "X", ToolTokenPriors.DefaultScale);
    private static readonly Option<bool> _onlyToolTokens = CliOption.Flag("--only-tool-tokens", "Train on call starts only (TokenLearning's setting).");
    private static readonly Option<float> _bias = CliOption.Float("--bias", "Bias stored in the head, added to tool scores at inference.", "X", 0);
    private static readonly Option<int> _context = CliOption.Int("--context",
        "Context window: the head also reads the mean hidden state of the last N tokens (0: h alone, as the papers).", "N", ToolTokenContext.DefaultWindow, min: 0, max: 4096);
    private static readonly Option<int> _negatives = CliOption.Int("--negatives",
        "Stories the model writes itself, added as text where no tool belongs (0: the corpus alone).", "N", ToolTokenNegatives.DefaultStories, min: 0, max: 10_000);
    private static readonly Option<int> _seed = CliOption.Int("--seed", "Seed of the batch order, the random start (--prior none) and the model's stories.", "S", _defaults.Seed, min: 0);
    private static readonly Option<bool> _perSequence = CliOption.Flag("--per-sequence", "One Adam step per corpus line (ToolkenGPT's trainer) instead of --batch-size positions.");
    private static readonly Option<int> _validation = CliOption.Int("--validation",
        "Hold out the corpus's last N lines and keep the epoch with the best F1 on them (0: train on all lines, keep the last epoch).", "N", 0, min: 0);
    private static readonly Option<string?> _task = CliOption.Text("--task",
        "Take the bias ToolkenGPT uses for this task: gsm8k-xl (3.0), funcqa-oh (2.7), funcqa-mh (4.0), kamel or virtualhome (10).", "TASK", [.. ToolTokenPaper.TaskBiases.Keys]);
    private static readonly Option<string?> _demonstrations = CliOption.Text("--demonstrations",
        "Folder of argument demonstrations, TOOL.txt per tool, stored in the head and used in argument mode.", "DIR");
    private static readonly Option<string> _preset = CliOption.Text("--preset",
        "paper: ToolkenGPT's released settings (20 epochs at 1e-3, one line per step, random start, h alone, best of the last 100 lines, the GSM8K-XL bias 3.0, no model stories); options given explicitly still apply.",
        "NAME", "default", "default", ToolTokenPaper.PresetName);

    public string Name => "toolkens train";

    public string Summary => "Train a tool-token head (ToolkenGPT / TokenLearning) on an annotated corpus.";

    public IReadOnlyList<Symbol> Options { get; } =
    [
        SharedOptions.Model, _plugins, _corpus, _out, _epochs, _lr, _batchSize, _lambda, _regularizer, _prior, _priorScale, _onlyToolTokens, _bias, _context, _negatives, _seed,
        _perSequence, _validation, _task, _demonstrations, _preset, SharedOptions.Json,
    ];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var tools = toolTokenTools.FromNames(parse.GetValue(_plugins)!);
        var examples = AnnotatedCorpus.Load(parse.Require(_corpus));
        var output = parse.Require(_out);
        // The preset supplies the paper's values for every option not given explicitly.
        var paper = parse.GetValue(_preset) == ToolTokenPaper.PresetName;
        T Value<T>(Option<T> option, T paperValue) => paper && !parse.Has(option) ? paperValue : parse.GetValue(option)!;
        var preset = ToolTokenTrainingOptions.Paper;
        var options = new ToolTokenTrainingOptions
        {
            Epochs = Value(_epochs, preset.Epochs),
            LearningRate = Value(_lr, preset.LearningRate),
            BatchSize = parse.GetValue(_batchSize),
            PerSequence = Value(_perSequence, preset.PerSequence),
            Lambda = Value(_lambda, preset.Lambda),
            Regularizer = parse.GetValue(_regularizer) switch
            {
                "frobenius" => ToolTokenRegularizer.Frobenius,
                "squared" => ToolTokenRegularizer.SquaredL2,
                var other => throw CliOption.Usage($"--regularizer must be frobenius or squared, not '{other}'."),
            },
            OnlyToolTokens = Value(_onlyToolTokens, preset.OnlyToolTokens),
            Seed = Value(_seed, preset.Seed),
        };
        options.Validate();
        var priorKind = Value(_prior, "none") switch
        {
            "hidden" => ToolTokenPrior.HiddenStates,
            "embedding" => ToolTokenPrior.OutputEmbeddings,
            "none" => ToolTokenPrior.None,
            var other => throw CliOption.Usage($"--prior must be hidden, embedding or none, not '{other}'."),
        };
        if (parse.Has(_bias) && parse.Has(_task))
            throw CliOption.Usage("--bias and --task both set the bias; give one.");
        var bias = parse.GetValue(_task) is { } task ? ToolTokenPaper.BiasOf(task) : Value(_bias, ToolTokenPaper.BiasOf(ToolTokenPaper.DefaultTask));
        var window = Value(_context, ToolTokenPaper.ContextWindow);
        var validation = Value(_validation, ToolTokenPaper.HeldOutLines);
        if (validation >= examples.Count)
            throw CliOption.Usage($"--validation {validation} holds out every line of the corpus ({examples.Count}); hold out fewer.");
        var heldOutExamples = examples.Skip(examples.Count - validation).ToList();
        examples = [.. examples.Take(examples.Count - validation)];
        var demonstrations = parse.GetValue(_demonstrations) is { } folder ? ToolTokenDemonstrations.Load(folder, [.. tools.Select(t => t.Name)]) : null;

        var model = await models.GetModelAsync(parse.GetValue(SharedOptions.Model), cancellationToken);
        // Training reads final hidden states: a session created for them, on the model as loaded.
        using var session = await model.CreateSessionAsync(hiddenStates: true, cancellationToken);
        var names = tools.Select(t => t.Name).ToList();

        if (Value(_negatives, ToolTokenPaper.Negatives) is > 0 and var stories)
        {
            var writing = new ConsoleProgressBar("model's stories");
            examples = [.. examples, .. await ToolTokenNegatives.SampleAsync(session, stories, options.Seed,
                new SyncProgress<double>(f => writing.Show(f, $"{stories} stories")), cancellationToken)];
            writing.Finish();
        }
        var reading = new ConsoleProgressBar("reading corpus");
        var data = await ToolTokenDataset.BuildAsync(session, examples, names, window, new SyncProgress<double>(f => reading.Show(f, $"{examples.Count} examples")), cancellationToken);
        reading.Finish();
        var namePrior = await ToolTokenPriors.BuildAsync(priorKind, session, names, parse.GetValue(_priorScale), options.Seed, cancellationToken);
        var heldOut = heldOutExamples.Count > 0 ? await ToolTokenDataset.BuildAsync(session, heldOutExamples, names, window, cancellationToken: cancellationToken) : null;

        var trainer = new ToolTokenTrainer(data, namePrior, options, heldOut);
        var prior = trainer.Prior;
        var initialLoss = trainer.CrossEntropy(prior);
        var training = new ConsoleProgressBar("training");
        var weights = trainer.Train(new SyncProgress<ToolTokenTrainingProgress>(p =>
            training.Show(p.Epoch / (double)p.Epochs, $"epoch {p.Epoch}/{p.Epochs} loss {p.Loss.ToString("F4", CultureInfo.InvariantCulture)}"
                + (p.HeldOutF1 is { } f1 ? $" held-out F1 {f1.ToString("F3", CultureInfo.InvariantCulture)}" : ""))), cancellationToken);
        training.Finish();
        var finalLoss = trainer.CrossEntropy(weights);

        var head = new ToolTokenHead(model.Name, ModelFingerprint.Compute(model.Path), data.Dimension, [.. tools.Select(t => new ToolTokenSlot(t.Name, t.SchemaHash))], weights, prior, bias)
        {
            ContextWindow = data.ContextWindow,
            TrainingInfo = new Dictionary<string, double>
            {
                ["positions"] = data.Count,
                ["calls"] = data.CallPositions,
                ["skipped_calls"] = data.SkippedCalls,
                ["epochs"] = options.Epochs,
                ["best_epoch"] = trainer.BestEpoch,
                ["heldout_lines"] = heldOutExamples.Count,
                ["per_sequence"] = options.PerSequence ? 1 : 0,
                ["initial_loss"] = initialLoss,
                ["final_loss"] = finalLoss,
            },
        };
        if (trainer.HeldOutF1 is { } bestF1)
            head = head.WithTrainingInfo("heldout_f1", bestF1);
        if (demonstrations is not null)
            head = head.WithArgumentPrompts(demonstrations);
        head.Save(output);
        var fit = ToolTokenEvaluation.Evaluate(head, data);

        if (parse.GetValue(SharedOptions.Json))
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
            if (trainer.HeldOutF1 is { } heldOutF1)
                Console.Out.WriteLine(FormattableString.Invariant($"kept epoch {trainer.BestEpoch} of {options.Epochs}: F1 {heldOutF1:F3} on the last {heldOutExamples.Count} lines"));
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
internal sealed class ToolkensEvalCommand(ILlamaModelProvider models) : ICommand
{
    private static readonly Option<string?> _head = CliOption.Text("--head", "Head file (required).", "HEAD");
    private static readonly Option<string?> _corpus = CliOption.Text("--corpus", "Annotated held-out corpus (required).", "FILE");
    private static readonly Option<string?> _unseen = CliOption.Text("--unseen",
        "A second held-out corpus, written from templates never used in training (e.g. the demo's unseen.txt); reported beside --corpus.", "FILE");
    private static readonly Option<string?> _model = CliOption.Text("--model", "Model name or path (default: the model the head was trained on).", "NAME|PATH");
    private static readonly Option<float?> _bias = CliOption.OptionalFloat("--bias", "Override the head's bias.", "X");

    public string Name => "toolkens eval";

    public string Summary => "Evaluate where a tool-token head fires on an annotated corpus (vs its prior alone and chance).";

    public IReadOnlyList<Symbol> Options { get; } = [_head, _corpus, _unseen, _model, _bias, SharedOptions.Json];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var head = ToolTokenHead.Load(parse.Require(_head));
        if (parse.GetValue(_bias) is { } bias)
            head = head.WithBias(bias);
        var corpora = new List<(string Label, IReadOnlyList<AnnotatedExample> Examples)> { ("corpus", AnnotatedCorpus.Load(parse.Require(_corpus))) };
        if (parse.GetValue(_unseen) is { } unseenPath)
            corpora.Add(("unseen", AnnotatedCorpus.Load(unseenPath)));
        var model = await models.GetModelAsync(parse.GetValue(_model) ?? head.ModelName, cancellationToken);
        head.EnsureMatches(model);
        using var session = await model.CreateSessionAsync(hiddenStates: true, cancellationToken);

        var results = new List<Figures>();
        foreach (var (label, examples) in corpora)
        {
            var data = await ToolTokenDataset.BuildAsync(session, examples, [.. head.Tools.Select(t => t.Name)], head.ContextWindow, cancellationToken: cancellationToken);
            results.Add(new Figures(label, data, ToolTokenEvaluation.Evaluate(head, data), ToolTokenEvaluation.Evaluate(head.PriorOnly(), data), ToolTokenEvaluation.Chance(data)));
        }
        if (parse.GetValue(SharedOptions.Json))
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
