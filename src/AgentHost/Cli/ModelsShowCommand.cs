using System.CommandLine;
using System.Globalization;
using AgentHost.Extensions.AI.Chat;
using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;

namespace AgentHost.Cli;

/// <summary>
/// <c>models show NAME</c>: what a name will be used as (file or URL, size, digest status, context size, chat and
/// tool-call format, licence), downloading nothing. The chat format the catalog names wins over the one detected from
/// the file's own template; both are shown.
/// </summary>
internal sealed class ModelsShowCommand(LlamaModelProvider models) : ICommand
{
    private static readonly Argument<string?> _model = new("name")
    {
        Description = "A catalog name, a path to a .gguf file or a Hugging Face reference (hf:OWNER/REPO/FILE.gguf, hf:OWNER/REPO:QUANT).",
        HelpName = "NAME|PATH|hf:REF",
        Arity = ArgumentArity.ZeroOrOne,
    };

    public string Name => "models show";

    public string Summary => "Show what a model name will be used as: file or URL, size, digest, context size, chat and tool-call format, licence.";

    public IReadOnlyList<Symbol> Options { get; } = [_model, SharedOptions.Json];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var details = await models.Resolver.InspectAsync(parse.Require(_model), cancellationToken);
        var location = details.Location;
        var settings = location.Settings;
        if (settings.Remote is { } remote)
            return ShowRemote(location.Name, remote, settings, parse.GetValue(SharedOptions.Json));
        var chat = ChatTemplate.Of(settings.ChatFormat, details.File);
        var toolCalls = chat.Format?.ToolCalls.Name;
        var contextSize = settings.ContextSize > 0 ? settings.ContextSize : details.TrainedContext;

        if (parse.GetValue(SharedOptions.Json))
        {
            Console.Out.WriteLine(JsonOutput.Serialize(new Dictionary<string, object?>
            {
                ["name"] = location.Name,
                ["local"] = location.IsAvailable,
                ["where"] = location.Status,
                ["path"] = location.Path,
                ["url"] = details.Url?.AbsoluteUri,
                ["size"] = details.Size,
                ["size_exact"] = location.IsAvailable,
                ["digest"] = ModelsListCommand.Status(details.Digest),
                ["sha256"] = details.Sha256,
                ["context_size"] = contextSize,
                ["trained_context"] = details.TrainedContext,
                ["chat_format"] = chat.Format?.Name,
                ["chat_format_source"] = chat.Configured ? "catalog" : chat.Format is not null ? "detected" : null,
                ["chat_template_source"] = chat.Source,
                ["chat_family"] = chat.Format?.Family,
                ["chat_template_problem"] = chat.Problem,
                ["detected_chat_format"] = chat.DetectedFamily,
                ["tool_call_format"] = toolCalls,
                ["license"] = settings.License,
                ["problem"] = details.Problem,
            }));
            return CliApp.ExitOk;
        }

        var lines = new List<(string Key, string Value)>
        {
            ("name", location.Name),
            ("local", location.Path is { } path ? $"yes, {location.Status}: {path}"
                : details.Url is { } from && location.Status.EndsWith(from.ToString(), StringComparison.Ordinal) ? $"no, downloaded on first use (or by 'models pull {location.Name}')"
                : $"no, {location.Status}"),
        };
        if (details.Url is { } url)
            lines.Add(("url", url.AbsoluteUri));
        lines.Add(("size", Size(details.Size, location.IsAvailable)));
        lines.Add(("digest", Digest(details)));
        lines.Add(("context size", ContextSize(settings.ContextSize, details.TrainedContext, location.IsAvailable)));
        lines.Add(("chat format", chat.Describe(details.File)));
        lines.Add(("tool calls", toolCalls ?? "as the chat format's, once it is known"));
        lines.Add(("licence", string.IsNullOrWhiteSpace(settings.License) ? "not stated (see the model's page)" : settings.License));
        if (details.Problem is { } problem)
            lines.Add(("problem", problem));

        var width = lines.Max(l => l.Key.Length) + 2;
        foreach (var (key, value) in lines)
            Console.Out.WriteLine($"{(key + ":").PadRight(width)}{value}");
        return CliApp.ExitOk;
    }

    // A remote entry has no file: what is shown is where requests go and how (the key itself is never printed).
    private static int ShowRemote(string name, RemoteModelSettings remote, ModelSettings settings, bool json)
    {
        var key = !string.IsNullOrWhiteSpace(remote.ApiKeyVariable) ? $"from the environment variable {remote.ApiKeyVariable.Trim()}"
            : string.IsNullOrEmpty(remote.ApiKey) ? "none" : "from the configuration";
        var fields = new (string Key, string Json, object? Value)[]
        {
            ("name", "name", name),
            ("remote", "endpoint", remote.Endpoint),
            ("remote model", "remote_model", remote.RemoteName(name)),
            ("api key", "api_key", key),
            ("timeout", "timeout_seconds", remote.TimeoutSeconds),
            ("retries", "max_retries", remote.MaxRetries),
            ("token level", "token_level", "no: strategies other than greedy/sample, analysis, tool tokens and embeddings need a local model"),
            ("licence", "license", string.IsNullOrWhiteSpace(settings.License) ? null : settings.License),
        };
        if (json)
        {
            Console.Out.WriteLine(JsonOutput.Serialize(fields.ToDictionary(f => f.Json, f => f.Value)));
            return CliApp.ExitOk;
        }
        var width = fields.Max(f => f.Key.Length) + 2;
        foreach (var (label, _, value) in fields.Where(f => f.Value is not null))
            Console.Out.WriteLine($"{(label + ":").PadRight(width)}{Convert.ToString(value, CultureInfo.InvariantCulture)}");
        return CliApp.ExitOk;
    }

    private static string Size(long? size, bool local) => size switch
    {
        null => "unknown until downloaded",
        long bytes when local => $"{bytes.ToString("N0", CultureInfo.InvariantCulture)} bytes ({Human(bytes)})",
        long bytes => $"about {Human(bytes)} (catalog)",
    };

    private static string Human(long bytes) => bytes switch
    {
        >= 1_000_000_000 => $"{(bytes / 1e9).ToString("0.##", CultureInfo.InvariantCulture)} GB",
        >= 1_000_000 => $"{(bytes / 1e6).ToString("0.#", CultureInfo.InvariantCulture)} MB",
        _ => $"{(bytes / 1e3).ToString("0.#", CultureInfo.InvariantCulture)} kB",
    };

    private static string Digest(ModelDetails details) => details.Digest switch
    {
        LocalDigest.Verified => $"pinned by the catalog: {details.Sha256} (checked when downloaded)",
        LocalDigest.RecordedOnFirstUse => $"recorded on first use: {details.Sha256} (trust on first use; checked on every use)",
        _ when details.Location.IsAvailable => "none (the catalog pins no SHA-256 and none was recorded)",
        _ when details.Url is not null => "none yet: recorded on first download (trust on first use)",
        _ => "none",
    };

    private static string ContextSize(int configured, long? trained, bool local)
    {
        var trainedText = trained is { } t ? $"trained with {t}" : null;
        if (configured > 0)
            return $"{configured} tokens (catalog{(trainedText is null ? "" : "; " + trainedText)})";
        if (trained is { } size)
            return $"{size} tokens (the model's trained context)";
        return local ? "the model's trained context" : "the model's trained context (read from the file once it is local)";
    }

    /// <summary>
    /// Which chat format a model gets, worked out from its GGUF metadata as <see cref="ChatFormatCatalog.Resolve(GgufFile, string?, TimeProvider?)"/>
    /// does when the model loads (no weights read): the catalog's format, else the file's own template, else the
    /// built-in format of the detected family.
    /// </summary>
    private sealed record ChatTemplate(ChatFormat? Format, bool Configured, string? Source, string? Problem, string? DetectedFamily, string? ResolveError)
    {
        public static ChatTemplate Of(string? configuredName, GgufFile? file)
        {
            var configured = string.IsNullOrWhiteSpace(configuredName) ? null : configuredName.Trim();
            if (file is null)
            {
                // Not local yet: only a built-in format the catalog names is known now.
                var known = configured is null || string.Equals(configured, ChatFormat.ModelTemplate, StringComparison.OrdinalIgnoreCase) ? null : ChatFormatCatalog.Default.Get(configured);
                return new(known, configured is not null, configured is null ? null : "catalog", null, null, null);
            }
            var problem = ChatFormatCatalog.ModelTemplateProblem(file);
            var detected = ChatFormatCatalog.Detect(file.GetString("tokenizer.chat_template"), file.Architecture);
            try
            {
                var format = ChatFormatCatalog.Default.Resolve(file, configured);
                var source = format.IsModelTemplate ? "gguf" : configured is not null ? "catalog" : "built-in";
                return new(format, configured is not null, source, format.IsModelTemplate ? null : problem, detected, null);
            }
            catch (AgentHost.Llama.AgentHostException e)
            {
                // The catalog names gguf but the file's template cannot be used: the model would not load with it.
                return new(null, true, "catalog", problem, detected, e.Message);
            }
        }

        public string Describe(GgufFile? file)
        {
            if (ResolveError is { } error)
                return $"none: {error}";
            if (Format is null)
                return Configured ? $"{ChatFormat.ModelTemplate} (catalog): the GGUF's own template, once the file is local" : "the GGUF's own template or a built-in one, decided once the file is local";
            var why = file is null ? null
                : file.GetString("tokenizer.chat_template") is { Length: > 0 } ? "family detected from its chat template"
                : $"family detected from the architecture {file.Architecture ?? "unknown"}";
            if (Format.IsModelTemplate)
                return $"the GGUF's own template (family {Format.Family}){(Configured ? " (catalog)" : "")}";
            var notUsed = Problem is null ? "the catalog's choice wins over the GGUF's own template" : $"the GGUF's own template is not used: {Problem}";
            return Configured
                ? $"built-in {Format.Name} (catalog{(file is null ? "" : $"; {notUsed}")})"
                : $"built-in {Format.Name} ({notUsed}; {why})";
        }
    }
}
