namespace AgentHost.Llama.Models;

/// <summary>Where a model resolves right now, without downloading anything (for a <c>models</c> listing).</summary>
/// <param name="Name">The catalog name, or the file name for an explicit path that is not in the catalog.</param>
/// <param name="Settings">A copy of the model's settings.</param>
/// <param name="Path">Full path of the file when it was found; otherwise <see langword="null"/>.</param>
/// <param name="Source">Where the file was found; <see langword="null"/> when it was not.</param>
/// <param name="Status">
/// A short human-readable state, e.g. <c>models folder</c>, <c>user cache</c>,
/// <c>not found; would download from URL</c> or <c>not found; no download URL</c>.
/// </param>
public sealed record ModelLocation(string Name, ModelSettings Settings, string? Path, ModelSource? Source, string Status)
{
    /// <summary>Whether the file exists locally.</summary>
    public bool IsAvailable => Path is not null;
}
