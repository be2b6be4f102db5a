using System.CommandLine;
using AgentHost.Llama;
using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;
using AgentHost.SemanticKernel.Agents;
using AgentHost.SemanticKernel.Mcp;
using AgentHost.Server;
using ModelContextProtocol.Server;
using AgentHost.Telemetry;
using Microsoft.Extensions.Configuration;

namespace AgentHost.Cli;

/// <summary><c>serve</c>: the OpenAI-compatible HTTP API over the model catalog, until Ctrl+C or SIGTERM (in-flight requests drain within Server:ShutdownTimeoutSeconds).</summary>
internal sealed class ServeCommand(AgentHostOptions options, IConfiguration configuration, LlamaModelProvider models, AppPlugins plugins, AppAgents agents) : ICommand
{
    public string Name => "serve";

    public string Summary => "Serve the catalog's models over an OpenAI-compatible HTTP API (chat, completions, models, metrics) and the plugins and agents over MCP (/mcp).";

    // An option not given keeps the configured value (Server:*), whose own default help shows.
    private static readonly ServerOptions _defaults = new();
    private static readonly Option<string?> _urls = CliOption.Text("--urls", $"Listen address(es), ';'-separated (default Server:Urls, {_defaults.Urls}).", "URLS");
    private static readonly Option<string?> _apiKey = CliOption.Text("--api-key", "Require 'Authorization: Bearer KEY' (prefer Server:ApiKey / AGENTHOST_Server__ApiKey: flags show in process lists).", "KEY");
    private static readonly Option<int?> _maxQueue = CliOption.OptionalInt("--max-queue", $"Requests per model that may queue before 429 (default Server:MaxQueue, {_defaults.MaxQueue}).", "N", min: 1);
    private static readonly Option<string?> _models = CliOption.Text("--models", "Catalog names to serve, ';'-separated (default Server:Models; empty: the default model and every model already on this machine).", "NAMES");
    private static readonly Option<bool> _batching = CliOption.Flag("--batching", "Continuous batching: requests of every strategy decode in one shared batch (Server:Batching; more throughput with many clients).");

    public IReadOnlyList<Symbol> Options { get; } = [_urls, _apiKey, _models, _maxQueue, _batching];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var serverOptions = ConfigurationBinding.Bind<ServerOptions>(configuration, ServerOptions.SectionName);
        serverOptions.Urls = parse.GetValue(_urls) ?? serverOptions.Urls;
        serverOptions.ApiKey = parse.GetValue(_apiKey) ?? serverOptions.ApiKey;
        serverOptions.MaxQueue = parse.GetValue(_maxQueue) ?? serverOptions.MaxQueue;
        serverOptions.Batching |= parse.GetValue(_batching);
        serverOptions.Models = parse.GetValue(_models) ?? serverOptions.Models;

        // Requests never download or build a model, so a served model that is missing is fetched now, by the operator's
        // command; and models load at their first request, so a setting or file that cannot load is refused now, not then.
        foreach (var name in ModelHost.ServedNames(options, serverOptions, models.Resolver))
        {
            var model = models.Resolver.Describe(name);
            if (model.Settings.Remote is not null)
                continue;   // forwarded to its endpoint: nothing to fetch or load here
            var path = model.Path ?? (await models.Resolver.ResolveAsync(name, new ConsoleProgressBar(), cancellationToken)).Path;
            LlamaModel.Check(model.Name, path, model.Settings);
        }

        await using var app = AgentHostServer.Build(options, serverOptions, logging => logging.AddSimpleConsole(o => o.SingleLine = true)
            .AddFilter("Microsoft.AspNetCore", LogLevel.Warning), McpTools, ConfigurationBinding.Bind<TelemetryOptions>(configuration, TelemetryOptions.SectionName), Agents);
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            // Address in use, no permission, no such interface: the environment, not the command line (exit 1).
            Console.Error.WriteLine($"error: cannot listen on {serverOptions.Urls}: {ex.Message}");
            return CliApp.ExitError;
        }
        Console.Error.WriteLine($"serving {string.Join(", ", app.Services.GetRequiredService<ModelHost>().Names)} on {string.Join(", ", AgentHostServer.Addresses(app))}{(serverOptions.ApiKey is { Length: > 0 } ? " (API key required)" : "")}; Ctrl+C or SIGTERM stops");

        // The host's lifetime turns SIGTERM (and SIGINT, SIGQUIT) into ApplicationStopping; Ctrl+C also cancels the CLI's token.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, app.Lifetime.ApplicationStopping);
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token);
        }
        catch (OperationCanceledException)
        {
        }
        Console.Error.WriteLine($"stopping: draining in-flight requests (up to {serverOptions.ShutdownTimeoutSeconds} s)...");
        using var drain = new CancellationTokenSource(TimeSpan.FromSeconds(serverOptions.ShutdownTimeoutSeconds));
        try
        {
            await app.StopAsync(drain.Token);
        }
        catch (OperationCanceledException)
        {
            // The drain time ran out: Kestrel has closed what was still open.
        }
        Console.Error.WriteLine("stopped.");
        return CliApp.ExitOk;
    }

    /// <summary>
    /// The plugins and agents served at /mcp: agents and prompt plugins run on the server's own models (loaded once,
    /// shared with the OpenAI endpoints). As with <c>mcp</c>, the tools of Mcp:Servers are not served again.
    /// </summary>
    private McpServerOptions McpTools(IServiceProvider services)
    {
        var runner = services.GetRequiredService<AgentRunner>();
        return McpServerTools.CreateOptions(runner.Kernel, runner);
    }

    /// <summary>The one runner of the served agents (at /mcp and /v1/agents), with the configured plugins.</summary>
    private AgentRunner Agents(IServiceProvider services)
    {
        var host = services.GetRequiredService<ModelHost>();
        var runner = agents.CreateRunner(async (model, cancellationToken) => (await host.GetAsync(model ?? options.DefaultModel, cancellationToken)).Chat, options.DefaultModel);
        plugins.ImportInto(runner.Kernel);
        return runner;
    }
}
