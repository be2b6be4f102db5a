using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;
using AgentHost.Telemetry;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace AgentHost.Server;

/// <summary>Builds the OpenAI-compatible server (Kestrel on the generic host) over a model catalog.</summary>
internal static class AgentHostServer
{
    /// <summary>Builds the server; every server option is checked first (an <see cref="Llama.AgentHostException"/> naming the key).</summary>
    public static WebApplication Build(AgentHostOptions options, ServerOptions serverOptions, Action<ILoggingBuilder>? configureLogging = null, TelemetryOptions? telemetry = null)
    {
        serverOptions.Validate();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory, EnvironmentName = Environments.Production });
        builder.WebHost.UseUrls(serverOptions.Urls);
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = serverOptions.MaxBodyBytes);
        // A stop (SIGTERM, Ctrl+C) stops accepting, then waits this long for in-flight requests before closing them.
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(serverOptions.ShutdownTimeoutSeconds));
        builder.Logging.ClearProviders();
        configureLogging?.Invoke(builder.Logging);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(Microsoft.Extensions.Options.Options.Create(options));
        builder.Services.AddSingleton(serverOptions);
        // Models load through the libraries' provider; download progress goes to the log, never to a console bar.
        builder.Services.AddLlamaModelProvider();
        builder.Services.AddSingleton(services => ((LlamaModelProvider)services.GetRequiredService<ILlamaModelProvider>()).Resolver);
        builder.Services.AddSingleton<ModelHost>();
        builder.Services.AddSingleton<ServerMetrics>();
        // /metrics is OpenTelemetry's Prometheus exporter over this container's meters; OTLP export when configured.
        builder.Services.AddAgentHostTelemetry(telemetry ?? new TelemetryOptions(), prometheus: true);

        var app = builder.Build();
        _ = app.Services.GetRequiredService<ModelHost>();   // the served names are checked now (Server:Models), not at the first request
        OpenAiApi.Map(app, serverOptions);
        return app;
    }

    /// <summary>The addresses Kestrel bound (port 0 resolved).</summary>
    public static IReadOnlyList<string> Addresses(WebApplication app)
        => app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];
}
