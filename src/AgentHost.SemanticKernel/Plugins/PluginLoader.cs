using System.Text.Json;
using System.Text.RegularExpressions;
using AgentHost.Llama;
using AgentHost.SemanticKernel.Templates;
using Microsoft.Extensions.Logging;
using Microsoft.SemanticKernel;

namespace AgentHost.SemanticKernel.Plugins;

/// <summary>
/// Imports plugins into a <see cref="Kernel"/>: native plugin objects the app supplies, and prompt plugins
/// from folders (<c>&lt;folder&gt;/&lt;Plugin&gt;/&lt;Function&gt;/skprompt.txt</c> + <c>config.json</c>).
/// Unlike Semantic Kernel's own directory loader, which skips what it cannot read, every problem with a
/// folder (missing, no <c>skprompt.txt</c>, invalid <c>config.json</c>, template syntax error, bad name) is an
/// <see cref="AgentHostException"/> of kind <see cref="ErrorKind.InvalidPlugin"/> that names the plugin and
/// the folder or file.
/// </summary>
public static partial class PluginLoader
{
    /// <summary>The prompt template file of a prompt function folder.</summary>
    public const string PromptFileName = "skprompt.txt";

    /// <summary>The optional configuration file of a prompt function folder.</summary>
    public const string ConfigFileName = "config.json";

    /// <summary>The template factory prompt plugins use: Scriban (<c>"template_format": "scriban"</c>) and SK's own format.</summary>
    /// <returns>A new factory.</returns>
    public static IPromptTemplateFactory CreateTemplateFactory() =>
        new AggregatorPromptTemplateFactory(new ScribanPromptTemplateFactory(), new KernelPromptTemplateFactory());

    /// <summary>
    /// Imports the native plugins named in <see cref="PluginOptions.Native"/> and every prompt plugin in
    /// <see cref="PluginOptions.PromptDirectories"/>. All plugins load before any is added, so a failure
    /// leaves the kernel unchanged.
    /// </summary>
    /// <param name="kernel">The kernel to add the plugins to.</param>
    /// <param name="options">Which plugins.</param>
    /// <param name="baseDirectory">What relative prompt directories resolve against: the app's content root (the folder of appsettings.json).</param>
    /// <param name="nativePlugins">The native plugin objects the app offers, by plugin name.</param>
    /// <param name="templateFactory">The prompt template factory; <see cref="CreateTemplateFactory"/> when null.</param>
    /// <returns>The imported plugins, native ones first.</returns>
    /// <exception cref="AgentHostException">An unknown native plugin, a broken prompt folder, or two plugins with one name.</exception>
    public static IReadOnlyList<KernelPlugin> ImportPlugins(
        this Kernel kernel,
        PluginOptions options,
        string baseDirectory,
        IReadOnlyDictionary<string, object>? nativePlugins = null,
        IPromptTemplateFactory? templateFactory = null)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(baseDirectory);

        var loaded = new List<(KernelPlugin Plugin, string Source)>();
        foreach (var name in options.Native)
        {
            var match = nativePlugins?.FirstOrDefault(p => string.Equals(p.Key, name, StringComparison.OrdinalIgnoreCase)) ?? default;
            if (match.Value is null)
            {
                var available = nativePlugins is { Count: > 0 } ? string.Join(", ", nativePlugins.Keys) : "none";
                throw new AgentHostException(ErrorKind.InvalidPlugin, $"Unknown native plugin '{name}' in {PluginOptions.SectionName}:Native; available: {available}.");
            }
            loaded.Add((KernelPluginFactory.CreateFromObject(match.Value, match.Key, kernel.LoggerFactory), "the native plugins"));
        }

        templateFactory ??= CreateTemplateFactory();
        foreach (var entry in options.PromptDirectories)
        {
            if (string.IsNullOrWhiteSpace(entry))
                throw new AgentHostException(ErrorKind.InvalidPlugin, $"{PluginOptions.SectionName}:PromptDirectories has an empty entry.");
            var directory = Path.GetFullPath(entry, baseDirectory);
            foreach (var plugin in LoadPromptPlugins(directory, templateFactory, kernel.LoggerFactory))
                loaded.Add((plugin, Path.Combine(directory, plugin.Name)));
        }

        // Semantic Kernel matches plugin names case-insensitively.
        var sources = kernel.Plugins.ToDictionary(p => p.Name, _ => "the kernel", StringComparer.OrdinalIgnoreCase);
        foreach (var (plugin, source) in loaded)
        {
            if (!sources.TryAdd(plugin.Name, source))
                throw new AgentHostException(ErrorKind.InvalidPlugin, $"Plugin name '{plugin.Name}' is used twice: by {sources[plugin.Name]} and by {source}.");
        }

        var plugins = loaded.ConvertAll(p => p.Plugin);
        kernel.Plugins.AddRange(plugins);
        return plugins;
    }

    /// <summary>Loads every prompt plugin in <paramref name="directory"/>: one plugin per sub-folder (hidden ones skipped), in name order.</summary>
    /// <param name="directory">A folder of plugin folders.</param>
    /// <param name="templateFactory">The prompt template factory; <see cref="CreateTemplateFactory"/> when null.</param>
    /// <param name="loggerFactory">Logging for the created functions.</param>
    /// <returns>The plugins; empty when the folder holds none.</returns>
    /// <exception cref="AgentHostException">The folder is missing or one of its plugins is broken.</exception>
    public static IReadOnlyList<KernelPlugin> LoadPromptPlugins(string directory, IPromptTemplateFactory? templateFactory = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        directory = Path.GetFullPath(directory);
        if (!Directory.Exists(directory))
        {
            throw new AgentHostException(ErrorKind.InvalidPlugin, File.Exists(directory)
                ? $"Prompt plugin folder '{directory}' is a file, not a folder."
                : $"Prompt plugin folder '{directory}' does not exist.");
        }
        if (File.Exists(Path.Combine(directory, PromptFileName)))
            throw new AgentHostException(ErrorKind.InvalidPlugin, $"Prompt plugin folder '{directory}' holds {PromptFileName} itself; it must hold plugin folders, each with function folders (<folder>/<Plugin>/<Function>/{PromptFileName}).");

        templateFactory ??= CreateTemplateFactory();
        return SubFolders(directory).ConvertAll(d => LoadPromptPlugin(d, templateFactory, loggerFactory));
    }

    /// <summary>Loads one prompt plugin, named after its folder: one function per sub-folder (hidden ones skipped).</summary>
    /// <param name="pluginDirectory">The plugin folder.</param>
    /// <param name="templateFactory">The prompt template factory; <see cref="CreateTemplateFactory"/> when null.</param>
    /// <param name="loggerFactory">Logging for the created functions.</param>
    /// <returns>The plugin.</returns>
    /// <exception cref="AgentHostException">The folder is missing, holds no function, or a function is broken.</exception>
    public static KernelPlugin LoadPromptPlugin(string pluginDirectory, IPromptTemplateFactory? templateFactory = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(pluginDirectory);
        pluginDirectory = Path.TrimEndingDirectorySeparator(Path.GetFullPath(pluginDirectory));
        var name = Path.GetFileName(pluginDirectory);
        if (!Directory.Exists(pluginDirectory))
            throw new AgentHostException(ErrorKind.InvalidPlugin, $"Prompt plugin folder '{pluginDirectory}' does not exist.");
        if (!ValidName().IsMatch(name))
            throw new AgentHostException(ErrorKind.InvalidPlugin, $"Prompt plugin folder '{pluginDirectory}': '{name}' is not a valid plugin name (letters, digits and underscores only).");
        if (File.Exists(Path.Combine(pluginDirectory, PromptFileName)))
            throw new AgentHostException(ErrorKind.InvalidPlugin, $"Prompt plugin '{name}' ('{pluginDirectory}') holds {PromptFileName} itself; each function needs its own sub-folder (<{name}>/<Function>/{PromptFileName}).");

        var functionDirectories = SubFolders(pluginDirectory);
        if (functionDirectories.Count == 0)
            throw new AgentHostException(ErrorKind.InvalidPlugin, $"Prompt plugin '{name}' ('{pluginDirectory}') has no function folders (<{name}>/<Function>/{PromptFileName}).");

        templateFactory ??= CreateTemplateFactory();
        var functions = functionDirectories.ConvertAll(d => LoadFunction(name, d, templateFactory, loggerFactory));
        return KernelPluginFactory.CreateFromFunctions(name, description: null, functions);
    }

    private static KernelFunction LoadFunction(string pluginName, string directory, IPromptTemplateFactory templateFactory, ILoggerFactory? loggerFactory)
    {
        var functionName = Path.GetFileName(directory);
        var where = $"Prompt plugin '{pluginName}', function '{functionName}'";
        if (!ValidName().IsMatch(functionName))
            throw new AgentHostException(ErrorKind.InvalidPlugin, $"{where} ('{directory}'): '{functionName}' is not a valid function name (letters, digits and underscores only).");

        var promptPath = Path.Combine(directory, PromptFileName);
        if (!File.Exists(promptPath))
            throw new AgentHostException(ErrorKind.InvalidPlugin, $"{where}: '{directory}' has no {PromptFileName}.");
        var configPath = Path.Combine(directory, ConfigFileName);

        PromptTemplateConfig config;
        try
        {
            config = File.Exists(configPath) ? PromptTemplateConfig.FromJson(AgentHost.Llama.BoundedFile.ReadAllText(configPath, "prompt config", AgentHost.Llama.BoundedFile.MaxTemplateBytes)) : new PromptTemplateConfig();
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException or NotSupportedException)
        {
            // SK wraps the JSON error, whose message holds the line and position, in a bare ArgumentException.
            var detail = ex.InnerException is JsonException json ? json.Message : Describe(ex);
            throw new AgentHostException(ErrorKind.InvalidPlugin, $"{where}: '{configPath}' is not a valid prompt config: {detail}", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new AgentHostException(ErrorKind.InvalidPlugin, $"{where}: '{configPath}' cannot be read: {ex.Message}", ex);
        }

        config.Name = functionName;
        try
        {
            config.Template = AgentHost.Llama.BoundedFile.ReadAllText(promptPath, "prompt template", AgentHost.Llama.BoundedFile.MaxTemplateBytes);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new AgentHostException(ErrorKind.InvalidPlugin, $"{where}: '{promptPath}' cannot be read: {ex.Message}", ex);
        }
        if (string.IsNullOrWhiteSpace(config.Template))
            throw new AgentHostException(ErrorKind.InvalidPlugin, $"{where}: '{promptPath}' is empty.");

        IPromptTemplate template;
        try
        {
            template = templateFactory.Create(config);
        }
        catch (Exception ex) when (ex is ArgumentException or KernelException)
        {
            throw new AgentHostException(ErrorKind.InvalidPlugin, $"{where}: '{promptPath}' is not a valid '{config.TemplateFormat}' template: {Describe(ex)}", ex);
        }
        return KernelFunctionFactory.CreateFromPrompt(template, config, loggerFactory);
    }

    // The message alone: an ArgumentException's " (Parameter 'x')" suffix means nothing to the plugin's author.
    private static string Describe(Exception ex) =>
        ex is ArgumentException { ParamName: { } name } ? ex.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : ex.Message;

    private static List<string> SubFolders(string directory) =>
        Directory.EnumerateDirectories(directory)
            .Where(d => !Path.GetFileName(d).StartsWith('.'))
            .Order(StringComparer.Ordinal)
            .ToList();

    // Semantic Kernel's rule for plugin and function names.
    [GeneratedRegex("^[0-9A-Za-z_]+$")]
    private static partial Regex ValidName();
}
