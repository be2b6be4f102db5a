namespace AgentHost.Llama.Models;

/// <summary>Progress of a model download, or of a stand-in build (<see cref="IsBuild"/>).</summary>
/// <param name="BytesReceived">Bytes received (or written) so far.</param>
/// <param name="TotalBytes">The size the server announced (or the file will have), if known.</param>
public readonly record struct DownloadProgress(long BytesReceived, long? TotalBytes)
{
    /// <summary>Whether the bytes are written by a stand-in build rather than downloaded.</summary>
    public bool IsBuild { get; init; }
}
