using System.Collections.Concurrent;
using AgentHost.Llama;
using AgentHost.Llama.Models;
using AgentHost.Extensions.AI.Jinja;
using AgentHost.Extensions.AI.Templates;
using Scriban;
using Scriban.Parsing;
using Scriban.Runtime;

namespace AgentHost.Extensions.AI.Chat;

/// <summary>
/// The known chat formats and how a model gets one: a configured name wins, else the family is detected from the
/// GGUF chat template (<c>tokenizer.chat_template</c>) or architecture, else <c>plain</c>. Templates are the
/// <c>prompts/formats/NAME.scriban</c> files built into the assembly; a template directory can replace any of them
/// (and the <c>tools-generic</c> part they include) with a file of the same name.
/// </summary>
public sealed class ChatFormatCatalog
{
    /// <summary>The format for models without a chat template (base and story models).</summary>
    public const string Plain = "plain";

    private const string ResourcePrefix = "AgentHost.Extensions.AI.Formats.";
    private const string Extension = ".scriban";

    private static readonly Definition[] _definitions =
    [
        new("chatml", ["<|im_end|>"], ToolCallFormat.Hermes),
        new("llama3", ["<|eot_id|>", "<|eom_id|>"], ToolCallFormat.Llama3Json),
        new("mistral", ["</s>"], ToolCallFormat.Mistral),
        new("gemma", ["<end_of_turn>"], ToolCallFormat.Gemma),
        new("phi3", ["<|end|>", "<|endoftext|>"], ToolCallFormat.Generic),
        new("phi4", ["<|im_end|>"], ToolCallFormat.Phi4Mini),
        new(Plain, [], ToolCallFormat.Generic),
    ];

    private readonly ConcurrentDictionary<string, ChatFormat> _formats = new(StringComparer.Ordinal);
    private readonly Loader _loader;
    private readonly ScribanLimits _limits;

    /// <summary>Creates a catalog.</summary>
    /// <param name="templateDirectory">A folder whose <c>NAME.scriban</c> files replace the built-in templates, or null.</param>
    /// <param name="limits">Limits of the templates' size and rendering; <see cref="ScribanLimits.Default"/> when null.</param>
    /// <exception cref="AgentHostException">The folder does not exist.</exception>
    public ChatFormatCatalog(string? templateDirectory = null, ScribanLimits? limits = null)
    {
        _limits = limits ?? ScribanLimits.Default;
        if (!string.IsNullOrEmpty(templateDirectory))
        {
            templateDirectory = Path.GetFullPath(templateDirectory);
            if (!Directory.Exists(templateDirectory))
                throw new AgentHostException(ErrorKind.InvalidArgument, $"Chat format folder '{templateDirectory}' does not exist.");
        }
        TemplateDirectory = string.IsNullOrEmpty(templateDirectory) ? null : templateDirectory;
        _loader = new Loader(TemplateDirectory, _limits);
    }

    /// <summary>The catalog with the built-in templates only.</summary>
    public static ChatFormatCatalog Default { get; } = new();

    /// <summary>The names of the known formats.</summary>
    public static IReadOnlyList<string> KnownNames { get; } = Array.ConvertAll(_definitions, d => d.Name);

    /// <summary>The folder overriding built-in templates, or null.</summary>
    public string? TemplateDirectory { get; }

    /// <summary>Gets a format by name (case-insensitive).</summary>
    /// <exception cref="AgentHostException">The name is unknown (the message lists the known names), or an
    /// overriding template has syntax errors.</exception>
    public ChatFormat Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (string.Equals(name.Trim(), ChatFormat.ModelTemplate, StringComparison.OrdinalIgnoreCase))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Chat format '{ChatFormat.ModelTemplate}' is a model's own chat template: resolve it for a model (Resolve).");
        var definition = Array.Find(_definitions, d => string.Equals(d.Name, name.Trim(), StringComparison.OrdinalIgnoreCase))
            ?? throw new AgentHostException(ErrorKind.InvalidArgument, $"Unknown chat format '{name}'; the known formats are {string.Join(", ", KnownNames)} and {ChatFormat.ModelTemplate} (the model's own template).");
        return _formats.GetOrAdd(definition.Name, _ => Create(definition));
    }

    /// <summary>
    /// The format for <paramref name="model"/>: <paramref name="configuredName"/> if given, else the model's
    /// <see cref="ModelSettings.ChatFormat"/>, else the model's own GGUF chat template (<see cref="ChatFormat.ModelTemplate"/>)
    /// when it has one the Jinja engine can parse, else the built-in format of the family detected from its metadata.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="configuredName">A format name (a built-in one, or <c>gguf</c> for the model's own template), or null.</param>
    /// <param name="clock">What the template's <c>strftime_now</c> reads; the system clock when null.</param>
    /// <exception cref="AgentHostException">An unknown name, or <c>gguf</c> for a model whose template is missing or
    /// cannot be parsed (<see cref="ErrorKind.InvalidArgument"/>).</exception>
    public ChatFormat Resolve(LlamaModel model, string? configuredName = null, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var name = !string.IsNullOrWhiteSpace(configuredName) ? configuredName.Trim()
            : !string.IsNullOrWhiteSpace(model.Settings.ChatFormat) ? model.Settings.ChatFormat.Trim()
            : null;
        return Resolve(model.File, name, model.Vocabulary.Bos, model.Vocabulary.Eos, clock);
    }

    /// <summary>
    /// As <see cref="Resolve(LlamaModel, string?, TimeProvider?)"/> for a GGUF file that is not loaded (no weights read:
    /// <c>models show</c>): <paramref name="configuredName"/> if given, else the file's own chat template when the Jinja
    /// engine can parse it, else the built-in format of the detected family. The BOS/EOS texts the template sees come
    /// from the file's <c>tokenizer.ggml.bos_token_id</c> / <c>eos_token_id</c>.
    /// </summary>
    /// <param name="file">The GGUF file's metadata.</param>
    /// <param name="configuredName">A format name (a built-in one, or <c>gguf</c>), or null.</param>
    /// <param name="clock">What the template's <c>strftime_now</c> reads; the system clock when null.</param>
    /// <exception cref="AgentHostException">As the model overload.</exception>
    public ChatFormat Resolve(GgufFile file, string? configuredName = null, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(file);
        var name = string.IsNullOrWhiteSpace(configuredName) ? null : configuredName.Trim();
        return Resolve(file, name, (int)(file.GetInteger("tokenizer.ggml.bos_token_id") ?? -1), (int)(file.GetInteger("tokenizer.ggml.eos_token_id") ?? -1), clock);
    }

    private ChatFormat Resolve(GgufFile file, string? name, int bos, int eos, TimeProvider? clock)
    {
        var source = file.GetString("tokenizer.chat_template");
        var family = Detect(source, file.Architecture);
        var explicitTemplate = string.Equals(name, ChatFormat.ModelTemplate, StringComparison.OrdinalIgnoreCase);
        if (name is not null && !explicitTemplate)
            return Get(name);

        var (template, problem) = ParseModelTemplate(source);
        if (template is null)
        {
            return explicitTemplate
                ? throw new AgentHostException(ErrorKind.InvalidArgument, $"Chat format '{ChatFormat.ModelTemplate}' renders the model's own chat template, but {problem}; choose one of {string.Join(", ", KnownNames)}.")
                : Get(family);
        }
        var tokens = file.GetStringArray("tokenizer.ggml.tokens");
        string? Text(int id) => tokens is not null && id >= 0 && id < tokens.Length ? tokens[id] : null;
        return new ChatFormat(template, Get(family), ToolCallFormat.FromChatTemplate(source), Text(bos), Text(eos), clock);
    }

    /// <summary>
    /// Why a model's own chat template is not used by default (none, only a template name, or one the Jinja engine
    /// cannot parse), or null when it is.
    /// </summary>
    public static string? ModelTemplateProblem(LlamaModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return ModelTemplateProblem(model.File);
    }

    /// <summary>As <see cref="ModelTemplateProblem(LlamaModel)"/> for a GGUF file that is not loaded.</summary>
    public static string? ModelTemplateProblem(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        return ParseModelTemplate(file.GetString("tokenizer.chat_template")).Problem;
    }

    private static (JinjaChatTemplate? Template, string? Problem) ParseModelTemplate(string? source)
    {
        if (string.IsNullOrWhiteSpace(source))
            return (null, "the model has no chat template");
        if (!source.Contains("{{", StringComparison.Ordinal) && !source.Contains("{%", StringComparison.Ordinal))
            return (null, $"the model's chat template is only a name ('{source.Trim()}')");
        try
        {
            return (JinjaChatTemplate.Parse(source, name: "the model's chat template"), null);
        }
        catch (AgentHostException e)
        {
            return (null, $"the model's chat template cannot be parsed: {e.Message}");
        }
    }

    /// <summary>
    /// Detects the format name from a chat template (Jinja text, or a llama.cpp template name such as
    /// <c>chatml</c>) and the architecture; <c>plain</c> when neither says anything.
    /// </summary>
    public static string Detect(string? chatTemplate, string? architecture)
    {
        if (!string.IsNullOrWhiteSpace(chatTemplate))
        {
            var template = chatTemplate.Trim();
            foreach (var definition in _definitions)
            {
                if (string.Equals(template, definition.Name, StringComparison.OrdinalIgnoreCase))
                    return definition.Name;
            }
            if (template.StartsWith("mistral", StringComparison.OrdinalIgnoreCase))
                return "mistral";
            // The markers each family's Jinja template writes (llama.cpp detects them the same way).
            if (template.Contains("<|im_sep|>", StringComparison.Ordinal))
                return "phi4";
            if (template.Contains("<|im_start|>", StringComparison.Ordinal))
                return "chatml";
            if (template.Contains("<|start_header_id|>", StringComparison.Ordinal))
                return "llama3";
            if (template.Contains("<start_of_turn>", StringComparison.Ordinal))
                return "gemma";
            if (template.Contains("<|assistant|>", StringComparison.Ordinal) && template.Contains("<|end|>", StringComparison.Ordinal))
                return "phi3";
            if (template.Contains("[INST]", StringComparison.Ordinal))
                return "mistral";
        }

        return architecture?.ToLowerInvariant() switch
        {
            "qwen2" or "qwen2moe" or "qwen3" or "qwen3moe" => "chatml",
            "gemma" or "gemma2" or "gemma3" => "gemma",
            "phi3" => "phi3",
            _ => Plain,
        };
    }

    private ChatFormat Create(Definition definition)
    {
        var source = _loader.Read(definition.Name);
        var template = BoundedScriban.Parse(source.Text, source.Path, _limits);
        if (template.HasErrors)
        {
            var errors = string.Join("; ", template.Messages.Select(m => m.ToString()));
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Chat format template '{source.Path}' has syntax errors: {errors}");
        }
        return new ChatFormat(definition.Name, definition.StopSequences, definition.ToolCalls, template, _loader, _limits);
    }

    private sealed record Definition(string Name, IReadOnlyList<string> StopSequences, ToolCallFormat ToolCalls);

    /// <summary>Reads templates (and the parts they include) from the override folder, else from the assembly.</summary>
    private sealed class Loader(string? directory, ScribanLimits limits) : ITemplateLoader
    {
        public (string Path, string Text) Read(string name)
        {
            if (directory is not null)
            {
                var path = Path.Combine(directory, name + Extension);
                if (File.Exists(path))
                    return (path, ReadBounded(path));
            }

            var resource = ResourcePrefix + name + Extension;
            using var stream = typeof(ChatFormatCatalog).Assembly.GetManifestResourceStream(resource)
                ?? throw new AgentHostException(ErrorKind.InvalidArgument, $"No chat format template named '{name}'.");
            using var reader = new StreamReader(stream);
            return ("prompts/formats/" + name + Extension, reader.ReadToEnd());
        }

        // Reads at most one character past the limit, so a huge file is refused without being loaded.
        private string ReadBounded(string path)
        {
            using var reader = new StreamReader(AgentHost.Llama.BoundedFile.CheckRegular(path, "chat format template"));
            var buffer = new char[limits.MaxTemplateLength + 1];
            var length = reader.ReadBlock(buffer, 0, buffer.Length);
            BoundedScriban.CheckLength(length, path, limits);
            return new string(buffer, 0, length);
        }

        public string GetPath(TemplateContext context, SourceSpan callerSpan, string templateName)
        {
            // Only plain names: an include can never reach outside the template folder.
            if (templateName.Length == 0 || templateName.IndexOfAny(['/', '\\', '.']) >= 0)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"Chat format templates can only include parts by plain name, not '{templateName}'.");
            return templateName;
        }

        public string Load(TemplateContext context, SourceSpan callerSpan, string templatePath) => Read(templatePath).Text;

        public ValueTask<string?> LoadAsync(TemplateContext context, SourceSpan callerSpan, string templatePath) => ValueTask.FromResult<string?>(Load(context, callerSpan, templatePath));
    }
}
