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
internal sealed class AppAgents(AgentOptions options, AgentHostOptions hostOptions, AppPlugins plugins, ModelLoader loader, IHostEnvironment environment)
{
    public async Task<AgentSession> OpenAsync(string? defaultModel, CancellationToken cancellationToken)
    {
        var catalog = AgentCatalog.Load(Path.GetFullPath(options.Directory, environment.ContentRootPath));
        var session = new AgentSession(loader, defaultModel ?? hostOptions.DefaultModel, hostOptions.FormatsDirectory());
        var builder = Kernel.CreateBuilder();
        var defaultClient = await session.GetClientAsync(null, cancellationToken);
        builder.Services.AddSingleton(defaultClient);
        var kernel = builder.Build();
        plugins.ImportInto(kernel);
        session.Runner = new AgentRunner(catalog, kernel, session.GetClientAsync) { MaxDepth = options.MaxDepth };
        return session;
    }
}

/// <summary>The models and clients one agent session loaded.</summary>
internal sealed class AgentSession(ModelLoader loader, string defaultModel, string? formatsDirectory) : IDisposable
{
    private readonly Dictionary<string, (LlamaModel Model, LlamaChatClient Client)> _loaded = new(StringComparer.OrdinalIgnoreCase);

    public AgentRunner Runner { get; set; } = null!;

    public async Task<IChatClient> GetClientAsync(string? model, CancellationToken cancellationToken)
    {
        var name = model ?? defaultModel;
        if (!_loaded.TryGetValue(name, out var entry))
        {
            var loaded = await loader.LoadAsync(name, cancellationToken);
            entry = (loaded, new LlamaChatClient(loaded, new LlamaChatClientOptions { FormatsDirectory = formatsDirectory }));
            _loaded[name] = entry;
        }
        return entry.Client;
    }

    public void Dispose()
    {
        foreach (var (model, client) in _loaded.Values)
        {
            client.Dispose();
            model.Dispose();
        }
    }
}
