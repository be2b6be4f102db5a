using AgentHost.Llama;
using System.CommandLine;
using System.Globalization;
using AgentHost.Llama.Hosting;
using AgentHost.Llama.Analysis;
using AgentHost.Llama.Models;
using System.Text.Json;
using AgentHost.Extensions.AI.Analysis;
using AgentHost.Extensions.AI.Chat;
using AgentHost.Reports;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;

namespace AgentHost.Cli;

/// <summary><c>analyze rollouts</c>: find the critical token of a wrong trajectory by rollouts and a verifier.</summary>
internal sealed class AnalyzeRolloutsCommand(ILlamaModelProvider models, AppPlugins plugins) : ICommand
{
    private static readonly RolloutOptions _defaults = new();
    private static readonly Option<string?> _trajectory = CliOption.Text("--trajectory", "The (wrong) response to analyse; without it the model writes one the verifier rejects.", "TEXT");
    private static readonly Option<string[]> _verify = CliOption.Repeated("--verify",
        $"Verifier (required; all must pass): {string.Join("; ", TrajectoryVerifiers.Kinds.Select(k => k.Help))}; function:PLUGIN.FUNCTION (a configured plugin function taking prompt and response, returning true/false); with --conversation, tool:NAME{{\"arg\": value}} (the run calls NAME with those arguments).", "KIND:ARG");
    private static readonly Option<int> _rollouts = CliOption.Int("--rollouts", "Rollouts per prefix and alternatives at the critical token (the paper: 64).", "N", _defaults.Rollouts, min: 1, max: RolloutOptions.MaxRollouts);
    private static readonly Option<int> _stride = CliOption.Int("--stride", "Analyse every k-th prefix (1: every token).", "K", _defaults.Stride, min: 1);
    private static readonly Option<float> _temperature = CliOption.Float("--temperature", "Sampling temperature of rollouts.", "T", _defaults.Temperature);
    private static readonly Option<float> _topP = CliOption.Float("--top-p", "Top-p of rollouts.", "P", _defaults.TopP);
    private static readonly Option<int> _maxTokens = SharedOptions.MaxTokens(_defaults.MaxTokens, "Most new tokens per rollout.");
    private static readonly Option<int?> _recoverThreshold = CliOption.OptionalInt("--recover-threshold", "A prefix with more correct rollouts than this resets the critical candidate (default floor(3n/64), the paper's 3 of 64).", "C", min: 0);
    private static readonly Option<string[]> _stop = CliOption.Repeated("--stop", $"Stop string of rollouts: a rollout ends at it and its text ends before it (up to {RolloutOptions.MaxStopStrings}).", "STR");
    private static readonly Option<string> _judge = CliOption.Text("--judge", "What the verifier judges: completion (the rollout's text only, as the paper) or full (the trajectory prefix followed by it).", "completion|full", "completion", "completion", "full");
    private static readonly Option<int> _trajectoryTokens = CliOption.Int("--trajectory-tokens", "Most tokens of a generated trajectory.", "N", _defaults.TrajectoryMaxTokens, min: 1);
    private static readonly Option<string> _preset = CliOption.Text("--preset",
        "default: the options' own defaults (sized for a CPU); paper: the paper's rollout sampling (64 rollouts, top-p 0.95, 1,024 tokens, its stop strings, the temperature of --paper-model on --paper-dataset). Options given explicitly win.",
        "default|paper", "default", "default", "paper");
    private static readonly Option<string> _paperDataset = CliOption.Text("--paper-dataset", "With --preset paper: the dataset whose temperature table applies (GSM8K or MATH).", "GSM8K|MATH", "GSM8K", "GSM8K", "MATH");
    private static readonly Option<string?> _paperModel = CliOption.Text("--paper-model",
        $"With --preset paper: the paper's model whose rollout temperature to use ({string.Join(", ", RolloutOptions.PaperTemperatures["GSM8K"].Keys)}); needed unless --temperature is given.", "NAME");
    private static readonly Option<string?> _conversation = CliOption.Text("--conversation",
        "Analyse an agent run: FILE holds the run as a chat completion request body ({\"messages\": [...]} with the assistant's tool_calls and the tool messages); rollouts continue the agent with the configured plugins' functions live (see --plugin). Instead of --prompt/--trajectory.", "FILE");
    private static readonly Option<string[]> _plugin = CliOption.Repeated("--plugin", "With --conversation: the tools are only this plugin (Math) or function (Math.Add); default all configured.", "NAME");
    private static readonly Option<string?> _format = CliOption.Text("--format", "With --conversation: the chat format that renders the run (default the model's).", "NAME");
    private static readonly Option<int> _agentTurns = CliOption.Int("--agent-turns", "With --conversation: most agent turns a rollout runs after the reply it finishes.", "N", 4, min: 0, max: 32);
    private static readonly Option<string?> _pairsOut = CliOption.Text("--pairs-out", "Write preference pairs from the critical token (passing alternatives chosen, the trajectory rejected) as JSONL for analyze contrast --pairs.", "FILE");
    private static readonly Option<int> _attempts = CliOption.Int("--attempts", "Trajectories to generate looking for a wrong one.", "N", _defaults.TrajectoryAttempts, min: 1, max: RolloutOptions.MaxTrajectoryAttempts);

    public string Name => "analyze rollouts";

    public string Summary => "Critical-token analysis: rollouts from every prefix of a wrong trajectory, judged by a verifier.";

    public IReadOnlyList<Symbol> Options { get; } =
    [
        SharedOptions.Model,
        SharedOptions.Prompt,
        _trajectory,
        _verify,
        _rollouts,
        _stride,
        _temperature,
        _topP,
        _maxTokens,
        SharedOptions.Seed,
        _recoverThreshold,
        _stop,
        _judge,
        _trajectoryTokens,
        _attempts,
        _preset,
        _paperDataset,
        _paperModel,
        _conversation,
        _plugin,
        _format,
        _agentTurns,
        _pairsOut,
        .. AnalyzeOutput.Options,
    ];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var output = AnalyzeOutput.From(parse);
        var preset = Preset(parse);
        var specs = parse.GetValue(_verify)!;
        if (specs.Length == 0)
            throw CliOption.Usage("'analyze rollouts' needs --verify (e.g. --verify contains:dog, --verify answer:42).");
        var conversationPath = parse.GetValue(_conversation);
        if (conversationPath is null && new Option[] { _plugin, _format, _agentTurns }.FirstOrDefault(parse.Has) is { } agentOnly)
            throw CliOption.Usage($"{agentOnly.Name} goes with --conversation.");
        if (conversationPath is not null && new Option[] { SharedOptions.Prompt, _trajectory }.FirstOrDefault(parse.Has) is { } textOnly)
            throw CliOption.Usage($"--conversation gives the prompt and the trajectory; drop {textOnly.Name}.");
        ChatFormat? format = null;
        // Explicit options win over the preset's values.
        var options = preset with
        {
            Rollouts = parse.Has(_rollouts) ? parse.GetValue(_rollouts) : preset.Rollouts,
            Stride = parse.GetValue(_stride),
            Temperature = parse.Has(_temperature) ? parse.GetValue(_temperature) : preset.Temperature,
            TopP = parse.Has(_topP) ? parse.GetValue(_topP) : preset.TopP,
            MaxTokens = parse.Has(_maxTokens) ? parse.GetValue(_maxTokens) : preset.MaxTokens,
            Seed = parse.GetValue(SharedOptions.Seed),
            RecoverThreshold = parse.GetValue(_recoverThreshold),
            TrajectoryMaxTokens = parse.GetValue(_trajectoryTokens),
            TrajectoryAttempts = parse.GetValue(_attempts),
            StopStrings = parse.Has(_stop) ? parse.GetValue(_stop)! : preset.StopStrings,
            Judge = parse.GetValue(_judge) switch
            {
                "completion" => JudgeScope.Completion,
                "full" => JudgeScope.Full,
                var other => throw CliOption.Usage($"--judge must be 'completion' or 'full', not '{other}'."),
            },
        };
        options.Validate();
        var model = await models.GetModelAsync(parse.GetValue(SharedOptions.Model), cancellationToken);
        RolloutRequest request;
        if (conversationPath is not null)
        {
            var messages = ReadConversation(conversationPath);
            format = ChatFormatCatalog.Default.Resolve(model, parse.GetValue(_format));
            var kernel = new Kernel();
            var selected = parse.GetValue(_plugin)!;
            await plugins.ImportAsync(kernel, selected.Length == 0 ? null : selected.Select(name => name.Split('.', 2)[0]), cancellationToken);
#pragma warning disable CS0618   // binds each function to the kernel, as chat --tools does
            var tools = ChatCommand.SelectFunctions(kernel, selected).Select(f => (AIFunction)f.AsAIFunction(kernel)).ToList();
#pragma warning restore CS0618
            var verifier = TrajectoryVerifiers.All(specs.Select(spec => ParseVerifier(spec, format)).ToList());
            request = AgentRollouts.Create(model, format, messages, tools, parse.GetValue(_agentTurns)).CreateRequest(verifier, options);
        }
        else
        {
            var verifier = TrajectoryVerifiers.All(specs.Select(spec => ParseVerifier(spec, null)).ToList());
            request = new RolloutRequest { Prompt = parse.Require(SharedOptions.Prompt), Trajectory = parse.GetValue(_trajectory), Verifier = verifier, Options = options };
        }

        using var session = await model.CreateSessionAsync(cancellationToken);
        var progress = new AnalysisProgressBar();
        RolloutReport report;
        try
        {
            report = await RolloutAnalyzer.AnalyzeAsync(session, request, progress, cancellationToken);
        }
        finally
        {
            progress.Finish();
        }

        var n = report.Settings.Rollouts;
        var summary = new List<string>
        {
            $"{report.Prefixes.Count} prefixes x {n} rollouts (stride {report.Settings.Stride}), seed {report.Settings.Seed}: {report.Stats.Completions} completions in {report.Stats.ElapsedMs / 1000:0.0} s.",
            "c_i: " + string.Join(' ', report.Prefixes.Select(p => $"{p.Length}:{p.Correct}")),
            report.Critical is { } c
                ? $"critical token: y_{c.Length} = \"{c.Text.Replace("\n", "\\n", StringComparison.Ordinal)}\" (token {c.Token}){(c.Span is { } span ? $", in a {span.Replace('_', ' ')}" : "")}."
                : $"critical token: none (no prefix had 0 of {n} correct).",
        };
        if (report.Alternatives is { } a)
            summary.Add(string.Create(CultureInfo.InvariantCulture, $"alternatives at y_{a.Length}: {a.Correct}/{n} pass; pass@1 {a.PassAtK[0]:0.000}, pass@{n} {a.PassAtK[n - 1]:0.000}."));
        if (report.TrajectoryPasses)
            summary.Add("note: the trajectory itself passes the verifier; the rule is meant for wrong ones.");
        if (parse.GetValue(_pairsOut) is { } pairsPath)
        {
            var pairs = CriticalPairs.From(report);
            await AnalyzeOutput.WriteFileAsync(pairsPath, string.Concat(pairs.Select(p => JsonSerializer.Serialize(new { prompt = p.Prompt, chosen = p.Chosen, rejected = p.Rejected }) + "\n")), cancellationToken);
            summary.Add($"{pairs.Count} preference pairs from the critical token (score them with analyze contrast --pairs).");
        }
        await output.WriteAsync(AnalysisRendering.ToJson(report), AnalysisRendering.ToHtml(report), output.Ansi ? AnalysisRendering.ToAnsi(report) : null, summary, cancellationToken);
        return CliApp.ExitOk;
    }

    // An agent run as a chat completion request body: its messages, read as the server reads them.
    private static List<ChatMessage> ReadConversation(string path)
    {
        var text = GenerateCommand.ReadFile(path, "conversation", BoundedFile.MaxCorpusBytes);
        try
        {
            // The server's reader wants a model name; the run's model is --model.
            var body = System.Text.Json.Nodes.JsonNode.Parse(text) as System.Text.Json.Nodes.JsonObject
                ?? throw new AgentHostException(ErrorKind.InvalidArgument, $"{path} is not a JSON object with \"messages\".");
            body.TryAdd("model", "agent-run");
            return AgentHost.Server.OpenAiRequests.ParseChat(JsonSerializer.SerializeToElement(body)).Messages;
        }
        catch (JsonException e)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"{path} is not valid JSON: {e.Message}", e);
        }
        catch (AgentHost.Server.ApiError e)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"{path}: {e.Message}", e);
        }
    }

    // The preset's options: the defaults, or the paper's sampling (its temperature from --paper-model, or --temperature instead).
    private static RolloutOptions Preset(ParseResult parse)
    {
        if (parse.GetValue(_preset) != "paper")
        {
            if (parse.Has(_paperDataset) || parse.Has(_paperModel))
                throw CliOption.Usage("--paper-dataset and --paper-model go with --preset paper.");
            return _defaults;
        }
        var dataset = parse.GetValue(_paperDataset)!;
        if (parse.GetValue(_paperModel) is { } paperModel)
            return RolloutOptions.Paper(dataset, paperModel);
        if (!parse.Has(_temperature))
        {
            throw CliOption.Usage(
                $"--preset paper takes the rollout temperature per model from the paper's configuration: give --paper-model ({string.Join(", ", RolloutOptions.PaperTemperatures[dataset].Keys)}) or --temperature.");
        }
        return RolloutOptions.Paper(dataset, RolloutOptions.PaperTemperatures[dataset].Keys.First());   // its temperature is replaced by --temperature
    }

    /// <summary>A built-in verifier, or <c>function:Plugin.Function</c> from the configured plugins.</summary>
    private ITrajectoryVerifier ParseVerifier(string spec, ChatFormat? format)
    {
        const string toolPrefix = "tool:";
        if (spec.StartsWith(toolPrefix, StringComparison.Ordinal))
        {
            return format is null
                ? throw CliOption.Usage($"--verify {spec}: a tool verifier judges an agent run; give --conversation.")
                : AgentVerifiers.ParseToolCalled(format.ToolCalls, spec[toolPrefix.Length..]);
        }
        const string prefix = "function:";
        if (!spec.StartsWith(prefix, StringComparison.Ordinal))
            return TrajectoryVerifiers.Parse(spec);
        var name = spec[prefix.Length..];
        var kernel = new Kernel();
        plugins.ImportInto(kernel);
        var parts = name.Split('.', 2);
        if (parts.Length != 2 || !kernel.Plugins.TryGetFunction(parts[0], parts[1], out var function))
            throw CliOption.Usage($"--verify {spec}: no plugin function '{name}' (give PLUGIN.FUNCTION; loaded plugins: {string.Join(", ", kernel.Plugins.Select(p => p.Name))}).");
        return new AgentHost.SemanticKernel.Analysis.KernelFunctionVerifier(kernel, function);
    }
}

/// <summary><c>analyze contrast</c>: score each response token by how much a positive model prefers it over a negative one.</summary>
internal sealed class AnalyzeContrastCommand(ILlamaModelProvider models) : ICommand
{
    private static readonly Option<string?> _negative = CliOption.Text("--negative", "Negative model with the same vocabulary (default: the positive model, for use with --negative-lora).", "NAME|PATH");
    private static readonly Option<string?> _lora = CliOption.Text("--lora", "LoRA adapter GGUF applied to the positive model.", "FILE");
    private static readonly Option<string?> _negativeLora = CliOption.Text("--negative-lora", "LoRA adapter GGUF applied to the negative model (two adapters on one base model: give --lora and --negative-lora only).", "FILE");
    private static readonly Option<string?> _response = CliOption.Text("--response", "The response to score (required without --pairs).", "TEXT");
    private static readonly Option<double> _beta = CliOption.Double("--beta", "beta (as in the paper; 0 gives the positive model's probabilities).", "B", 1.0);
    private static readonly Option<string?> _pairs = CliOption.Text("--pairs", "cDPO export: preference pairs, JSONL with prompt, chosen and rejected per line (instead of --prompt/--response; needs --cdpo).", "FILE");
    private static readonly Option<string?> _cdpo = CliOption.Text("--cdpo", "cDPO export: write the scored pairs to FILE in the shape of --cdpo-format.", "FILE");
    private static readonly Option<string> _cdpoFormat = CliOption.Text("--cdpo-format",
        "trl: JSONL, one pair per line with per-token weights (1 - s_t on rejected; chosen per --cdpo-only-neg); paper: the column JSON the paper's train_cdpo.py reads (prob_result.{pos,neg}.ce_prob over prompt + response; the trainer computes 1 - s).",
        "trl|paper", "trl", "trl", "paper");
    private static readonly Option<string> _cdpoOnlyNeg = CliOption.Text("--cdpo-only-neg",
        "true (the paper's released config): chosen tokens unweighted (weight 1); false: chosen tokens weighted by s_t. Sets the trl weights; the paper's trainer takes only_neg from its own config.",
        "true|false", "true", "true", "false");

    public string Name => "analyze contrast";

    public string Summary => "Contrastive estimation: s_t = softmax((1+beta) z_pos - beta z_neg)[y_t] per response token.";

    public IReadOnlyList<Symbol> Options { get; } =
    [
        SharedOptions.Model,
        _negative,
        _lora,
        _negativeLora,
        SharedOptions.Prompt,
        _response,
        _beta,
        _pairs,
        _cdpo,
        _cdpoFormat,
        _cdpoOnlyNeg,
        .. AnalyzeOutput.Options,
    ];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var pairsPath = parse.GetValue(_pairs);
        var cdpoPath = parse.GetValue(_cdpo);
        if ((pairsPath is null) != (cdpoPath is null))
            throw CliOption.Usage("--pairs and --cdpo go together: pairs in, weighted cDPO records out.");
        var negativeName = parse.GetValue(_negative);
        if (negativeName is null && !parse.Has(_negativeLora))
            throw CliOption.Usage("'analyze contrast' needs --negative (a second model) or --negative-lora (an adapter on the same model).");
        // The work, fixed before the models load so that bad input fails fast: one response, or a file of pairs.
        Func<ContrastiveSide, ContrastiveSide, Task<int>> work;
        var beta = parse.GetValue(_beta);
        if (pairsPath is null && (parse.Has(_cdpoFormat) || parse.Has(_cdpoOnlyNeg)))
            throw CliOption.Usage("--cdpo-format and --cdpo-only-neg shape the cDPO export; they go with --pairs and --cdpo.");
        if (pairsPath is not null && cdpoPath is not null)
        {
            Option[] singleResponse = [SharedOptions.Prompt, _response, .. AnalyzeOutput.Options];
            if (singleResponse.FirstOrDefault(parse.Has) is { } single)
                throw CliOption.Usage($"{single.Name} scores one response; with --pairs the output is --cdpo.");
            var pairs = CdpoJsonl.ReadPairs(GenerateCommand.ReadFile(pairsPath, "pairs", BoundedFile.MaxCorpusBytes), pairsPath);
            var paperFormat = parse.GetValue(_cdpoFormat) == "paper";
            var onlyNeg = parse.GetValue(_cdpoOnlyNeg) == "true";
            work = (positive, negative) => ExportCdpoAsync(positive, negative, pairs, beta, onlyNeg, paperFormat, cdpoPath, cancellationToken);
        }
        else
        {
            var output = AnalyzeOutput.From(parse);
            var request = new ContrastiveRequest { Prompt = parse.Require(SharedOptions.Prompt), Response = parse.Require(_response), Beta = beta };
            work = (positive, negative) => ScoreAsync(positive, negative, request, output, cancellationToken);
        }
        // The provider loads each model once: naming the positive model again gives the same instance.
        var positiveModel = await models.GetModelAsync(parse.GetValue(SharedOptions.Model), cancellationToken);
        var negativeModel = negativeName is null ? positiveModel : await models.GetModelAsync(negativeName, cancellationToken);
        return await work(new ContrastiveSide(positiveModel, parse.GetValue(_lora)), new ContrastiveSide(negativeModel, parse.GetValue(_negativeLora)));
    }

    private static async Task<int> ScoreAsync(ContrastiveSide positive, ContrastiveSide negative, ContrastiveRequest request, AnalyzeOutput output, CancellationToken cancellationToken)
    {
        var progress = new AnalysisProgressBar();
        ContrastiveReport report;
        try
        {
            report = await ContrastiveScorer.ScoreAsync(positive, negative, request, progress, cancellationToken);
        }
        finally
        {
            progress.Finish();
        }

        var low = report.Tokens[report.LowestIndex];
        var summary = new List<string>
        {
            string.Create(CultureInfo.InvariantCulture, $"{report.Tokens.Count} tokens scored, {report.PositiveModel} vs {report.NegativeModel}, beta {report.Beta}: mean s {report.MeanScore:0.0000}."),
            string.Create(CultureInfo.InvariantCulture, $"lowest: token {report.LowestIndex + 1} \"{low.Text.Replace("\n", "\\n", StringComparison.Ordinal)}\" s = {low.Score:0.0000}."),
        };
        await output.WriteAsync(AnalysisRendering.ToJson(report), AnalysisRendering.ToHtml(report), output.Ansi ? AnalysisRendering.ToAnsi(report) : null, summary, cancellationToken);
        return CliApp.ExitOk;
    }

    // Scores both responses of every pair and writes the cDPO records.
    private static async Task<int> ExportCdpoAsync(ContrastiveSide positive, ContrastiveSide negative, IReadOnlyList<CdpoPair> pairs, double beta, bool onlyNeg,
        bool paperFormat, string path, CancellationToken cancellationToken)
    {
        var records = new List<CdpoRecord>(pairs.Count);
        var progress = new AnalysisProgressBar();
        try
        {
            foreach (var pair in pairs)
                records.Add(await CdpoRecord.ScoreAsync(positive, negative, pair, beta, onlyNeg, progress, cancellationToken));
        }
        finally
        {
            progress.Finish();
        }
        await AnalyzeOutput.WriteFileAsync(path, paperFormat ? CdpoJsonl.ToPaperJson(records) : CdpoJsonl.ToJsonl(records), cancellationToken);
        var tokens = records.Sum(r => r.ChosenTokenIds.Length + r.RejectedTokenIds.Length);
        var shape = paperFormat ? "the paper trainer's column JSON" : onlyNeg ? "TRL JSONL, only_neg" : "TRL JSONL, chosen weighted";
        Console.Out.WriteLine($"{records.Count} pairs scored ({tokens} tokens), {positive.Name} vs {negative.Name}, beta {beta.ToString(CultureInfo.InvariantCulture)}: {shape}.");
        return CliApp.ExitOk;
    }
}

/// <summary>Where the analyze verbs write: JSON to a file or stdout, HTML to a file, the ANSI view and a summary to stdout.</summary>
internal sealed record AnalyzeOutput(string? JsonPath, string? HtmlPath, bool Ansi)
{
    private static readonly Option<string?> _json = CliOption.Text("--json", "Write the JSON report (every number needed to recount it) to FILE; '-' prints it to stdout instead of the summary.", "FILE");
    private static readonly Option<string?> _html = CliOption.Text("--html", "Write a self-contained HTML report (token heat map, curve, pass@k table) to FILE.", "FILE");
    private static readonly Option<bool> _ansi = CliOption.Flag("--ansi", "Print the text coloured by score in the terminal.");

    public static IReadOnlyList<Option> Options { get; } = [_json, _html, _ansi];

    public static AnalyzeOutput From(ParseResult parse)
    {
        var output = new AnalyzeOutput(parse.GetValue(_json), parse.GetValue(_html), parse.GetValue(_ansi));
        if (output.JsonPath == "-" && output.Ansi)
            throw CliOption.Usage("--json - and --ansi both write to stdout; write the JSON to a file.");
        if (output.JsonPath is "")
            throw CliOption.Usage("--json needs a file name (or '-').");
        if (output.HtmlPath is "" or "-")
            throw CliOption.Usage("--html needs a file name.");
        return output;
    }

    public async Task WriteAsync(string json, string html, string? ansi, IReadOnlyList<string> summary, CancellationToken cancellationToken)
    {
        if (JsonPath is { } jsonPath && jsonPath != "-")
            await WriteFileAsync(jsonPath, json, cancellationToken);
        if (HtmlPath is { } htmlPath)
            await WriteFileAsync(htmlPath, html, cancellationToken);

        if (JsonPath == "-")
        {
            Console.Out.WriteLine(json);
            foreach (var text in summary)
                Console.Error.WriteLine(text);
            return;
        }
        if (ansi is not null)
            Console.Out.Write(ansi);
        foreach (var text in summary)
            Console.Out.WriteLine(text);
    }

    public static async Task WriteFileAsync(string path, string content, CancellationToken cancellationToken)
    {
        try
        {
            var full = Path.GetFullPath(path);
            await File.WriteAllTextAsync(full, content, cancellationToken);
            Console.Error.WriteLine($"wrote {full}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new AgentHost.Llama.AgentHostException(AgentHost.Llama.ErrorKind.InvalidArgument, $"Cannot write '{path}': {e.Message}", e);
        }
    }
}

/// <summary>Analysis progress on stderr: a live bar per phase on a terminal (<see cref="ConsoleProgressBar"/>), a line per quarter, <c>phase: done/total</c>, when redirected.</summary>
internal sealed class AnalysisProgressBar : IProgress<AnalysisProgress>
{
    private readonly Lock _gate = new();
    private string? _phase;
    private int _lastQuarter = -1;
    private ConsoleProgressBar? _bar;

    public void Report(AnalysisProgress value)
    {
        lock (_gate)
        {
            if (value.Phase != _phase)
            {
                Finish();
                _phase = value.Phase;
                _lastQuarter = -1;
            }
            var fraction = value.Total > 0 ? Math.Clamp((double)value.Done / value.Total, 0, 1) : 1;
            if (Console.IsErrorRedirected)
            {
                var quarter = (int)(fraction * 4);
                if (quarter == _lastQuarter)
                    return;
                _lastQuarter = quarter;
                Console.Error.WriteLine($"{value.Phase}: {value.Done}/{value.Total}");
                return;
            }
            (_bar ??= new ConsoleProgressBar(value.Phase)).Show(fraction, $"{value.Done}/{value.Total}");
        }
    }

    public void Finish()
    {
        lock (_gate)
        {
            _bar?.Finish();
            _bar = null;
        }
    }
}
