using AgentHost.Llama;
using System.CommandLine;
using System.Text.Json;
using AgentHost.Llama.Hosting;
using AgentHost.SemanticKernel.ToolTokens;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Grammar;
using AgentHost.Llama.ToolTokens;

namespace AgentHost.Cli;

/// <summary><c>generate</c>: continue a prompt with a decoding strategy, streaming text to stdout.</summary>
internal sealed class GenerateCommand(ILlamaModelProvider models, ToolTokenTools toolTokenTools) : ICommand
{
    private static readonly Option<string> _strategy = SharedOptions.Strategy();
    private static readonly Option<int> _maxTokens = SharedOptions.MaxTokens(256);
    private static readonly Option<string?> _grammar = CliOption.Text("--grammar", "GBNF grammar file (llama.cpp format, root rule 'root') the output must follow (greedy, sample).", "FILE");
    private static readonly Option<string?> _jsonSchema = CliOption.Text("--json-schema", "JSON schema file; the output is one JSON value valid against it (greedy, sample).", "FILE");
    private static readonly Option<string[]> _grammarTrigger = CliOption.Repeated("--grammar-trigger", "Make the grammar lazy: free text until this word, then the grammar.", "WORD");

    public string Name => "generate";

    public string Summary => "Continue a prompt, streaming the text (or one JSON object with --json: text, token_ids, strategy, model, stats).";

    public IReadOnlyList<Symbol> Options { get; } =
    [
        SharedOptions.Model,
        SharedOptions.Prompt,
        _strategy,
        _maxTokens,
        .. SharedOptions.Sampling,
        SharedOptions.Stop,
        _grammar,
        _jsonSchema,
        _grammarTrigger,
        SharedOptions.Json,
        .. StrategyArguments.Options,
    ];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var request = BuildRequest(parse);
        var descriptor = DecodingStrategies.Find(parse.GetValue(_strategy)!);
        DecodingStrategies.EnsureSamplingApplies(descriptor, SharedOptions.Sampling.FirstOrDefault(parse.Has)?.Name);
        // Strategies that fire tools (tool tokens) get the built-in tools their head names.
        var strategy = StrategyArguments.Create(parse, [descriptor.Name], new StrategyContext { ResolveTools = toolTokenTools.Resolve })[0];
        var json = parse.GetValue(SharedOptions.Json);

        var model = await models.GetModelAsync(parse.GetValue(SharedOptions.Model), cancellationToken);
        // The engine chat and the server use; some strategies score the final hidden state, which only a context created for it returns.
        using var engine = new DecodeEngine(model, hiddenStates: descriptor.NeedsHiddenStates);

        GenerationResult result = null!;   // the stream's last update always carries it
        await foreach (var update in engine.GenerateStreamingAsync(strategy, request, cancellationToken))
        {
            if (update.Result is not null)
                result = update.Result;
            else if (!json)
                Console.Out.Write(update.Text);
        }

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

    private static GenerationRequest BuildRequest(ParseResult parse)
    {
        var request = new GenerationRequest
        {
            Prompt = parse.Require(SharedOptions.Prompt),
            MaxTokens = parse.GetValue(_maxTokens),
            Stop = parse.GetValue(SharedOptions.Stop)!,
            Sampling = SharedOptions.ReadSampling(parse),
            Grammar = BuildGrammar(parse),
        };
        request.Validate();
        return request;
    }

    private static GrammarConstraint? BuildGrammar(ParseResult parse)
    {
        var gbnfFile = parse.GetValue(_grammar);
        var schemaFile = parse.GetValue(_jsonSchema);
        var triggers = parse.GetValue(_grammarTrigger)!;
        if (gbnfFile is not null && schemaFile is not null)
            throw CliOption.Usage("--grammar and --json-schema exclude each other; pass one.");
        if (gbnfFile is null && schemaFile is null)
            return triggers.Length == 0 ? null : throw CliOption.Usage("--grammar-trigger needs --grammar or --json-schema.");

        var grammar = gbnfFile is not null
            ? new GrammarConstraint { Gbnf = ReadFile(gbnfFile, "grammar", BoundedFile.MaxGrammarBytes) }
            : JsonSchemaGrammar.FromSchema(ParseSchema(schemaFile!));
        return grammar with { TriggerWords = triggers };
    }

    private static JsonElement ParseSchema(string path)
    {
        var text = ReadFile(path, "JSON schema", BoundedFile.MaxSchemaBytes);
        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw CliOption.Usage($"The JSON schema file '{path}' is not valid JSON: {ex.Message}");
        }
    }

    /// <summary>Reads a file the user named through <see cref="BoundedFile"/>: regular files only, at most <paramref name="maxBytes"/>.</summary>
    internal static string ReadFile(string path, string what, long maxBytes) => BoundedFile.ReadAllText(path, what, maxBytes);
}
