using System.Collections.Concurrent;
using AgentHost.Llama.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace AgentHost.Llama.Hosting;

/// <summary>
/// The <see cref="ILlamaModelProvider"/> of a service container: resolves names and paths with a <see cref="ModelResolver"/>
/// on the bound <see cref="AgentHostOptions"/>, loads each (catalog entry, file) pair once and disposes the models with itself.
/// </summary>
public sealed partial class LlamaModelProvider : ILlamaModelProvider, IDisposable
{
    private readonly ModelResolver _resolver;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly IProgress<DownloadProgress>? _progress;
    // Cancels downloads when the provider goes; never disposed, since loads still running read its token.
    private readonly CancellationTokenSource _disposing = new();
    // Two levels: what callers asked for (a name may need a download to resolve), then what it resolved to, so that a
    // name and a path of the same file share one model.
    private readonly ConcurrentDictionary<string, Lazy<Task<LlamaModel>>> _byRequest = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Name, string Path), Lazy<Task<LlamaModel>>> _byFile = new();
    private readonly List<LlamaModel> _loaded = [];
    private readonly Lock _lock = new();
    private volatile bool _disposed;

    /// <summary>Creates a provider.</summary>
    /// <param name="options">The model catalog and folders.</param>
    /// <param name="loggerFactory">Logs resolution, downloads and loads (and receives llama.cpp's native log).</param>
    /// <param name="progress">Receives download progress, if a download happens; logging alone otherwise.</param>
    /// <param name="baseDirectories">Folders relative paths are also looked up in (see <see cref="ModelResolver"/>).</param>
    public LlamaModelProvider(
        AgentHostOptions options,
        ILoggerFactory? loggerFactory = null,
        IProgress<DownloadProgress>? progress = null,
        IReadOnlyList<string>? baseDirectories = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger<LlamaModelProvider>();
        _progress = progress;
        _resolver = new ModelResolver(options, _loggerFactory.CreateLogger<ModelResolver>(), baseDirectories: baseDirectories);
    }

    /// <summary>The resolver the provider uses (e.g. to list the catalog).</summary>
    public ModelResolver Resolver => _resolver;

    /// <inheritdoc />
    public Task<LlamaModel> GetModelAsync(string? nameOrPath, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var key = nameOrPath?.Trim() ?? "";
        return Shared(_byRequest, key, () => ResolveAndLoadAsync(key)).WaitAsync(cancellationToken);
    }

    /// <summary>Disposes every model loaded so far; loads still running dispose their model when they finish.</summary>
    public void Dispose()
    {
        LlamaModel[] loaded;
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
            loaded = [.. _loaded];
            _loaded.Clear();
        }
        _disposing.Cancel();
        foreach (var model in loaded)
            model.Dispose();
        _byFile.Clear();
        _byRequest.Clear();
    }

    private async Task<LlamaModel> ResolveAndLoadAsync(string nameOrPath)
    {
        var resolved = await _resolver.ResolveAsync(nameOrPath, _progress, _disposing.Token).ConfigureAwait(false);
        return await Shared(_byFile, (resolved.Name, resolved.Path), () => LoadAsync(resolved)).ConfigureAwait(false);
    }

    private async Task<LlamaModel> LoadAsync(ResolvedModel resolved)
    {
        // Off the caller's thread: a load reads the whole file.
        var model = await Task.Run(() => LlamaModel.Load(resolved.Name, resolved.Path, resolved.Settings, _loggerFactory)).ConfigureAwait(false);
        bool kept;
        lock (_lock)
        {
            kept = !_disposed;
            if (kept)
                _loaded.Add(model);
        }
        if (!kept)
        {
            model.Dispose();
            throw new ObjectDisposedException(nameof(LlamaModelProvider));
        }
        LogLoaded(_logger, resolved.Name, resolved.Path, resolved.Source);
        return model;
    }

    /// <summary>One task per key; a failed one is forgotten so that a later call tries again (e.g. after the file appears).</summary>
    private static Task<LlamaModel> Shared<TKey>(ConcurrentDictionary<TKey, Lazy<Task<LlamaModel>>> cache, TKey key, Func<Task<LlamaModel>> start)
        where TKey : notnull
    {
        var entry = cache.GetOrAdd(key, _ => new Lazy<Task<LlamaModel>>(start));
        var task = entry.Value;
        _ = task.ContinueWith(t => cache.TryRemove(new KeyValuePair<TKey, Lazy<Task<LlamaModel>>>(key, entry)),
            CancellationToken.None, TaskContinuationOptions.NotOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return task;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {Name} loaded from {Path} ({Source})")]
    private static partial void LogLoaded(ILogger logger, string name, string path, ModelSource source);
}
