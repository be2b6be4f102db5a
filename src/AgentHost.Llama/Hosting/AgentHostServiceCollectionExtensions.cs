using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers AgentHost's model catalog and model provider in a service container.</summary>
public static class AgentHostServiceCollectionExtensions
{
    /// <summary>
    /// Binds <see cref="AgentHostOptions"/> from the <c>AgentHost</c> section of <paramref name="configuration"/>
    /// (catalog, models folder, user cache, downloads; the built-in entries fill in names it does not configure)
    /// and adds the <see cref="ILlamaModelProvider"/>.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configuration">The app's configuration, or its <c>AgentHost</c> section itself.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddAgentHost(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration is IConfigurationSection { Key: AgentHostOptions.SectionName } own
            ? own
            : configuration.GetSection(AgentHostOptions.SectionName);
        services.AddOptions<AgentHostOptions>().Bind(section);
        return services.AddLlamaModelProvider();
    }

    /// <summary>
    /// Adds the <see cref="ILlamaModelProvider"/> (once; later calls do nothing) on the <see cref="AgentHostOptions"/>
    /// the container has, the built-in catalog entries included. Relative paths resolve against the current directory,
    /// then the host's content root (when an <see cref="IHostEnvironment"/> is registered), then the app's base folder.
    /// Download progress goes to a registered <see cref="IProgress{T}"/> of <see cref="DownloadProgress"/>, and to the log.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddLlamaModelProvider(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<AgentHostOptions>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<AgentHostOptions>, BuiltInModels.FillIn>());
        services.TryAddSingleton<ILlamaModelProvider>(provider => new LlamaModelProvider(
            provider.GetRequiredService<IOptions<AgentHostOptions>>().Value,
            provider.GetService<ILoggerFactory>(),
            provider.GetService<IProgress<DownloadProgress>>(),
            BaseDirectories(provider.GetService<IHostEnvironment>())));
        return services;
    }

    private static string[] BaseDirectories(IHostEnvironment? environment)
        => environment?.ContentRootPath is { Length: > 0 } contentRoot && contentRoot != AppContext.BaseDirectory
            ? [contentRoot, AppContext.BaseDirectory]
            : [AppContext.BaseDirectory];
}
