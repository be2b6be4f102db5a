using AgentHost.Llama;
using AgentHost.Plugins;
using AgentHost.SemanticKernel.Mcp;
using AgentHost.SemanticKernel.Plugins;
using Microsoft.Extensions.Hosting;
using Microsoft.SemanticKernel;

namespace AgentHost.Cli;

/// <summary>
/// The one place the app imports the plugins configured under <c>Plugins</c> into a kernel, and the tools of the
/// MCP servers under <c>Mcp:Servers</c>: only the servers a caller asks for (a verb asks once), stopped with the app.
/// </summary>
internal sealed class AppPlugins(PluginOptions options, McpOptions mcpOptions, IHostEnvironment environment, ILoggerFactory loggerFactory) : IAsyncDisposable, IDisposable
{
    private readonly List<McpPlugins> _connections = [];

    /// <summary>
    /// Imports the configured native and prompt plugins. Relative folders resolve against the content
    /// root: the folder of appsettings.json, where the build also puts plugins/prompts.
    /// </summary>
    public IReadOnlyList<KernelPlugin> ImportInto(Kernel kernel)
    {
        var baseDirectory = environment.ContentRootPath;
        var filesRoot = options.ResolveFilesRoot(baseDirectory);
        return kernel.ImportPlugins(options, baseDirectory, NativePlugins.Create(TimeProvider.System, filesRoot));
    }

    /// <summary>
    /// The configured plugins and then one plugin per MCP server among <paramref name="plugins"/> (plugin names;
    /// null: every server of <c>Mcp:Servers</c>). A server that fails is an <see cref="AgentHostException"/>.
    /// </summary>
    public async Task<IReadOnlyList<KernelPlugin>> ImportAsync(Kernel kernel, IEnumerable<string>? plugins, CancellationToken cancellationToken)
    {
        var loaded = ImportInto(kernel);
        var mcp = await ConnectAsync(plugins is null ? mcpOptions : mcpOptions.Only(plugins), keepGoing: false, cancellationToken);
        mcp.ImportInto(kernel);
        return [.. loaded, .. mcp.Plugins];
    }

    /// <summary>
    /// The configured plugins and every MCP server that connects; the servers that do not are returned as
    /// failures rather than thrown, so a listing shows what works.
    /// </summary>
    public async Task<(IReadOnlyList<KernelPlugin> Plugins, IReadOnlyList<AgentHostException> Failures)> ImportAvailableAsync(Kernel kernel, CancellationToken cancellationToken)
    {
        var loaded = ImportInto(kernel);
        var mcp = await ConnectAsync(mcpOptions, keepGoing: true, cancellationToken);
        mcp.ImportInto(kernel);
        return ([.. loaded, .. mcp.Plugins], mcp.Failures);
    }

    private async Task<McpPlugins> ConnectAsync(McpOptions servers, bool keepGoing, CancellationToken cancellationToken)
    {
        var mcp = keepGoing
            ? await McpPlugins.ConnectAvailableAsync(servers, loggerFactory, cancellationToken)
            : await McpPlugins.ConnectAsync(servers, loggerFactory, cancellationToken);
        lock (_connections)
            _connections.Add(mcp);
        return mcp;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var mcp in _connections)
            await mcp.DisposeAsync();
        _connections.Clear();
    }

    // The host disposes its singletons synchronously.
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
