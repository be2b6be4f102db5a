using System.Diagnostics.Metrics;
using AgentHost.Extensions.AI.Remote;
using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;

namespace AgentHost.Extensions.AI;

/// <summary>
/// The one place that chooses the chat client of a model name: a remote catalog entry gets a <see cref="RemoteChatClient"/>
/// on its endpoint, anything else (a local entry, a path, a Hugging Face reference) a <see cref="LlamaChatClient"/> on the
/// model the provider loads. Registration, the CLI's verbs and the server all ask here.
/// </summary>
public static class ModelChatClients
{
    /// <summary>The chat client of <paramref name="nameOrPath"/>; the caller disposes it (never the provider's model).</summary>
    /// <param name="models">Loads local models.</param>
    /// <param name="options">The catalog, which says whether the name is remote.</param>
    /// <param name="nameOrPath">A catalog name, a path to a .gguf file or a reference; null or empty: the default model.</param>
    /// <param name="clientOptions">How a local model is served (ignored for a remote one).</param>
    /// <param name="loggerFactory">Logs of a local client.</param>
    /// <param name="meterFactory">Meters of a local client; null for the process-wide one.</param>
    /// <param name="cancellationToken">Stops waiting for a local model's load.</param>
    /// <returns>A <see cref="RemoteChatClient"/> or a <see cref="LlamaChatClient"/>.</returns>
    public static async Task<IChatClient> CreateAsync(ILlamaModelProvider models, AgentHostOptions options, string? nameOrPath, LlamaChatClientOptions? clientOptions = null,
        ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(models);
        ArgumentNullException.ThrowIfNull(options);
        if (options.FindRemote(nameOrPath) is { } remote)
            return new RemoteChatClient(remote.Name, remote.Settings);
        var model = await models.GetModelAsync(nameOrPath, cancellationToken).ConfigureAwait(false);
        return new LlamaChatClient(model, clientOptions, loggerFactory?.CreateLogger<LlamaChatClient>(), meterFactory);
    }
}
