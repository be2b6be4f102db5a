using System.Text.Json;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Grammar;
using AgentHost.Llama.ToolTokens;

namespace AgentHost.Cli;

/// <summary><c>generate</c>: continue a prompt with a decoding strategy, streaming text to stdout.</summary>
internal sealed class GenerateCommand(ModelLoader loader, ToolTokenTools toolTokenTools) : ICommand
{
    public string Name => "generate";

    public string Summary => "Continue a prompt, streaming the text (or one JSON object with --json).";

    public IReadOnlyList<OptionSpec> Options { get; } =
    [
        ModelLoader.ModelOption,
        new("prompt", "The text to continue (required).", ValueName: "TEXT"),
        new("strategy", $"Decoding strategy: {string.Join(", ", DecodingStrategies.Names)}, {ToolTokenStrategy.StrategyName} (default greedy).", ValueName: "NAME"),
        new("head", $"[{ToolTokenStrategy.StrategyName}] Tool-token head file (from 'toolkens train'); its tools are the built-in ones of that name.", ValueName: "HEAD"),
        new("tool-bias", $"[{ToolTokenStrategy.StrategyName}] Override the head's bias on tool scores.", ValueName: "X"),
        new("max-tokens", "Most tokens to generate (default 256).", ValueName: "N"),
        new("temperature", "Sampling temperature (default 0.8).", ValueName: "T"),
        new("top-k", "Top-k, 0 = off (default 40).", ValueName: "K"),
        new("top-p", "Top-p in (0, 1] (default 0.95).", ValueName: "P"),
        new("min-p", "Min-p in [0, 1) (default 0.05).", ValueName: "P"),
        new("repeat-penalty", "Repetition penalty, 1 = off (default 1).", ValueName: "X"),
        new("frequency-penalty", "Frequency penalty (default 0).", ValueName: "X"),
        new("presence-penalty", "Presence penalty (default 0).", ValueName: "X"),
        new("seed", "Random seed for sampling (default: random, reported).", ValueName: "S"),
        new("stop", "Stop string; the text ends before it.", Repeatable: true, ValueName: "STR"),
        new("grammar", "GBNF grammar file (llama.cpp format, root rule 'root') the output must follow (greedy, sample).", ValueName: "FILE"),
        new("json-schema", "JSON schema file; the output is one JSON value valid against it (greedy, sample).", ValueName: "FILE"),
        new("grammar-trigger", "Make the grammar lazy: free text until this word, then the grammar.", Repeatable: true, ValueName: "WORD"),
        new("json", "Print one JSON object (text, token_ids, strategy, model, stats) instead of streaming.", IsFlag: true),
        .. StrategyArguments.Specs,
    ];

    public async Task<int> RunAsync(CommandLine line, CancellationToken cancellationToken)
    {
        var request = BuildRequest(line);
        var strategyName = line.GetString("strategy") ?? "greedy";
        var toolTokens = strategyName == ToolTokenStrategy.StrategyName;
        var strategy = toolTokens ? CreateToolTokens(line) : StrategyArguments.Create(line, [strategyName])[0];
        if (!toolTokens && (line.Has("head") || line.Has("tool-bias")))
            throw CommandLine.Usage($"--head and --tool-bias apply to strategy {ToolTokenStrategy.StrategyName} only.");
        if (request.Sampling is not null && !toolTokens && DecodingStrategies.Find(strategyName).Sampling == SamplingUse.Never)
            throw CommandLine.Usage($"sampling options have no effect with strategy {strategy.Name}; use --strategy sample (or recycling, lookup).");
        var json = line.Has("json");

        // Tool tokens score the final hidden state, which the context only returns when asked to.
        using var model = await loader.LoadAsync(line.GetString("model"), cancellationToken, toolTokens ? s => s.HiddenStates = true : null);
        using var session = await model.CreateSessionAsync(cancellationToken);

        Action<string>? onText = json ? null : piece => Console.Out.Write(piece);
        var result = await session.GenerateAsync(strategy, request, onText, cancellationToken);

        if (json)
        {
            Console.Out.WriteLine(JsonOutput.Serialize(new Dictionary<string, object?>
            {
                ["model"] = model.Name,
                ["model_path"] = model.Path,
                ["strategy"] = result.Strategy,
                ["prompt"] = request.Prompt,
                ["text"] = result.Text,
                ["token_ids"] = result.Tokens,
                ["stop_reason"] = result.StopReason,
                ["stats"] = JsonOutput.Stats(result.Stats),
                ["details"] = result.Details,
            }));
        }
        else
        {
            Console.Out.WriteLine();
            Console.Out.Flush();
            var stats = result.Stats;
            Console.Error.WriteLine($"[{result.Strategy}: {stats.GeneratedTokens} tokens, {stats.TokensPerSecond:F0} tok/s, stop: {System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(result.StopReason.ToString())}{(stats.Seed is { } seed ? $", seed {seed}" : "")}]");
        }
        return CliApp.ExitOk;
    }

    // Tool tokens: the head plus the built-in tools it names (sampling options, if any, apply over vocabulary and tools).
    private ToolTokenStrategy CreateToolTokens(CommandLine line)
    {
        var head = ToolTokenHead.Load(line.GetString("head") ?? throw CommandLine.Usage($"strategy {ToolTokenStrategy.StrategyName} needs --head (a file from 'toolkens train')."));
        var tools = toolTokenTools.Resolve(head.Tools.Select(t => t.Name));
        return new ToolTokenStrategy(head, tools, new ToolTokenOptions { Bias = line.GetFloat("tool-bias") });
    }

    private static readonly string[] _samplingOptions = ["temperature", "top-k", "top-p", "min-p", "repeat-penalty", "frequency-penalty", "presence-penalty", "seed"];

    private static GenerationRequest BuildRequest(CommandLine line)
    {
        var request = new GenerationRequest
        {
            Prompt = line.RequireString("prompt"),
            MaxTokens = line.GetInt("max-tokens", min: 1) ?? 256,
            Stop = line.GetAll("stop"),
            Sampling = _samplingOptions.Any(line.Has) ? BuildSampling(line) : null,
            Grammar = BuildGrammar(line),
        };
        request.Validate();
        return request;
    }

    private static GrammarConstraint? BuildGrammar(CommandLine line)
    {
        var gbnfFile = line.GetString("grammar");
        var schemaFile = line.GetString("json-schema");
        var triggers = line.GetAll("grammar-trigger");
        if (gbnfFile is not null && schemaFile is not null)
            throw CommandLine.Usage("--grammar and --json-schema exclude each other; pass one.");
        if (gbnfFile is null && schemaFile is null)
            return triggers.Count == 0 ? null : throw CommandLine.Usage("--grammar-trigger needs --grammar or --json-schema.");

        var grammar = gbnfFile is not null
            ? new GrammarConstraint { Gbnf = ReadFile(gbnfFile, "grammar") }
            : JsonSchemaGrammar.FromSchema(ParseSchema(schemaFile!));
        return grammar with { TriggerWords = triggers };
    }

    private static JsonElement ParseSchema(string path)
    {
        var text = ReadFile(path, "JSON schema");
        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw CommandLine.Usage($"The JSON schema file '{path}' is not valid JSON: {ex.Message}");
        }
    }

    internal static string ReadFile(string path, string what)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw CommandLine.Usage($"Cannot read the {what} file '{path}': {ex.Message}");
        }
    }

    private static SamplingOptions BuildSampling(CommandLine line)
    {
        var defaults = new SamplingOptions();
        return new SamplingOptions
        {
            Temperature = line.GetFloat("temperature") ?? defaults.Temperature,
            TopK = line.GetInt("top-k", min: 0) ?? defaults.TopK,
            TopP = line.GetFloat("top-p") ?? defaults.TopP,
            MinP = line.GetFloat("min-p") ?? defaults.MinP,
            RepeatPenalty = line.GetFloat("repeat-penalty") ?? defaults.RepeatPenalty,
            FrequencyPenalty = line.GetFloat("frequency-penalty") ?? defaults.FrequencyPenalty,
            PresencePenalty = line.GetFloat("presence-penalty") ?? defaults.PresencePenalty,
            Seed = line.GetULong("seed"),
        };
    }
}
