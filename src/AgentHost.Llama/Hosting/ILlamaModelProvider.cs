using AgentHost.Llama.Models;

namespace AgentHost.Llama.Hosting;

/// <summary>
/// Loads models by catalog name or path, each once, and owns them: they are disposed with the provider
/// (with the service container that created it). Thread-safe.
/// </summary>
public interface ILlamaModelProvider
{
    /// <summary>
    /// The model <paramref name="nameOrPath"/> names, resolved (models folder, user cache, download) and loaded on the
    /// first request; later requests for the same catalog entry or file get the same instance. Do not dispose it.
    /// </summary>
    /// <param name="nameOrPath">A catalog name (any case) or a path to a .gguf file; null or empty takes <see cref="AgentHostOptions.DefaultModel"/>.</param>
    /// <param name="cancellationToken">Stops this caller's wait (a load other callers share goes on).</param>
    /// <returns>The loaded model.</returns>
    /// <exception cref="AgentHostException">An unknown name, a missing or invalid file, or a failed download; the message lists the known models where it helps.</exception>
    /// <exception cref="ObjectDisposedException">The provider was disposed.</exception>
    Task<LlamaModel> GetModelAsync(string? nameOrPath, CancellationToken cancellationToken = default);
}
