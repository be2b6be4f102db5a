using System.Diagnostics.Metrics;
using AgentHost.Extensions.AI;
using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;
using AgentHost.SemanticKernel.Agents;
using AgentHost.SemanticKernel.Mcp;
using AgentHost.SemanticKernel.Plugins;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.SemanticKernel.ChatCompletion;

namespace Microsoft.SemanticKernel;

/// <summary>
/// Registers local models with Semantic Kernel the way SK's own connectors do (one line, in SK's namespace):
/// <c>Kernel.CreateBuilder().AddLlamaChatCompletion("stories260k").Build()</c>.
/// </summary>
public static class LlamaKernelBuilderExtensions
{
    /// <summary>
    /// Adds an <see cref="IChatClient"/> and an <see cref="IChatCompletionService"/> (both keyed by <paramref name="serviceId"/>)
    /// on the model <paramref name="modelNameOrPath"/> names: loaded once on first use through the <see cref="ILlamaModelProvider"/>
    /// (added if missing; the built-in catalog and <c>AGENTHOST_MODELS_DIR</c> work without configuration) and disposed with
    /// the kernel's service container. A remote catalog entry gets its endpoint's client instead (see <see cref="ModelChatClients"/>).
    /// </summary>
    /// <param name="builder">The kernel builder.</param>
    /// <param name="modelNameOrPath">A catalog name (any case, e.g. <c>stories260k</c>) or a path to a .gguf file.</param>
    /// <param name="serviceId">The service key; null registers the default service.</param>
    /// <param name="options">How the client serves the model; defaults when null.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static IKernelBuilder AddLlamaChatCompletion(this IKernelBuilder builder, string modelNameOrPath, string? serviceId = null, LlamaChatClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddLlamaChatCompletion(modelNameOrPath, serviceId, options);
        return builder;
    }

    /// <summary>The <see cref="IServiceCollection"/> form of <see cref="AddLlamaChatCompletion(IKernelBuilder, string, string?, LlamaChatClientOptions?)"/>.</summary>
    /// <param name="services">The services.</param>
    /// <param name="modelNameOrPath">A catalog name (any case) or a path to a .gguf file.</param>
    /// <param name="serviceId">The service key; null registers the default service.</param>
    /// <param name="options">How the client serves the model; defaults when null.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddLlamaChatCompletion(this IServiceCollection services, string modelNameOrPath, string? serviceId = null, LlamaChatClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelNameOrPath);
        services.AddLlamaModelProvider();
        AddKernelChatClient(services, provider => provider.CreateModelChatClient(modelNameOrPath, options), serviceId);
        return services.AddKeyedSingleton<IChatCompletionService>(serviceId,
            (provider, _) => provider.GetRequiredKeyedService<IChatClient>(serviceId).AsChatCompletionService(provider));
    }

    /// <summary>
    /// Adds a keyed <see cref="IChatClient"/> on <paramref name="model"/> (owned by the caller) to the kernel's services,
    /// built as <c>client.AsBuilder().UseLogging().UseKernelFunctionInvocation().Build(sp)</c>.
    /// </summary>
    /// <param name="builder">The kernel builder.</param>
    /// <param name="model">A loaded model; the caller disposes it after the kernel.</param>
    /// <param name="options">How the client serves the model; defaults when null.</param>
    /// <param name="serviceId">The service key; null registers the default client.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static IKernelBuilder AddLlamaChatClient(this IKernelBuilder builder, LlamaModel model, LlamaChatClientOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return builder.AddLlamaChatClient(_ => model, options, serviceId);
    }

    /// <summary>Adds a keyed <see cref="IChatClient"/> on the model <paramref name="modelFactory"/> returns (created on first use) to the kernel's services.</summary>
    /// <param name="builder">The kernel builder.</param>
    /// <param name="modelFactory">Returns the model; whoever owns it disposes it.</param>
    /// <param name="options">How the client serves the model; defaults when null.</param>
    /// <param name="serviceId">The service key; null registers the default client.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static IKernelBuilder AddLlamaChatClient(this IKernelBuilder builder, Func<IServiceProvider, LlamaModel> modelFactory, LlamaChatClientOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(modelFactory);
        AddKernelChatClient(builder.Services, provider => new LlamaChatClient(modelFactory(provider), options,
            provider.GetService<ILoggerFactory>()?.CreateLogger<LlamaChatClient>(), provider.GetService<IMeterFactory>()), serviceId);
        return builder;
    }

    /// <summary>
    /// Adds a keyed <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> (<see cref="string"/> to <see cref="Embedding{T}"/> of
    /// <see cref="float"/>, the embedding service Semantic Kernel's memory and vector store connectors take) on the model
    /// <paramref name="modelNameOrPath"/> names, loaded once on first use through the <see cref="ILlamaModelProvider"/>
    /// (shared with a chat completion service on the same model) and disposed with the kernel's service container.
    /// </summary>
    /// <param name="builder">The kernel builder.</param>
    /// <param name="modelNameOrPath">A catalog name (any case, e.g. <c>stories260k</c>) or a path to a .gguf file.</param>
    /// <param name="serviceId">The service key; null registers the default service.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static IKernelBuilder AddLlamaEmbeddingGenerator(this IKernelBuilder builder, string modelNameOrPath, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddLlamaEmbeddingGenerator(modelNameOrPath, serviceId);
        return builder;
    }

    /// <summary>
    /// What the CLI has, for an app's kernel: <see cref="AgentHostServiceCollectionExtensions.AddAgentHost"/> (the
    /// <c>AgentHost</c> section: catalog, models folder, cache, downloads, and the model provider) plus
    /// <see cref="PluginOptions"/>, <see cref="AgentOptions"/> and <see cref="McpOptions"/> bound from the <c>Plugins</c>,
    /// <c>Agents</c> and <c>Mcp</c> sections (connect the MCP servers with <see cref="McpPlugins.ConnectAsync"/>), and an
    /// <see cref="AgentRunner"/> for the agents of <c>Agents:Directory</c> (see <see cref="AgentServiceCollectionExtensions.AddAgentRunner"/>).
    /// </summary>
    /// <param name="builder">The kernel builder.</param>
    /// <param name="configuration">The app's configuration.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static IKernelBuilder AddAgentHost(this IKernelBuilder builder, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configuration);
        builder.Services.AddAgentHost(configuration);
        builder.Services.AddOptions<PluginOptions>().Bind(configuration.GetSection(PluginOptions.SectionName));
        builder.Services.AddOptions<AgentOptions>().Bind(configuration.GetSection(AgentOptions.SectionName));
        builder.Services.AddOptions<McpOptions>().Bind(configuration.GetSection(McpOptions.SectionName));
        builder.Services.AddAgentRunner();
        return builder;
    }

    // SK invokes kernel functions itself (filters, auto invocation), hence UseKernelFunctionInvocation rather than MEAI's.
    private static void AddKernelChatClient(IServiceCollection services, Func<IServiceProvider, IChatClient> create, string? serviceId)
        => services.AddKeyedSingleton<IChatClient>(serviceId, (provider, _) =>
        {
            var loggerFactory = provider.GetService<ILoggerFactory>();
            var builder = create(provider).AsBuilder();
            if (loggerFactory is not null)
                builder.UseLogging(loggerFactory);
            return builder.UseKernelFunctionInvocation(loggerFactory).Build(provider);
        });
}
