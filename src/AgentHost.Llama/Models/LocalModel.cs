namespace AgentHost.Llama.Models;

/// <summary>A model file on this machine (for <c>models list</c>).</summary>
/// <param name="Name">The catalog name of the file, or the file name when the catalog does not know it.</param>
/// <param name="Path">Full path of the file.</param>
/// <param name="Size">Size in bytes.</param>
/// <param name="Source"><see cref="ModelSource.ModelsDir"/> or <see cref="ModelSource.Cache"/>.</param>
/// <param name="Digest">How its content is vouched for.</param>
public sealed record LocalModel(string Name, string Path, long Size, ModelSource Source, LocalDigest Digest);

/// <summary>How a local model file's content is vouched for.</summary>
public enum LocalDigest
{
    /// <summary>Nothing: no catalog SHA-256 and no digest recorded beside it.</summary>
    Unverified,

    /// <summary>Its SHA-256 was recorded beside it (<c>FILE.sha256</c>) on first download and is checked on every use.</summary>
    RecordedOnFirstUse,

    /// <summary>Its catalog entry gives a SHA-256, checked when it was downloaded.</summary>
    Verified,
}
