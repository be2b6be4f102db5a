using System.Diagnostics.Metrics;
using AgentHost.Extensions.AI;
using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Registers <see cref="LlamaChatClient"/> as a Microsoft.Extensions.AI <see cref="IChatClient"/> and
/// <see cref="LlamaEmbeddingGenerator"/> as an <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>.
/// </summary>
public static class LlamaServiceCollectionExtensions
{
    /// <summary>
    /// Adds a keyed singleton <see cref="IChatClient"/> on the model <paramref name="modelNameOrPath"/> names (a catalog
    /// name such as <c>stories260k</c>, or a path to a .gguf file), loaded once on first use through the
    /// <see cref="ILlamaModelProvider"/> (added if missing) and disposed with the container; a remote catalog entry gets
    /// a <see cref="AgentHost.Extensions.AI.Remote.RemoteChatClient"/> on its endpoint instead (see <see cref="ModelChatClients"/>).
    /// Built as <c>client.AsBuilder().UseLogging().UseFunctionInvocation().Build(sp)</c>.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="modelNameOrPath">A catalog name (any case) or a path to a .gguf file.</param>
    /// <param name="options">How the client serves the model; defaults when null.</param>
    /// <param name="serviceId">The service key; null registers the default client.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddLlamaChatClient(this IServiceCollection services, string modelNameOrPath, LlamaChatClientOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelNameOrPath);
        services.AddLlamaModelProvider();
        return services.AddChatClientPipeline(provider => provider.CreateModelChatClient(modelNameOrPath, options), serviceId);
    }

    /// <summary>
    /// Adds a keyed singleton <see cref="IChatClient"/> on <paramref name="model"/> (owned by the caller),
    /// built as <c>client.AsBuilder().UseLogging().UseFunctionInvocation().Build(sp)</c>.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="model">A loaded model; the caller disposes it after the container.</param>
    /// <param name="options">How the client serves the model; defaults when null.</param>
    /// <param name="serviceId">The service key; null registers the default client.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddLlamaChatClient(this IServiceCollection services, LlamaModel model, LlamaChatClientOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return services.AddLlamaChatClient(_ => model, options, serviceId);
    }

    /// <summary>Adds a keyed singleton <see cref="IChatClient"/> on the model <paramref name="modelFactory"/> returns (created on first use).</summary>
    /// <param name="services">The services.</param>
    /// <param name="modelFactory">Returns the model; whoever owns it disposes it.</param>
    /// <param name="options">How the client serves the model; defaults when null.</param>
    /// <param name="serviceId">The service key; null registers the default client.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddLlamaChatClient(this IServiceCollection services, Func<IServiceProvider, LlamaModel> modelFactory, LlamaChatClientOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(modelFactory);
        return services.AddChatClientPipeline(provider => new LlamaChatClient(modelFactory(provider), options,
            provider.GetService<ILoggerFactory>()?.CreateLogger<LlamaChatClient>(), provider.GetService<IMeterFactory>()), serviceId);
    }

    /// <summary>
    /// Adds a keyed singleton <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> of <see cref="string"/> to
    /// <see cref="Embedding{T}"/> of <see cref="float"/> on the model <paramref name="modelNameOrPath"/> names (a catalog name such
    /// as <c>stories260k</c>, or a path to a .gguf file), loaded once on first use through the <see cref="ILlamaModelProvider"/>
    /// (added if missing; it shares the model with a chat client on the same name) and disposed with the container.
    /// Built as <c>generator.AsBuilder().UseLogging().Build(sp)</c>; see <see cref="LlamaEmbeddingGenerator"/> for what an embedding is.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="modelNameOrPath">A catalog name (any case) or a path to a .gguf file.</param>
    /// <param name="serviceId">The service key; null registers the default generator.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddLlamaEmbeddingGenerator(this IServiceCollection services, string modelNameOrPath, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelNameOrPath);
        services.AddLlamaModelProvider();
        return services.AddLlamaEmbeddingGenerator(provider => provider.GetLlamaModel(modelNameOrPath), serviceId);
    }

    /// <summary>
    /// Adds a keyed singleton <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> on the model <paramref name="modelFactory"/>
    /// returns (created on first use), built as <c>generator.AsBuilder().UseLogging().Build(sp)</c>.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="modelFactory">Returns the model; whoever owns it disposes it.</param>
    /// <param name="serviceId">The service key; null registers the default generator.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddLlamaEmbeddingGenerator(this IServiceCollection services, Func<IServiceProvider, LlamaModel> modelFactory, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(modelFactory);
        return services.AddKeyedSingleton<IEmbeddingGenerator<string, Embedding<float>>>(serviceId, (provider, _) =>
        {
            var loggerFactory = provider.GetService<ILoggerFactory>();
            var builder = new LlamaEmbeddingGenerator(modelFactory(provider), provider.GetService<IMeterFactory>()).AsBuilder();
            if (loggerFactory is not null)
                builder.UseLogging(loggerFactory);
            return builder.Build(provider);
        });
    }

    /// <summary>
    /// The chat client of <paramref name="modelNameOrPath"/> from the container's model provider and catalog (see
    /// <see cref="ModelChatClients"/>; for service factories, which are synchronous). The caller owns the client.
    /// </summary>
    /// <param name="provider">The container.</param>
    /// <param name="modelNameOrPath">A catalog name or a path to a .gguf file.</param>
    /// <param name="options">How a local model is served; defaults when null.</param>
    /// <returns>A <see cref="LlamaChatClient"/>, or a remote entry's <see cref="AgentHost.Extensions.AI.Remote.RemoteChatClient"/>.</returns>
    public static IChatClient CreateModelChatClient(this IServiceProvider provider, string modelNameOrPath, LlamaChatClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(provider);
        // The provider loads on the thread pool and never captures a context, so this wait cannot deadlock.
        return ModelChatClients.CreateAsync(provider.GetRequiredService<ILlamaModelProvider>(), provider.GetRequiredService<IOptions<AgentHostOptions>>().Value,
            modelNameOrPath, options, provider.GetService<ILoggerFactory>(), provider.GetService<IMeterFactory>()).GetAwaiter().GetResult();
    }

    // MEAI's function invocation over the model's client (local or remote), as MEAI's own provider registrations build it.
    private static IServiceCollection AddChatClientPipeline(this IServiceCollection services, Func<IServiceProvider, IChatClient> create, string? serviceId)
        => services.AddKeyedSingleton<IChatClient>(serviceId, (provider, _) =>
        {
            var loggerFactory = provider.GetService<ILoggerFactory>();
            var builder = create(provider).AsBuilder();
            if (loggerFactory is not null)
                builder.UseLogging(loggerFactory);
            return builder.UseFunctionInvocation(loggerFactory).Build(provider);
        });

    /// <summary>
    /// The model <paramref name="modelNameOrPath"/> names, from the container's <see cref="ILlamaModelProvider"/>
    /// (loaded on the first call; for service factories, which are synchronous).
    /// </summary>
    /// <param name="provider">The container.</param>
    /// <param name="modelNameOrPath">A catalog name or a path to a .gguf file.</param>
    /// <returns>The shared model; the provider disposes it.</returns>
    public static LlamaModel GetLlamaModel(this IServiceProvider provider, string modelNameOrPath)
    {
        ArgumentNullException.ThrowIfNull(provider);
        // The provider loads on the thread pool and never captures a context, so this wait cannot deadlock.
        return provider.GetRequiredService<ILlamaModelProvider>().GetModelAsync(modelNameOrPath).GetAwaiter().GetResult();
    }
}
