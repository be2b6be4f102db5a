using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;
using AgentHost.Telemetry;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using AgentHost.SemanticKernel.Agents;
using ModelContextProtocol.Server;

namespace AgentHost.Server;

/// <summary>Builds the OpenAI-compatible server (Kestrel on the generic host) over a model catalog.</summary>
internal static class AgentHostServer
{
    /// <summary>The path of the MCP endpoint (streamable HTTP).</summary>
    public const string McpPath = "/mcp";

    /// <summary>
    /// Builds the server; every server option is checked first (an <see cref="Llama.AgentHostException"/> naming the key).
    /// With <paramref name="mcpTools"/> (given the server's services, at the first MCP request) it also serves MCP tools at <see cref="McpPath"/>.
    /// <paramref name="telemetry"/> configures OTLP export (none when null). With <paramref name="agents"/> (created once, at the
    /// first use) it serves them at <c>/v1/agents</c> for the web page.
    /// </summary>
    public static WebApplication Build(AgentHostOptions options, ServerOptions serverOptions, Action<ILoggingBuilder>? configureLogging = null, Func<IServiceProvider, McpServerOptions>? mcpTools = null, TelemetryOptions? telemetry = null,
        Func<IServiceProvider, AgentRunner>? agents = null)
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

        if (agents is not null)
            builder.Services.AddSingleton(agents);
        if (mcpTools is not null)
        {
            // Stateless: every request stands alone (no server-held session), as the OpenAI endpoints do.
            builder.Services.AddMcpServer().WithHttpTransport(http => http.Stateless = true);
            builder.Services.AddOptions<McpServerOptions>().Configure<IServiceProvider>((mcp, services) =>
            {
                var described = mcpTools(services);
                mcp.ServerInfo = described.ServerInfo;
                mcp.ToolCollection = described.ToolCollection;
                // The filters that turn an unbindable tools/call into an isError result (McpServerTools.CreateOptions).
                foreach (var filter in described.Filters.Message.IncomingFilters)
                    mcp.Filters.Message.IncomingFilters.Add(filter);
                foreach (var filter in described.Filters.Request.CallToolFilters)
                    mcp.Filters.Request.CallToolFilters.Add(filter);
            });
        }

        var app = builder.Build();
        _ = app.Services.GetRequiredService<ModelHost>();   // the served names are checked now (Server:Models), not at the first request
        // A broken plugin or agent definition is refused now, not at the first MCP request.
        if (mcpTools is not null)
            _ = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<McpServerOptions>>().Value;
        OpenAiApi.Map(app, serverOptions);
        // Behind the same host, key and JSON checks as the OpenAI endpoints (OpenAiApi's middleware runs first).
        if (mcpTools is not null || agents is not null)
            AdmitAgentCalls(app, serverOptions.MaxQueue);
        if (mcpTools is not null)
            app.MapMcp(McpPath);
        return app;
    }

    // MCP calls and agent runs (/v1/agents/run) run agents and prompt plugins on the served models: at most MaxQueue at
    // once together, as each OpenAI endpoint's model admits, so a client cannot pile up waiting generations; more get 429.
    private static void AdmitAgentCalls(WebApplication app, int limit)
    {
        var running = new SemaphoreSlim(limit);
        app.UseWhen(context => context.Request.Path.StartsWithSegments(McpPath) || context.Request.Path.StartsWithSegments("/v1/agents/run"), branch => branch.Use(async (context, next) =>
        {
            if (!running.Wait(0))
            {
                context.Response.Headers.RetryAfter = "1";
                await new ApiError(StatusCodes.Status429TooManyRequests, $"{limit} MCP requests and agent runs are running (Server:MaxQueue); retry shortly.", "rate_limit_error", "queue_full").WriteAsync(context.Response);
                return;
            }
            try
            {
                await next(context);
            }
            catch (Exception e) when (!context.Response.HasStarted && (e is OverflowException || e.InnerException is OverflowException))
            {
                // Kestrel's chunked-body parser: a chunk size beyond an int is an IOException around an OverflowException.
                await ApiError.BadRequest("The request could not be read: a chunk size of the chunked body is out of range.").WriteAsync(context.Response);
            }
            finally
            {
                running.Release();
            }
        }));
    }

    /// <summary>The addresses Kestrel bound (port 0 resolved).</summary>
    public static IReadOnlyList<string> Addresses(WebApplication app)
        => app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];
}
