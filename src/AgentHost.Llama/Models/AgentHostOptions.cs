namespace AgentHost.Llama.Models;

/// <summary>The <c>AgentHost</c> configuration section: the model catalog and where models live.</summary>
public sealed class AgentHostOptions
{
    /// <summary>The configuration section name.</summary>
    public const string SectionName = "AgentHost";

    /// <summary>Environment variable naming the models folder; it wins over <see cref="ModelsDir"/>.</summary>
    public const string ModelsDirVariable = "AGENTHOST_MODELS_DIR";

    /// <summary>Catalog name used when a command names no model.</summary>
    public string DefaultModel { get; set; } = "stories260k";

    /// <summary>Folder searched for model files (after an explicit path).</summary>
    public string? ModelsDir { get; set; }

    /// <summary>User cache for downloaded models; empty means <c>$XDG_CACHE_HOME/agenthost/models</c> or <c>~/.cache/agenthost/models</c>.</summary>
    public string? CacheDir { get; set; }

    /// <summary>Folder whose <c>NAME.scriban</c> files replace the built-in chat format templates; empty uses the built-in ones.</summary>
    public string? ChatFormatsDir { get; set; }

    /// <summary>Whether a model found nowhere locally may be downloaded from its URL.</summary>
    public bool AllowDownload { get; set; } = true;

    /// <summary>The Hugging Face endpoint <c>hf:</c> references resolve against (a mirror, say); empty means <c>https://huggingface.co</c>.</summary>
    public string? HuggingFaceEndpoint { get; set; }

    /// <summary>
    /// Access token for gated or private Hugging Face repositories; the environment variable <c>HF_TOKEN</c> wins over it.
    /// Sent only to huggingface.co and to <see cref="HuggingFaceEndpoint"/>.
    /// </summary>
    public string? HuggingFaceToken { get; set; }

    /// <summary>The named models.</summary>
    public Dictionary<string, ModelSettings> Models { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// The remote entry <paramref name="nameOrPath"/> names (a catalog name in any case; null or empty: <see cref="DefaultModel"/>),
    /// or null for anything else (a local entry, a path, an unknown name).
    /// </summary>
    public (string Name, RemoteModelSettings Settings)? FindRemote(string? nameOrPath)
    {
        var value = string.IsNullOrWhiteSpace(nameOrPath) ? DefaultModel : nameOrPath.Trim();
        foreach (var (name, settings) in Models)
        {
            if (settings?.Remote is { } remote && string.Equals(name, value, StringComparison.OrdinalIgnoreCase))
                return (name, remote);
        }
        return null;
    }

    /// <summary>Checks the settings outside the catalog entries (each entry has <see cref="ModelSettings.Validate"/>).</summary>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidArgument"/> naming the offending key.</exception>
    public void Validate() => HuggingFaceHub.ParseEndpoint(HuggingFaceEndpoint);
}
