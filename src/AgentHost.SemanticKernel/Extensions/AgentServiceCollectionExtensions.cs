using System.Diagnostics.Metrics;
using AgentHost.Extensions.AI;
using AgentHost.Llama;
using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;
using AgentHost.SemanticKernel.Agents;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.SemanticKernel;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the <see cref="AgentRunner"/> of an app's YAML agents.</summary>
public static class AgentServiceCollectionExtensions
{
    /// <summary>
    /// Adds a singleton <see cref="AgentRunner"/> (unless one is registered) over the agents of
    /// <see cref="AgentOptions.Directory"/> (bind <see cref="AgentOptions"/> from the <c>Agents</c> section, as
    /// <c>AddAgentHost</c> on a kernel builder does; a relative folder resolves against the host's content root, else
    /// the current directory, else the app's base directory). Agents run with the plugins of the container's
    /// <see cref="Kernel"/> (or of a kernel over the container: the plugins added to the kernel builder) and on chat clients
    /// of the catalog's models (<see cref="AgentHostOptions.DefaultModel"/> for an agent that names none), loaded once through
    /// the <see cref="ILlamaModelProvider"/> (added if missing) and disposed with the container.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configuration">
    /// The app's configuration, to bind <see cref="AgentOptions"/> from its <c>Agents</c> section (a generic-host app passes
    /// <c>builder.Configuration</c> after <c>AddAgentHost</c>); null when they are bound already.
    /// </param>
    /// <returns><paramref name="services"/>.</returns>
    /// <remarks>The agents folder is read when the runner is first resolved; a missing folder or a broken definition is an <see cref="AgentHostException"/> then.</remarks>
    public static IServiceCollection AddAgentRunner(this IServiceCollection services, IConfiguration? configuration = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddLlamaModelProvider();
        var options = services.AddOptions<AgentOptions>();
        if (configuration is not null)
            options.Bind(configuration.GetSection(AgentOptions.SectionName));
        services.TryAddSingleton(provider => new AgentChatClients(
            provider.GetRequiredService<ILlamaModelProvider>(),
            provider.GetRequiredService<IOptions<AgentHostOptions>>().Value,
            provider.GetService<ILoggerFactory>(),
            provider.GetService<IMeterFactory>()));
        services.TryAddSingleton(provider =>
        {
            var options = provider.GetRequiredService<IOptions<AgentOptions>>().Value;
            var catalog = AgentCatalog.Load(AgentsDirectory(options.Directory, provider.GetService<IConfiguration>()?[ContentRootKey]));
            var kernel = provider.GetService<Kernel>() ?? new Kernel(provider);
            return new AgentRunner(catalog, kernel, provider.GetRequiredService<AgentChatClients>().GetAsync) { MaxDepth = options.MaxDepth };
        });
        return services;
    }

    // The generic host's content root (HostDefaults.ContentRootKey), which it copies into the app's configuration.
    private const string ContentRootKey = "contentRoot";

    private static string AgentsDirectory(string directory, string? contentRoot)
    {
        if (string.IsNullOrWhiteSpace(directory))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"{AgentOptions.SectionName}:Directory is empty; set it to the folder of the agents' YAML files.");
        if (Path.IsPathRooted(directory))
            return directory;
        string?[] bases = [contentRoot, Environment.CurrentDirectory, AppContext.BaseDirectory];
        foreach (var root in bases)
        {
            if (!string.IsNullOrEmpty(root) && Directory.Exists(Path.GetFullPath(directory, root)))
                return Path.GetFullPath(directory, root);
        }
        return Path.GetFullPath(directory, contentRoot ?? Environment.CurrentDirectory);
    }

    /// <summary>The agents' chat clients, one per model, made on first use and disposed with the container.</summary>
    private sealed class AgentChatClients(ILlamaModelProvider models, AgentHostOptions hostOptions, ILoggerFactory? loggerFactory, IMeterFactory? meterFactory) : IDisposable
    {
        private readonly Dictionary<string, Task<IChatClient>> _clients = new(StringComparer.OrdinalIgnoreCase);
        private readonly Lock _gate = new();

        public Task<IChatClient> GetAsync(string? model, CancellationToken cancellationToken)
        {
            var name = string.IsNullOrWhiteSpace(model) ? hostOptions.DefaultModel : model;
            lock (_gate)
            {
                if (!_clients.TryGetValue(name, out var client) || client.IsFaulted || client.IsCanceled)
                {
                    // Not the caller's token: the client is shared, and one caller giving up must not fail the next.
                    _clients[name] = client = ModelChatClients.CreateAsync(models, hostOptions, name, null, loggerFactory, meterFactory, CancellationToken.None);
                }
                return client.WaitAsync(cancellationToken);
            }
        }

        public void Dispose()
        {
            lock (_gate)
            {
                foreach (var client in _clients.Values)
                {
                    if (client.IsCompletedSuccessfully)
                        client.Result.Dispose();
                }
                _clients.Clear();
            }
        }
    }
}
