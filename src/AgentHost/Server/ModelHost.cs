using System.Collections.Concurrent;
using AgentHost.Cli;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;
using AgentHost.Extensions.AI;

namespace AgentHost.Server;

/// <summary>
/// The models the server answers for: catalog names only (a request can never name a file), each loaded
/// on first use and kept, with one <see cref="LlamaChatClient"/> whose slots all its requests share.
/// </summary>
internal sealed class ModelHost(AgentHostOptions options, ServerOptions serverOptions, ModelLoader loader) : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Task<HostedModel>>> _models = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Catalog names, the default model first.</summary>
    public IReadOnlyList<string> Names => options.Models.Keys.OrderBy(n => string.Equals(n, options.DefaultModel, StringComparison.OrdinalIgnoreCase) ? 0 : 1).ThenBy(n => n, StringComparer.Ordinal).ToList();

    /// <summary>Models loaded so far.</summary>
    public IEnumerable<HostedModel> Loaded => _models.Values.Where(l => l.IsValueCreated && l.Value.IsCompletedSuccessfully).Select(l => l.Value.Result);

    /// <summary>The model <paramref name="name"/>, loading it on first use; 404 for a name not in the catalog.</summary>
    public async Task<HostedModel> GetAsync(string name, CancellationToken cancellationToken)
    {
        var key = options.Models.Keys.FirstOrDefault(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ApiError(StatusCodes.Status404NotFound, $"The model '{name}' does not exist. Available: {string.Join(", ", Names)}.", code: "model_not_found", param: "model");
        var lazy = _models.GetOrAdd(key, k => new Lazy<Task<HostedModel>>(() => LoadAsync(k)));
        try
        {
            return await lazy.Value.WaitAsync(cancellationToken);
        }
        catch (Exception) when (lazy.Value.IsFaulted)
        {
            _models.TryRemove(KeyValuePair.Create(key, lazy));   // a failed load is retried by the next request
            throw;
        }
    }

    private async Task<HostedModel> LoadAsync(string name)
    {
        var model = await loader.LoadAsync(name, CancellationToken.None);
        var client = new LlamaChatClient(model, new LlamaChatClientOptions { Slots = serverOptions.Slots, MaxTokens = serverOptions.DefaultMaxTokens, FormatsDirectory = options.FormatsDirectory(), ContinuousBatching = serverOptions.Batching });
        return new HostedModel(name, model, client, new TextEmbedder(model));
    }

    public void Dispose()
    {
        foreach (var hosted in Loaded)
        {
            hosted.Client.Dispose();
            hosted.Embedder.Dispose();
            hosted.Model.Dispose();
        }
    }
}

/// <summary>A loaded model and the client serving it.</summary>
internal sealed record HostedModel(string Name, LlamaModel Model, LlamaChatClient Client, TextEmbedder Embedder);
