namespace AgentHost.Llama.Models;

// Hugging Face references (hf:OWNER/REPO/FILE.gguf, hf:OWNER/REPO:QUANT): each becomes a catalog entry, the catalog's
// own where one downloads that very file, so that both share one download, checksum and settings.
public sealed partial class ModelResolver
{
    /// <summary>The Hugging Face endpoint <c>hf:</c> references resolve against.</summary>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidArgument"/> for a malformed <see cref="AgentHostOptions.HuggingFaceEndpoint"/>.</exception>
    public Uri HuggingFaceEndpoint => HuggingFaceHub.ParseEndpoint(_options.HuggingFaceEndpoint);

    private string? HuggingFaceToken => _getEnvironmentVariable("HF_TOKEN") is { Length: > 0 } token ? token : _options.HuggingFaceToken;

    private ModelDownloader Downloader => _downloader ??= new ModelDownloader(_sharedHttpClient.Value, _logger)
    {
        HuggingFaceToken = HuggingFaceToken,
        HuggingFaceEndpoint = HuggingFaceEndpoint,
    };

    /// <summary>
    /// The entry a reference names; a quantisation is looked up in the catalog and the user cache first, and in the
    /// repository's file list only when neither has exactly one file of it (and downloads are allowed).
    /// </summary>
    private async Task<(string Name, ModelSettings Settings)> ReferenceEntryAsync(HuggingFaceReference reference, CancellationToken cancellationToken)
    {
        if (LocalReferenceEntry(reference) is { } local)
            return local;
        if (!_options.AllowDownload)
        {
            throw new AgentHostException(ErrorKind.ModelNotFound,
                $"{reference}: no file of it is in the catalog or the user cache '{CacheDirectory}', and downloads are disabled (AgentHost:AllowDownload is false), so its repository was not asked.");
        }
        var hub = new HuggingFaceHub(Downloader.HttpClient, HuggingFaceEndpoint, HuggingFaceToken);
        var chosen = await hub.ChooseFileAsync(reference, cancellationToken).ConfigureAwait(false);
        return LocalReferenceEntry(chosen)!.Value;
    }

    /// <summary>
    /// The entry of a reference found without the network: the catalog entry whose <c>Url</c> is that file on the
    /// endpoint, else, for a file, <c>OWNER--REPO--FILE</c> in the user cache (<see cref="HuggingFaceReference.CacheFileName"/>),
    /// else, for a quantisation, the one cached file of the repository that has it; null when a quantisation is not settled.
    /// </summary>
    private (string Name, ModelSettings Settings)? LocalReferenceEntry(HuggingFaceReference reference)
    {
        var endpoint = HuggingFaceEndpoint;
        foreach (var (name, settings) in _options.Models.OrderBy(e => e.Key, StringComparer.OrdinalIgnoreCase))
        {
            if (settings is { StandIn: null } && HubFile(settings.Url, endpoint) is { } entry && reference.Matches(entry))
            {
                return (name, settings);
            }
        }

        if (reference.File is null)
        {
            var cached = CachedFiles().Select(HuggingFaceReference.FromCacheFileName).OfType<HuggingFaceReference>().Where(reference.Matches).ToList();
            if (cached.Count != 1)
                return null;
            reference = cached[0];
        }
        return (reference.ToString(), new ModelSettings { File = reference.CacheFileName, Url = reference.FileUrl(endpoint).AbsoluteUri });
    }

    /// <summary>The hub file a catalog <c>Url</c> names (an <c>hf:</c> file reference or a URL on the endpoint); null for any other.</summary>
    private static HuggingFaceReference? HubFile(string? url, Uri endpoint)
    {
        if (HuggingFaceReference.IsReference(url))
        {
            try
            {
                return HuggingFaceReference.Parse(url!) is { File: not null } reference ? reference : null;
            }
            catch (AgentHostException)
            {
                return null;   // a malformed entry says so when it is used, not while another one is looked up
            }
        }
        return Uri.TryCreate(url?.Trim(), UriKind.Absolute, out var parsed) ? HuggingFaceReference.FromUrl(parsed, endpoint) : null;
    }

    private IEnumerable<string> CachedFiles()
    {
        try
        {
            return Directory.Exists(CacheDirectory) ? Directory.GetFiles(CacheDirectory, "*.gguf").Select(Path.GetFileName).OfType<string>() : [];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}
