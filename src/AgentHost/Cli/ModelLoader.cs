using AgentHost.Llama.Models;
using Microsoft.Extensions.Logging;

namespace AgentHost.Cli;

/// <summary>Resolves a model name or path (downloading with a progress bar when needed) and loads it.</summary>
internal sealed class ModelLoader(AgentHostOptions options, ILoggerFactory loggerFactory)
{
    // The timeout covers the response headers only (downloads read the body as it streams, under the stall timeout).
    private static readonly HttpClient _http = new(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(30) }) { Timeout = TimeSpan.FromSeconds(100) };

    /// <summary>The <c>--model</c> option every verb that loads a model takes.</summary>
    public static OptionSpec ModelOption { get; } = new("model", "Catalog name or path to a .gguf file (default: AgentHost:DefaultModel).", ValueName: "NAME|PATH");

    public ModelResolver Resolver { get; } = new(options, loggerFactory.CreateLogger<ModelResolver>(), new ModelDownloader(_http, loggerFactory.CreateLogger<ModelDownloader>()) { HuggingFaceToken = Environment.GetEnvironmentVariable("HF_TOKEN") });

    /// <summary>Resolves and loads a model; <paramref name="configure"/> may adjust its settings first (e.g. hidden states on).</summary>
    public async Task<LlamaModel> LoadAsync(string? nameOrPath, CancellationToken cancellationToken, Action<ModelSettings>? configure = null)
    {
        // A stand-in entry is built from its source, not downloaded: say which.
        var builds = options.Models.TryGetValue(nameOrPath ?? options.DefaultModel, out var entry) && entry.StandIn is not null;
        var progress = new ConsoleProgressBar(builds ? "building" : "downloading");
        ResolvedModel resolved;
        try
        {
            resolved = await Resolver.ResolveAsync(nameOrPath, progress, cancellationToken);
        }
        finally
        {
            progress.Finish();
        }
        var settings = resolved.Settings.Clone();
        configure?.Invoke(settings);
        return LlamaModel.Load(resolved.Name, resolved.Path, settings, loggerFactory);
    }
}

/// <summary>App-side readings of <see cref="AgentHostOptions"/>.</summary>
internal static class AgentHostOptionsExtensions
{
    /// <summary>The folder whose templates override the built-in chat formats (relative to appsettings.json), or null.</summary>
    public static string? FormatsDirectory(this AgentHostOptions options)
        => string.IsNullOrWhiteSpace(options.ChatFormatsDir) ? null : Path.GetFullPath(options.ChatFormatsDir, AppContext.BaseDirectory);
}
