using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;
using AgentHost.Extensions.AI;
using AgentHost.Extensions.AI.Remote;
using Microsoft.Extensions.AI;

namespace AgentHost.Server;

/// <summary>
/// The models the server answers for: the served catalog names only (a request can never name a file), each taken
/// from the model provider (which loads it once and owns it) on first use, with one <see cref="LlamaChatClient"/>
/// whose slots all its requests share, and its admission count. A request never downloads or builds a model: only
/// files already on this machine load (<c>serve</c> pulls what it serves before it listens). A remote entry gets a
/// <see cref="RemoteChatClient"/> instead, so the server routes its chat requests to the entry's endpoint.
/// </summary>
internal sealed class ModelHost(AgentHostOptions options, ServerOptions serverOptions, ILlamaModelProvider models, ModelResolver resolver, IMeterFactory meterFactory) : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Task<HostedModel>>> _models = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The served catalog names, the default model first (see <see cref="ServedNames"/>).</summary>
    public IReadOnlyList<string> Names { get; } = ServedNames(options, serverOptions, resolver);

    /// <summary>
    /// The catalog names a server answers for: <see cref="ServerOptions.Models"/> when set (each must be a catalog
    /// name), else the default model and every catalog entry whose file is already on this machine or that is remote
    /// (nothing to fetch). Never the whole catalog: its real models are gigabytes each, and a client's request must
    /// not fetch or load them.
    /// </summary>
    /// <exception cref="Llama.AgentHostException">A name in Server:Models the catalog does not know (naming the key).</exception>
    public static IReadOnlyList<string> ServedNames(AgentHostOptions options, ServerOptions serverOptions, ModelResolver resolver)
    {
        var listed = serverOptions.ModelNames();
        var names = listed.Count > 0
            ? listed.Select(n => CatalogName(options, n) ?? throw new Llama.AgentHostException(Llama.ErrorKind.InvalidArgument,
                $"Server:Models names '{n}', which is not in the model catalog. Known: {string.Join(", ", options.Models.Keys.Order(StringComparer.Ordinal))}."))
            : resolver.DescribeAll().Where(l => l.Path is not null || l.Settings.Remote is not null).Select(l => l.Name).Prepend(options.DefaultModel);
        return names.Distinct(StringComparer.OrdinalIgnoreCase).OrderBy(n => IsDefault(options, n) ? 0 : 1).ThenBy(n => n, StringComparer.Ordinal).ToList();
    }

    private static bool IsDefault(AgentHostOptions options, string name) => string.Equals(name, options.DefaultModel, StringComparison.OrdinalIgnoreCase);

    private static string? CatalogName(AgentHostOptions options, string name) => options.Models.Keys.FirstOrDefault(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>Models loaded so far.</summary>
    public IEnumerable<HostedModel> Loaded => _models.Values.Where(l => l.IsValueCreated && l.Value.IsCompletedSuccessfully).Select(l => l.Value.Result);

    /// <summary>The model <paramref name="name"/>, loading it on first use; 404 for a name not in the catalog.</summary>
    public async Task<HostedModel> GetAsync(string name, CancellationToken cancellationToken)
    {
        var key = Names.FirstOrDefault(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ApiError(StatusCodes.Status404NotFound,
                CatalogName(options, name) is null ? $"The model '{name}' does not exist. Available: {string.Join(", ", Names)}."
                    : $"The model '{name}' is not served here (the operator chooses served models with Server:Models). Available: {string.Join(", ", Names)}.",
                code: "model_not_found", param: "model");
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
        if (options.FindRemote(name) is { } remote)
            return new HostedModel(name, new RemoteChatClient(remote.Name, remote.Settings), null, null);
        // The provider would download a missing file or build a stand-in: that is the operator's step, never a request's.
        if (resolver.Describe(name).Path is null)
            throw new ApiError(StatusCodes.Status503ServiceUnavailable, $"The model '{name}' is not on this machine; the server never downloads. The operator can fetch it with 'agenthost models pull {name}'.", type: "server_error", code: "model_unavailable");
        var model = await models.GetModelAsync(name, CancellationToken.None);
        var client = new LlamaChatClient(model, new LlamaChatClientOptions
        {
            MaxTokens = serverOptions.DefaultMaxTokens,
            FormatsDirectory = options.FormatsDirectory(),
            ContinuousBatching = serverOptions.Batching,
            AllowFileOptions = false,   // requests never name server-side files
            CutOffJsonIsError = false,  // OpenAI's shape: finish_reason "length" with the partial text
            RecyclingMatrixFile = serverOptions.StateDirectory is { } state ? Path.Combine(Path.GetFullPath(state), $"{FileSafe(name)}.recycling-matrix") : null,
        }, meterFactory: meterFactory);
        return new HostedModel(name, client, client, new LlamaEmbeddingGenerator(model, meterFactory));
    }

    // Catalog names come from the operator, but a file name must still stay inside the state folder.
    private static string FileSafe(string name) => string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_')).TrimStart('.');

    public void Dispose()
    {
        foreach (var hosted in Loaded)
            hosted.Dispose();
    }
}

/// <summary>A model the server answers for: its chat client (local or remote), the local client and embedder if it is local, and its admission count.</summary>
internal sealed class HostedModel(string name, IChatClient chat, LlamaChatClient? local, LlamaEmbeddingGenerator? embedder) : IDisposable
{
    private int _admitted;

    public string Name { get; } = name;

    /// <summary>Serves chat completions, locally or by forwarding them to a remote entry's endpoint.</summary>
    public IChatClient Chat => chat;

    /// <summary>The local client, for what needs the model itself (text completions); 400 for a remote entry.</summary>
    public LlamaChatClient Local(string endpoint) => local ?? throw NotLocal(endpoint);

    /// <summary>The local embedder; 400 for a remote entry.</summary>
    public LlamaEmbeddingGenerator Embedder(string endpoint) => embedder ?? throw NotLocal(endpoint);

    public void Dispose()
    {
        chat.Dispose();
        embedder?.Dispose();
    }

    private ApiError NotLocal(string endpoint) => new(StatusCodes.Status400BadRequest,
        $"Model '{Name}' is remote: this server forwards only chat completions to it, and {endpoint} needs a local GGUF model.", code: "model_not_local", param: "model");

    /// <summary>Requests admitted and not yet finished (waiting for or holding the model): the queue depth.</summary>
    public int Admitted => Volatile.Read(ref _admitted);

    /// <summary>Admits one request if fewer than <paramref name="limit"/> are in (atomic: no check-then-act race); dispose the ticket when done.</summary>
    public IDisposable? TryAdmit(int limit)
    {
        if (Interlocked.Increment(ref _admitted) <= limit)
            return new Ticket(this);
        Interlocked.Decrement(ref _admitted);
        return null;
    }

    private sealed class Ticket(HostedModel model) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
                Interlocked.Decrement(ref model._admitted);
        }
    }
}
