using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;
using AgentHost.SemanticKernel;
using AgentHost.SemanticKernel.Agents;
using AgentHost.Extensions.AI;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;

namespace AgentHost.Cli;

/// <summary>
/// Agents for the CLI: the catalog from <c>Agents:Directory</c>, a kernel with the configured plugins
/// (prompt plugins run on the default model), and one chat client per model the agents name, loaded on
/// first use and disposed with the session.
/// </summary>
internal sealed class AppAgents(AgentOptions options, AgentHostOptions hostOptions, AppPlugins plugins, ILlamaModelProvider models, IHostEnvironment environment)
{
    public async Task<AgentSession> OpenAsync(string? defaultModel, CancellationToken cancellationToken)
    {
        var catalog = AgentCatalog.Load(Path.GetFullPath(options.Directory, environment.ContentRootPath));
        var session = new AgentSession(models, hostOptions, defaultModel ?? hostOptions.DefaultModel);
        var builder = Kernel.CreateBuilder();
        var defaultClient = await session.GetClientAsync(null, cancellationToken);
        builder.Services.AddSingleton(defaultClient);
        var kernel = builder.Build();
        plugins.ImportInto(kernel);
        session.Runner = new AgentRunner(catalog, kernel, session.GetClientAsync) { MaxDepth = options.MaxDepth };
        return session;
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
