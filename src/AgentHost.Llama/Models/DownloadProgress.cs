namespace AgentHost.Llama.Models;

/// <summary>Progress of a model download.</summary>
/// <param name="BytesReceived">Bytes received so far.</param>
/// <param name="TotalBytes">The size the server announced, if it did.</param>
public readonly record struct DownloadProgress(long BytesReceived, long? TotalBytes);
