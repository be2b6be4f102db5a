using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;
using AgentHost.SemanticKernel;
using AgentHost.SemanticKernel.Agents;
using AgentHost.Extensions.AI;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;

namespace AgentHost.Cli;

/// <summary>
/// Agents for the CLI and the server: the catalog from <c>Agents:Directory</c>, a kernel with the configured plugins
/// (prompt plugins run on the default model), and the chat clients of the models the agents name.
/// </summary>
internal sealed class AppAgents(AgentOptions options, AgentHostOptions hostOptions, AppPlugins plugins, ILlamaModelProvider models, IHostEnvironment environment)
{
    /// <summary>
    /// A session whose clients (one per model, loaded on first use) are disposed with it; the default model loads now.
    /// With <paramref name="agent"/> (the agent the session runs) the kernel also holds the tools of the
    /// <c>Mcp:Servers</c> that agent and the agents it calls name, and no other server is started; without, none.
    /// </summary>
    public async Task<AgentSession> OpenAsync(string? defaultModel, string? agent, CancellationToken cancellationToken)
    {
        var session = new AgentSession(models, hostOptions, defaultModel ?? hostOptions.DefaultModel);
        try
        {
            session.Runner = CreateRunner(session.GetClientAsync, defaultModel ?? hostOptions.DefaultModel);
            if (agent is null)
                plugins.ImportInto(session.Runner.Kernel);
            else
                await plugins.ImportAsync(session.Runner.Kernel, session.Runner.Catalog.PluginsUsedBy(agent), cancellationToken);
            await session.GetClientAsync(null, cancellationToken);
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>A runner of the catalog's agents over <paramref name="clients"/>, with a kernel whose plugins the caller imports.</summary>
    /// <param name="clients">The chat client of a model (null: the default model).</param>
    /// <param name="defaultModel">The default model's name, which the kernel's chat client reports in its metadata.</param>
    public AgentRunner CreateRunner(Func<string?, CancellationToken, Task<IChatClient>> clients, string defaultModel)
    {
        var catalog = AgentCatalog.Load(Path.GetFullPath(options.Directory, environment.ContentRootPath));
        var builder = Kernel.CreateBuilder();
        builder.Services.AddSingleton<IChatClient>(new DeferredChatClient(cancellationToken => clients(null, cancellationToken), defaultModel));
        return new AgentRunner(catalog, builder.Build(), clients) { MaxDepth = options.MaxDepth };
    }

    /// <summary>The default model's client for prompt plugins, fetched at their first call (the server loads models on first use).</summary>
    private sealed class DeferredChatClient(Func<CancellationToken, Task<IChatClient>> client, string defaultModel) : IChatClient
    {
        // SK's ChatClientAIService (every prompt function) refuses a client without metadata: "Value cannot be null.
        // (Parameter 'metadata')". The model is not loaded yet, so the metadata names it without asking it.
        private readonly ChatClientMetadata _metadata = new(LlamaChatClient.ProviderName, null, defaultModel);

        public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
            => await (await client(cancellationToken)).GetResponseAsync(messages, options, cancellationToken);

        public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            await foreach (var update in (await client(cancellationToken)).GetStreamingResponseAsync(messages, options, cancellationToken))
                yield return update;
        }

        public object? GetService(Type serviceType, object? serviceKey = null)
        {
            ArgumentNullException.ThrowIfNull(serviceType);
            if (serviceKey is not null)
                return null;
            return serviceType == typeof(ChatClientMetadata) ? _metadata : serviceType.IsInstanceOfType(this) ? this : null;
        }

        public void Dispose()
        {
            // The clients belong to whoever made them.
        }
    }
}

/// <summary>The chat clients one agent session made, over the models of the provider (which owns them) or remote endpoints.</summary>
internal sealed class AgentSession(ILlamaModelProvider models, AgentHostOptions hostOptions, string defaultModel) : IDisposable
{
    private readonly Dictionary<string, IChatClient> _clients = new(StringComparer.OrdinalIgnoreCase);

    public AgentRunner Runner { get; set; } = null!;

    public async Task<IChatClient> GetClientAsync(string? model, CancellationToken cancellationToken)
    {
        var name = model ?? defaultModel;
        if (!_clients.TryGetValue(name, out var client))
        {
            _clients[name] = client = await ModelChatClients.CreateAsync(models, hostOptions, name,
                new LlamaChatClientOptions { FormatsDirectory = hostOptions.FormatsDirectory() }, cancellationToken: cancellationToken);
        }
        return client;
    }

    public void Dispose()
    {
        foreach (var client in _clients.Values)
            client.Dispose();
    }
}
