namespace AgentHost.Llama.Models;

// models show: what a name will be used as.
public sealed partial class ModelResolver
{
    /// <summary>
    /// Says what <paramref name="nameOrPath"/> will be used as: where it is or would come from, its size, how its content is
    /// vouched for and, when local, its GGUF header. Downloads nothing; only the quantisation of a Hugging Face reference
    /// found in neither the catalog nor the user cache asks the repository's file list.
    /// </summary>
    /// <param name="nameOrPath">As for <see cref="ResolveAsync"/>.</param>
    /// <param name="cancellationToken">Cancels the file-list request.</param>
    /// <returns>The details.</returns>
    /// <exception cref="AgentHostException">An unknown name, a malformed reference or entry, or a failed file-list request.</exception>
    public async Task<ModelDetails> InspectAsync(string? nameOrPath, CancellationToken cancellationToken = default)
    {
        var value = ValueOrDefault(nameOrPath);
        ModelLocation location;
        if (HuggingFaceReference.IsReference(value))
        {
            var (name, settings) = await ReferenceEntryAsync(HuggingFaceReference.Parse(value), cancellationToken).ConfigureAwait(false);
            location = DescribeEntry(name, settings);
        }
        else
            location = Describe(value);

        var settingsUrl = location.Settings.StandIn is null && location.Source != ModelSource.ExplicitPath ? DownloadUrl(location.Name, location.Settings) : null;
        var pinned = string.IsNullOrWhiteSpace(location.Settings.Sha256) ? null : location.Settings.Sha256.Trim().ToLowerInvariant();
        if (location.Path is not { } path)
        {
            var size = location.Settings.Size > 0 ? location.Settings.Size : (long?)null;
            return new ModelDetails(location, settingsUrl, size, pinned is null ? LocalDigest.Unverified : LocalDigest.Verified, pinned, null, null);
        }

        var digest = DigestOf(path, location.Settings);
        var sha256 = digest == LocalDigest.RecordedOnFirstUse ? ModelDigest.Recorded(path) : pinned;
        GgufFile? file = null;
        string? problem = null;
        try
        {
            file = await Task.Run(() => GgufFile.Read(path), cancellationToken).ConfigureAwait(false);
        }
        catch (AgentHostException ex) when (ex.Kind is ErrorKind.InvalidModelFile or ErrorKind.ModelNotFound)
        {
            problem = ex.Message.Trim().TrimEnd('.');
        }
        return new ModelDetails(location, settingsUrl, new FileInfo(path).Length, digest, sha256, file, problem);
    }
}
