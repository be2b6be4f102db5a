using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace AgentHost.Llama.Models;

/// <summary>
/// Turns a user's <c>--model</c> value into a model file. Order: an explicit path; the models folder
/// (<c>AGENTHOST_MODELS_DIR</c>, else <see cref="AgentHostOptions.ModelsDir"/>); the user cache
/// (<see cref="AgentHostOptions.CacheDir"/>, else <c>$XDG_CACHE_HOME/agenthost/models</c>, else
/// <c>~/.cache/agenthost/models</c>); a download from the catalog's URL into the user cache. A Hugging Face reference
/// (<see cref="HuggingFaceReference"/>) is the catalog entry that downloads its file, else an entry of its own. A stand-in entry
/// (<see cref="ModelSettings.StandIn"/>) is instead built into the user cache from its source entry.
/// </summary>
public sealed partial class ModelResolver
{
    private static readonly Lazy<HttpClient> _sharedHttpClient = new(CreateHttpClient);

    private readonly AgentHostOptions _options;
    private readonly ILogger _logger;
    private readonly Func<string, string?> _getEnvironmentVariable;
    private readonly IReadOnlyList<string> _baseDirectories;
    private ModelDownloader? _downloader;

    /// <summary>Creates a resolver.</summary>
    /// <param name="options">The model catalog and folders.</param>
    /// <param name="logger">Receives where models were found and downloads.</param>
    /// <param name="downloader">Downloads missing models; by default one over a shared <see cref="HttpClient"/>.</param>
    /// <param name="getEnvironmentVariable">
    /// Reads environment variables (<c>AGENTHOST_MODELS_DIR</c>, <c>XDG_CACHE_HOME</c>, <c>HOME</c>);
    /// by default <see cref="Environment.GetEnvironmentVariable(string)"/>. Tests pass their own.
    /// </param>
    /// <param name="baseDirectories">
    /// Folders a relative path (a model path, the models folder, the cache folder) is looked up in when it does not
    /// exist under the current directory, in order: e.g. an app's content root and <see cref="AppContext.BaseDirectory"/>.
    /// </param>
    public ModelResolver(
        AgentHostOptions options,
        ILogger? logger = null,
        ModelDownloader? downloader = null,
        Func<string, string?>? getEnvironmentVariable = null,
        IReadOnlyList<string>? baseDirectories = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _downloader = downloader;
        _getEnvironmentVariable = getEnvironmentVariable ?? Environment.GetEnvironmentVariable;
        _baseDirectories = baseDirectories ?? [];
    }

    /// <summary>The models folder searched now (full path), or <see langword="null"/> when none is configured.</summary>
    public string? ModelsDirectory => FindModelsDirectory().Path;

    /// <summary>The user cache folder (full path) searched and downloaded into.</summary>
    public string CacheDirectory
    {
        get
        {
            if (!string.IsNullOrWhiteSpace(_options.CacheDir))
                return FullPath(_options.CacheDir.Trim());

            var xdg = _getEnvironmentVariable("XDG_CACHE_HOME");
            if (!string.IsNullOrWhiteSpace(xdg) && Path.IsPathRooted(xdg))
                return Path.GetFullPath(Path.Combine(xdg, "agenthost", "models"));

            return Path.GetFullPath(Path.Combine(HomeDirectory(), ".cache", "agenthost", "models"));
        }
    }

    /// <summary>Resolves a model, downloading it into the user cache if it is found nowhere locally.</summary>
    /// <param name="nameOrPath">
    /// A catalog name (any case), a path to a model file or a Hugging Face reference (<see cref="HuggingFaceReference"/>);
    /// <see langword="null"/> or empty takes <see cref="AgentHostOptions.DefaultModel"/>.
    /// </param>
    /// <param name="progress">Receives download progress, if a download happens, and build progress, if a stand-in is built.</param>
    /// <param name="cancellationToken">Cancels a download or a build.</param>
    /// <returns>The file and its settings.</returns>
    /// <exception cref="AgentHostException">
    /// <see cref="ErrorKind.ModelNotFound"/> for a missing file or an unknown name,
    /// <see cref="ErrorKind.DownloadFailed"/> when the download fails,
    /// <see cref="ErrorKind.InvalidArgument"/> for a malformed catalog entry.
    /// </exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled during a download or a build.</exception>
    public async Task<ResolvedModel> ResolveAsync(
        string? nameOrPath,
        IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var value = ValueOrDefault(nameOrPath);
        if (HuggingFaceReference.IsReference(value))
        {
            var (reference, entry) = await ReferenceEntryAsync(HuggingFaceReference.Parse(value), cancellationToken).ConfigureAwait(false);
            return await ResolveEntryAsync(reference, entry, progress, cancellationToken).ConfigureAwait(false);
        }
        if (IsExplicitPath(value))
            return ResolveExplicitPath(value);

        var (name, settings) = FindCatalogEntry(value);
        return await ResolveEntryAsync(name, settings, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Resolves a catalog entry (or the entry of a Hugging Face reference): local folders, else a build or a download.</summary>
    private async Task<ResolvedModel> ResolveEntryAsync(string name, ModelSettings settings, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        if (settings.Remote is { } remote)
            throw remote.NeedsLocalModel(name);
        if (settings.StandIn is not null)
            return await ResolveStandInAsync(name, settings, progress, cancellationToken).ConfigureAwait(false);

        var search = Search(name, settings);
        // A cached file is ours (an earlier download): a broken one is removed and fetched again, not loaded every run.
        if (search.Found is { Source: ModelSource.Cache } cached && ModelDownloader.Problem(cached.Path) is { } problem)
        {
            LogBrokenCache(_logger, cached.Path, problem);
            try
            {
                File.Delete(cached.Path);
                File.Delete(ModelDigest.PathFor(cached.Path));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new AgentHostException(ErrorKind.InvalidModelFile, $"The cached model '{cached.Path}' is broken ({problem}) and could not be removed ({ex.Message.TrimEnd('.')}); delete it.", ex);
            }
            search = Search(name, settings);
        }
        if (search.Found is not null)
        {
            if (search.Found.Source == ModelSource.Cache)
                await CheckRecordedDigestAsync(name, search.Found.Path, cancellationToken).ConfigureAwait(false);
            LogResolved(_logger, name, search.Found.Path, search.Found.Source);
            return search.Found;
        }

        var url = DownloadUrl(name, settings);
        if (search.IsCatalogPath || !_options.AllowDownload || url is null)
            throw NotFound(search, url);

        var destination = Path.Combine(search.CacheDirectory, search.FileName);
        LogDownloading(_logger, name, url, destination);
        await DownloadAsync(url, destination, settings.Sha256, progress, cancellationToken).ConfigureAwait(false);
        return new ResolvedModel(name, destination, settings.Clone(), ModelSource.Downloaded);
    }

    /// <summary>
    /// Makes a model local (downloading it into the user cache if needed) and returns it with its SHA-256:
    /// <paramref name="nameOrUrl"/> is a catalog name or an http(s) URL, whose last path segment names the cached file.
    /// </summary>
    /// <param name="nameOrUrl">A catalog name (any case) or an absolute http or https URL of a .gguf file.</param>
    /// <param name="progress">Receives download progress.</param>
    /// <param name="cancellationToken">Cancels a download.</param>
    /// <returns>The model and its SHA-256 (lower-case hex).</returns>
    /// <exception cref="AgentHostException">As <see cref="ResolveAsync"/>; <see cref="ErrorKind.InvalidArgument"/> for a URL that names no .gguf file.</exception>
    public async Task<(ResolvedModel Model, string Sha256)> PullAsync(string nameOrUrl, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nameOrUrl);
        var value = nameOrUrl.Trim();
        if (Uri.TryCreate(value, UriKind.Absolute, out var url) && (url.Scheme == Uri.UriSchemeHttp || url.Scheme == Uri.UriSchemeHttps))
        {
            var file = Uri.UnescapeDataString(url.Segments[^1]);
            if (!file.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) || Path.GetFileName(file) != file || file.Length <= ".gguf".Length)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"Cannot pull '{url}': its last path segment must be a .gguf file name.");
            if (!_options.AllowDownload)
                throw new AgentHostException(ErrorKind.DownloadFailed, $"Cannot pull '{url}': downloads are disabled (AgentHost:AllowDownload is false).");
            var destination = Path.Combine(CacheDirectory, file);
            var digest = await DownloadAsync(url, destination, null, progress, cancellationToken).ConfigureAwait(false);
            return (new ResolvedModel(file, destination, new ModelSettings { File = file, Url = url.ToString() }, ModelSource.Downloaded), digest);
        }

        var model = await ResolveAsync(value, progress, cancellationToken).ConfigureAwait(false);
        var sha256 = (string.IsNullOrWhiteSpace(model.Settings.Sha256) ? null : model.Settings.Sha256.Trim().ToLowerInvariant())
            ?? (model.Source is ModelSource.Cache or ModelSource.Downloaded or ModelSource.Built ? ModelDigest.Recorded(model.Path) : null)
            ?? await Task.Run(() => ModelDigest.Compute(model.Path), cancellationToken).ConfigureAwait(false);
        return (model, sha256);
    }

    /// <summary>The model files in the models folder and the user cache, ordered by folder then file name.</summary>
    /// <returns>One entry per .gguf file.</returns>
    public IReadOnlyList<LocalModel> ListLocal()
    {
        var found = new List<LocalModel>();
        var (modelsDir, _) = FindModelsDirectory();
        if (modelsDir is not null)
            AddLocal(found, modelsDir, ModelSource.ModelsDir);
        AddLocal(found, CacheDirectory, ModelSource.Cache);
        return found;
    }

    /// <summary>
    /// Removes a model from the user cache with its records (digest, partial download, lock); files in the
    /// models folder are the user's and are never removed.
    /// </summary>
    /// <param name="nameOrFile">A catalog name or the file name of a model in the user cache.</param>
    /// <returns>The files removed (full paths).</returns>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.ModelNotFound"/> when the user cache holds no such model.</exception>
    public IReadOnlyList<string> RemoveCached(string nameOrFile)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nameOrFile);
        var value = nameOrFile.Trim();
        string file;
        if (HuggingFaceReference.IsReference(value))
        {
            file = LocalReferenceEntry(HuggingFaceReference.Parse(value))?.Settings.File?.Trim()
                ?? throw new AgentHostException(ErrorKind.ModelNotFound, $"The user cache '{CacheDirectory}' holds no file of {value}.");
        }
        else if (_options.Models.Keys.Any(k => string.Equals(k, value, StringComparison.OrdinalIgnoreCase)))
        {
            var (_, settings) = FindCatalogEntry(value);
            file = settings.File?.Trim() ?? "";
        }
        else
            file = value;
        if (file.Length == 0 || Path.GetFileName(file) != file || file is "." or "..")
            throw new AgentHostException(ErrorKind.ModelNotFound, $"'{value}' is neither a catalog name nor the file name of a model in the user cache '{CacheDirectory}'.");

        var model = Path.Combine(CacheDirectory, file);
        string[] paths = [model, ModelDigest.PathFor(model), ModelDownloader.PartPath(model), ModelDownloader.LockPath(model)];
        var present = paths.Where(File.Exists).ToList();
        if (present.Count == 0)
            throw new AgentHostException(ErrorKind.ModelNotFound, $"The user cache '{CacheDirectory}' holds no '{file}' (nor a partial download of it).");
        try
        {
            foreach (var path in present)
                File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new AgentHostException(ErrorKind.InvalidModelFile, $"Removing '{model}' failed: {ex.Message.Trim().TrimEnd('.')}.", ex);
        }
        return present;
    }

    private void AddLocal(List<LocalModel> found, string folder, ModelSource source)
    {
        string[] files;
        try
        {
            files = Directory.Exists(folder) ? Directory.GetFiles(folder, "*.gguf") : [];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return;
        }
        foreach (var path in files.Order(StringComparer.Ordinal))
        {
            var (name, settings) = FindCatalogEntryByFile(Path.GetFileName(path));
            if (HuggingFaceReference.FromCacheFileName(name) is { } reference)
                name = reference.ToString();
            found.Add(new LocalModel(name, path, new FileInfo(path).Length, source, DigestOf(path, settings)));
        }
    }

    /// <summary>How a local file's content is vouched for: the catalog's SHA-256, one recorded on first use, or nothing.</summary>
    private static LocalDigest DigestOf(string path, ModelSettings settings) =>
        !string.IsNullOrWhiteSpace(settings.Sha256) ? LocalDigest.Verified
        : File.Exists(ModelDigest.PathFor(path)) ? LocalDigest.RecordedOnFirstUse
        : LocalDigest.Unverified;

    /// <summary>Downloads, and records the digest beside a file whose catalog entry gives none (trust on first use).</summary>
    private async Task<string> DownloadAsync(Uri url, string destination, string? sha256, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var digest = await Downloader.DownloadAsync(url, destination, sha256, progress, cancellationToken).ConfigureAwait(false);
        if (string.IsNullOrWhiteSpace(sha256))
        {
            try
            {
                ModelDigest.Record(destination, digest);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new AgentHostException(ErrorKind.DownloadFailed, $"Recording the SHA-256 of '{destination}' failed: {ex.Message.Trim().TrimEnd('.')}.", ex);
            }
        }
        return digest;
    }

    /// <summary>A cached file with a digest recorded on first use must still have it: a changed file is refused.</summary>
    private static async Task CheckRecordedDigestAsync(string name, string path, CancellationToken cancellationToken)
    {
        if (ModelDigest.Recorded(path) is not { } recorded)
            return;
        var actual = await Task.Run(() => ModelDigest.Compute(path), cancellationToken).ConfigureAwait(false);
        if (!string.Equals(actual, recorded, StringComparison.OrdinalIgnoreCase))
        {
            throw new AgentHostException(ErrorKind.InvalidModelFile,
                $"The cached model '{path}' ('{name}') has changed since it was downloaded: its SHA-256 is {actual}, but {recorded.ToLowerInvariant()} was recorded in '{ModelDigest.PathFor(path)}'. It was not loaded; remove it ('agenthost models rm {name}') to download it again.");
        }
    }

    /// <summary>Says where a model resolves right now, without downloading anything.</summary>
    /// <param name="name">A catalog name (any case) or a path to a model file.</param>
    /// <returns>The location, or why there is none.</returns>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.ModelNotFound"/> for a name the catalog does not know.</exception>
    public ModelLocation Describe(string name)
    {
        var value = ValueOrDefault(name);
        if (HuggingFaceReference.IsReference(value))
        {
            var reference = HuggingFaceReference.Parse(value);
            return LocalReferenceEntry(reference) is { } entry
                ? DescribeEntry(entry.Name, entry.Settings)
                : new ModelLocation(reference.ToString(), new ModelSettings(), null, null, "not found; the repository's file list chooses the file");
        }
        if (IsExplicitPath(value))
        {
            var full = FullPath(value);
            var (entryName, entrySettings) = FindCatalogEntryByFile(Path.GetFileName(full));
            return File.Exists(full)
                ? new ModelLocation(entryName, entrySettings, full, ModelSource.ExplicitPath, "explicit path")
                : new ModelLocation(entryName, entrySettings, null, null, "not found");
        }

        var (catalogName, settings) = FindCatalogEntry(value);
        return DescribeEntry(catalogName, settings);
    }

    /// <summary>Where a catalog entry (or the entry of a Hugging Face reference) resolves right now.</summary>
    private ModelLocation DescribeEntry(string catalogName, ModelSettings settings)
    {
        if (settings.Remote is { } remote)
            return new ModelLocation(catalogName, settings.Clone(), null, null, $"remote: {remote.Endpoint} (model {remote.RemoteName(catalogName)})");
        if (settings.StandIn is not null)
        {
            var (sourceName, _) = StandInSource(catalogName, settings.StandIn);
            var path = StandInPath(catalogName, settings);
            return File.Exists(path)
                ? new ModelLocation(catalogName, settings.Clone(), path, ModelSource.Cache, $"user cache (stand-in of {sourceName}, verified on use)")
                : new ModelLocation(catalogName, settings.Clone(), null, null, $"not built; built from {sourceName} on first use");
        }

        var search = Search(catalogName, settings);
        if (search.Found is not null)
        {
            var status = search.Found.Source switch
            {
                ModelSource.ModelsDir => "models folder",
                ModelSource.Cache => "user cache",
                _ => "catalog path",
            };
            return new ModelLocation(catalogName, settings.Clone(), search.Found.Path, search.Found.Source, status);
        }

        var url = DownloadUrl(catalogName, settings);
        var missing = search.IsCatalogPath ? "not found at the catalog path"
            : url is null ? "not found; no download URL"
            : !_options.AllowDownload ? "not found; downloads are disabled"
            : $"not found; would download from {url}";
        return new ModelLocation(catalogName, settings.Clone(), null, null, missing);
    }

    /// <summary>Describes every catalog entry, ordered by name; a malformed entry gets its error as <see cref="ModelLocation.Status"/>.</summary>
    /// <returns>One location per catalog entry.</returns>
    public IReadOnlyList<ModelLocation> DescribeAll()
    {
        var names = _options.Models.Keys.Order(StringComparer.OrdinalIgnoreCase).ToList();
        var locations = new List<ModelLocation>(names.Count);
        foreach (var name in names)
        {
            try
            {
                locations.Add(Describe(name));
            }
            catch (AgentHostException ex)
            {
                var settings = _options.Models[name]?.Clone() ?? new ModelSettings();
                locations.Add(new ModelLocation(name, settings, null, null, "invalid: " + ex.Message));
            }
        }
        return locations;
    }

    private string ValueOrDefault(string? nameOrPath)
    {
        var value = string.IsNullOrWhiteSpace(nameOrPath) ? _options.DefaultModel : nameOrPath.Trim();
        if (string.IsNullOrWhiteSpace(value))
            throw new AgentHostException(ErrorKind.ModelNotFound, "No model was given and no default model is configured (AgentHost:DefaultModel).");
        return value.Trim();
    }

    private static bool IsExplicitPath(string value) =>
        File.Exists(value)
        || value.Contains(Path.DirectorySeparatorChar)
        || value.Contains(Path.AltDirectorySeparatorChar)
        || value.StartsWith('~')
        || value.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase);

    private ResolvedModel ResolveExplicitPath(string value)
    {
        var full = FullPath(value);
        if (Directory.Exists(full))
            throw new AgentHostException(ErrorKind.ModelNotFound, $"Model file '{full}' is a folder, not a model file.");
        if (!File.Exists(full))
            throw new AgentHostException(ErrorKind.ModelNotFound, $"Model file '{full}' does not exist.");

        var (name, settings) = FindCatalogEntryByFile(Path.GetFileName(full));
        LogResolved(_logger, name, full, ModelSource.ExplicitPath);
        return new ResolvedModel(name, full, settings, ModelSource.ExplicitPath);
    }

    /// <summary>The catalog entry whose <see cref="ModelSettings.File"/> has this file name, else the file name and default settings.</summary>
    private (string Name, ModelSettings Settings) FindCatalogEntryByFile(string fileName)
    {
        foreach (var (name, settings) in _options.Models)
        {
            if (!string.IsNullOrWhiteSpace(settings?.File)
                && string.Equals(Path.GetFileName(settings.File.Trim()), fileName, StringComparison.OrdinalIgnoreCase))
            {
                return (name, settings.Clone());
            }
        }
        return (fileName, new ModelSettings());
    }

    private (string Name, ModelSettings Settings) FindCatalogEntry(string value)
    {
        // Scan rather than index: the result carries the catalog's spelling of the name, and a caller may have
        // replaced the case-insensitive dictionary with one that is not. An exact match wins over another case.
        (string Name, ModelSettings Settings)? match = null;
        foreach (var (name, settings) in _options.Models)
        {
            if (settings is null || !string.Equals(name, value, StringComparison.OrdinalIgnoreCase))
                continue;
            if (string.Equals(name, value, StringComparison.Ordinal))
                return (name, settings);
            match ??= (name, settings);
        }
        if (match is not null)
            return match.Value;

        var known = _options.Models.Keys.Order(StringComparer.OrdinalIgnoreCase).ToList();
        var list = known.Count == 0 ? "none (the catalog is empty)" : string.Join(", ", known);
        throw new AgentHostException(ErrorKind.ModelNotFound,
            $"Unknown model '{value}'. Known models: {list}. Pass a catalog name, a path to a .gguf file or a Hugging Face reference (hf:OWNER/REPO:QUANT).");
    }

    private SearchResult Search(string name, ModelSettings settings)
    {
        var file = settings.File?.Trim();
        if (string.IsNullOrEmpty(file))
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                $"The catalog entry '{name}' sets no File; set AgentHost:Models:{name}:File to the model's file name.");
        }

        var (modelsDir, modelsDirOrigin) = FindModelsDirectory();
        var cacheDir = CacheDirectory;

        if (Path.IsPathRooted(file))
        {
            // A catalog entry may name a file anywhere; it is used as is and never downloaded.
            var full = Path.GetFullPath(file);
            var found = File.Exists(full) ? new ResolvedModel(name, full, settings.Clone(), ModelSource.ExplicitPath) : null;
            return new SearchResult(name, full, modelsDir, modelsDirOrigin, cacheDir, found, IsCatalogPath: true);
        }
        if (Path.GetFileName(file) != file || file is "." or "..")
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                $"The catalog entry '{name}' has File '{file}'; it must be a plain file name (looked up in the models folder and the user cache) or an absolute path.");
        }

        if (modelsDir is not null)
        {
            if (!Directory.Exists(modelsDir))
                throw MissingModelsDirectory(modelsDir, modelsDirOrigin);
            var inModelsDir = Path.Combine(modelsDir, file);
            if (File.Exists(inModelsDir))
                return new SearchResult(name, file, modelsDir, modelsDirOrigin, cacheDir, new ResolvedModel(name, inModelsDir, settings.Clone(), ModelSource.ModelsDir), false);
        }

        var inCache = Path.Combine(cacheDir, file);
        if (File.Exists(inCache))
            return new SearchResult(name, file, modelsDir, modelsDirOrigin, cacheDir, new ResolvedModel(name, inCache, settings.Clone(), ModelSource.Cache), false);

        return new SearchResult(name, file, modelsDir, modelsDirOrigin, cacheDir, null, false);
    }

    /// <summary>
    /// Resolves the source model (downloading it if needed), then builds or reuses the stand-in in the user cache.
    /// A stand-in is never looked up elsewhere: only the file this product built and verifies is used.
    /// </summary>
    private async Task<ResolvedModel> ResolveStandInAsync(string name, ModelSettings settings, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var (sourceName, sourceSettings) = StandInSource(name, settings.StandIn!);
        var target = StandInPath(name, settings);
        // The type is checked before the source is resolved: a bad setting builds nothing.
        var quantize = settings.StandIn!.Quantize is { } type ? StandInQuantizer.ParseType(type, name) : (LLama.Native.LLamaFtype?)null;
        var source = await ResolveAsync(sourceName, progress, cancellationToken).ConfigureAwait(false);
        var built = quantize is { } ftype
            ? await new StandInQuantizer(_logger)
                .EnsureAsync(name, source.Path, ftype, target, settings.Sha256, cancellationToken)
                .ConfigureAwait(false)
            : await new StandInBuilder(_logger)
                .EnsureAsync(name, source.Path, settings.StandIn!, target, settings.Sha256, progress, cancellationToken)
                .ConfigureAwait(false);
        var resolved = new ResolvedModel(name, target, settings.Clone(), built ? ModelSource.Built : ModelSource.Cache);
        LogResolved(_logger, name, target, resolved.Source);
        return resolved;
    }

    /// <summary>The catalog entry a stand-in is built from; it must be a plain model, not another stand-in.</summary>
    private (string Name, ModelSettings Settings) StandInSource(string name, StandInSettings standIn)
    {
        if (string.IsNullOrWhiteSpace(standIn.Source))
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                $"The stand-in catalog entry '{name}' sets no StandIn:Source; set AgentHost:Models:{name}:StandIn:Source to the catalog name of the model it is built from.");
        }
        var source = FindCatalogEntry(standIn.Source.Trim());
        // A widened stand-in is built from a plain model; a quantized one also from a widened stand-in, never from another quantized one.
        if (source.Settings.StandIn is { } sourceStandIn && (standIn.Quantize is null || sourceStandIn.Quantize is not null))
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, standIn.Quantize is null
                ? $"The stand-in catalog entry '{name}' is built from '{source.Name}', which is a stand-in itself; its StandIn:Source must be a plain model."
                : $"The quantized stand-in '{name}' is built from '{source.Name}', which is quantized itself; its StandIn:Source must be a plain model or a widened stand-in.");
        }
        return source;
    }

    /// <summary>Where a stand-in lives: its <see cref="ModelSettings.File"/> (a plain file name) in the user cache.</summary>
    private string StandInPath(string name, ModelSettings settings)
    {
        var file = settings.File?.Trim();
        if (string.IsNullOrEmpty(file) || Path.GetFileName(file) != file || file is "." or "..")
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                $"The stand-in catalog entry '{name}' has File '{file}'; it must be a plain file name, which is built in the user cache.");
        }
        return Path.Combine(CacheDirectory, file);
    }

    private (string? Path, string Origin) FindModelsDirectory()
    {
        var fromEnvironment = _getEnvironmentVariable(AgentHostOptions.ModelsDirVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
            return (FullPath(fromEnvironment.Trim()), AgentHostOptions.ModelsDirVariable);
        if (!string.IsNullOrWhiteSpace(_options.ModelsDir))
            return (FullPath(_options.ModelsDir.Trim()), "AgentHost:ModelsDir");
        return (null, "");
    }

    /// <summary>
    /// A configured models folder that does not exist is a mistake in the setting (a typo, a relative path taken
    /// against another folder), not a reason to download: it names the folder and the setting to fix.
    /// </summary>
    private static AgentHostException MissingModelsDirectory(string folder, string origin) => new(ErrorKind.ModelNotFound,
        $"The models folder '{folder}' (from {origin}) does not exist; create it, or set {origin} to an existing folder"
        + (origin == AgentHostOptions.ModelsDirVariable ? " (or unset it)." : " (or remove it)."));

    private Uri? DownloadUrl(string name, ModelSettings settings)
    {
        if (string.IsNullOrWhiteSpace(settings.Url))
            return null;
        if (HuggingFaceReference.IsReference(settings.Url))
        {
            var reference = HuggingFaceReference.Parse(settings.Url);
            return reference.File is not null ? reference.FileUrl(HuggingFaceEndpoint) : throw new AgentHostException(ErrorKind.InvalidArgument,
                $"The catalog entry '{name}' has Url '{settings.Url}', which names no file; a catalog Url names one: hf:OWNER/REPO/FILE.");
        }
        if (!Uri.TryCreate(settings.Url.Trim(), UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                $"The catalog entry '{name}' has Url '{settings.Url}', which is not an absolute http or https URL or an hf:OWNER/REPO/FILE reference.");
        }
        return url;
    }

    private AgentHostException NotFound(SearchResult search, Uri? url)
    {
        if (search.IsCatalogPath)
        {
            return new AgentHostException(ErrorKind.ModelNotFound,
                $"Model file '{search.FileName}' (catalog entry '{search.Name}') does not exist.");
        }

        var places = search.ModelsDirectory is null
            ? $"in the user cache '{search.CacheDirectory}' (no models folder is set: set {AgentHostOptions.ModelsDirVariable} or AgentHost:ModelsDir)"
            : $"in the models folder '{search.ModelsDirectory}' (from {search.ModelsDirectoryOrigin}) or the user cache '{search.CacheDirectory}'";
        var why = url is null
            ? "the catalog gives no download URL for it"
            : $"downloads are disabled (AgentHost:AllowDownload is false), so it was not downloaded from {url}";
        return new AgentHostException(ErrorKind.ModelNotFound,
            $"Model '{search.Name}' (file '{search.FileName}') was not found {places}, and {why}.");
    }

    /// <summary>
    /// The full path of <paramref name="value"/>: a relative path that exists under the current directory stays there,
    /// else the first base directory holding it wins; a path found nowhere is reported under the current directory.
    /// </summary>
    private string FullPath(string value)
    {
        var path = ExpandHome(value);
        var inCurrent = Path.GetFullPath(path);
        if (Path.IsPathRooted(path) || File.Exists(inCurrent) || Directory.Exists(inCurrent))
            return inCurrent;
        foreach (var baseDirectory in _baseDirectories)
        {
            var candidate = Path.GetFullPath(path, baseDirectory);
            if (File.Exists(candidate) || Directory.Exists(candidate))
                return candidate;
        }
        return inCurrent;
    }

    private string ExpandHome(string path)
    {
        if (path == "~")
            return HomeDirectory();
        if (path.StartsWith("~/", StringComparison.Ordinal) || path.StartsWith("~" + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            return Path.Combine(HomeDirectory(), path[2..]);
        return path;
    }

    private string HomeDirectory()
    {
        var home = _getEnvironmentVariable("HOME");
        if (string.IsNullOrWhiteSpace(home))
            home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (string.IsNullOrWhiteSpace(home))
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                "Cannot find the home folder for the user cache; set AgentHost:CacheDir or XDG_CACHE_HOME.");
        }
        return home;
    }

    private static HttpClient CreateHttpClient()
    {
        var client = new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(30) })
        {
            Timeout = TimeSpan.FromSeconds(100),
        };
        client.DefaultRequestHeaders.UserAgent.ParseAdd("AgentHost");
        return client;
    }

    /// <summary>What a local search found, and where it looked.</summary>
    private sealed record SearchResult(
        string Name,
        string FileName,
        string? ModelsDirectory,
        string ModelsDirectoryOrigin,
        string CacheDirectory,
        ResolvedModel? Found,
        bool IsCatalogPath);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Model {Name} resolved to {Path} ({Source})")]
    private static partial void LogResolved(ILogger logger, string name, string path, ModelSource source);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The cached model {Path} is broken ({Problem}); it was removed")]
    private static partial void LogBrokenCache(ILogger logger, string path, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {Name} was not found locally; downloading it from {Url} to {Path}")]
    private static partial void LogDownloading(ILogger logger, string name, Uri url, string path);
}
