using AgentHost.Llama.Models;
using AgentHost.SemanticKernel.ChatClient;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.SemanticKernel;

namespace AgentHost.SemanticKernel;

/// <summary>Registers <see cref="LlamaChatClient"/> the way SK's own connectors register theirs.</summary>
public static class LlamaServiceCollectionExtensions
{
    /// <summary>
    /// Adds a keyed singleton <see cref="IChatClient"/> on <paramref name="model"/> (owned by the caller),
    /// built as <c>client.AsBuilder().UseLogging().UseKernelFunctionInvocation().Build(sp)</c>.
    /// </summary>
    public static IServiceCollection AddLlamaChatClient(this IServiceCollection services, LlamaModel model, LlamaChatClientOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return services.AddLlamaChatClient(_ => model, options, serviceId);
    }

    /// <summary>Adds a keyed singleton <see cref="IChatClient"/> on the model <paramref name="modelFactory"/> returns (created on first use).</summary>
    public static IServiceCollection AddLlamaChatClient(this IServiceCollection services, Func<IServiceProvider, LlamaModel> modelFactory, LlamaChatClientOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(modelFactory);
        return services.AddKeyedSingleton<IChatClient>(serviceId, (provider, _) =>
        {
            var loggerFactory = provider.GetService<ILoggerFactory>();
            var builder = new LlamaChatClient(modelFactory(provider), options).AsBuilder();
            if (loggerFactory is not null)
                builder.UseLogging(loggerFactory);
            return builder.UseKernelFunctionInvocation(loggerFactory).Build(provider);
        });
    }

    /// <summary>Adds a <see cref="LlamaChatClient"/> on <paramref name="model"/> to the kernel's services.</summary>
    public static IKernelBuilder AddLlamaChatClient(this IKernelBuilder builder, LlamaModel model, LlamaChatClientOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddLlamaChatClient(model, options, serviceId);
        return builder;
    }

    /// <summary>Adds a <see cref="LlamaChatClient"/> on the model <paramref name="modelFactory"/> returns to the kernel's services.</summary>
    public static IKernelBuilder AddLlamaChatClient(this IKernelBuilder builder, Func<IServiceProvider, LlamaModel> modelFactory, LlamaChatClientOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddLlamaChatClient(modelFactory, options, serviceId);
        return builder;
    }
}
