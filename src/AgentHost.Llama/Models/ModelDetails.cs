namespace AgentHost.Llama.Models;

/// <summary>What a model name will be used as, without downloading anything (for <c>models show</c>).</summary>
/// <param name="Location">Where it resolves now, with the settings it gets.</param>
/// <param name="Url">Where it is (or was) downloaded from, or null (a stand-in, a path, an entry without one).</param>
/// <param name="Size">The file's size in bytes: exact when local, else the catalog's approximate <see cref="ModelSettings.Size"/>; null when unknown.</param>
/// <param name="Digest">How its content is vouched for; for a file not yet local, <see cref="LocalDigest.Verified"/> when the catalog pins a SHA-256.</param>
/// <param name="Sha256">The pinned or recorded SHA-256, or null.</param>
/// <param name="File">The local file's GGUF header (chat template, architecture, trained context), or null.</param>
/// <param name="Problem">Why the local file could not be read as GGUF, or null.</param>
public sealed record ModelDetails(ModelLocation Location, Uri? Url, long? Size, LocalDigest Digest, string? Sha256, GgufFile? File, string? Problem)
{
    /// <summary>The context the model was trained with (<c>ARCH.context_length</c>), when the file is local and says.</summary>
    public long? TrainedContext => File?.Architecture is { } architecture ? File.GetInteger($"{architecture}.context_length") : null;
}
