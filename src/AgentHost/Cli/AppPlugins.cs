using AgentHost.Plugins;
using AgentHost.SemanticKernel.Mcp;
using AgentHost.SemanticKernel.Plugins;
using Microsoft.Extensions.Hosting;
using Microsoft.SemanticKernel;

namespace AgentHost.Cli;

/// <summary>
/// The one place the app imports the plugins configured under <c>Plugins</c> into a kernel, and the tools of the
/// MCP servers under <c>Mcp:Servers</c> (connected once, at first use, and stopped with the app).
/// </summary>
internal sealed class AppPlugins(PluginOptions options, McpOptions mcpOptions, IHostEnvironment environment, ILoggerFactory loggerFactory) : IAsyncDisposable, IDisposable
{
    private readonly SemaphoreSlim _connecting = new(1, 1);
    private McpPlugins? _mcp;

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

    /// <summary>The configured plugins and then one plugin per MCP server of <c>Mcp:Servers</c>.</summary>
    public async Task<IReadOnlyList<KernelPlugin>> ImportAllAsync(Kernel kernel, CancellationToken cancellationToken)
    {
        var plugins = ImportInto(kernel);
        var mcp = await ConnectMcpAsync(cancellationToken);
        mcp.ImportInto(kernel);
        return [.. plugins, .. mcp.Plugins];
    }

    private async Task<McpPlugins> ConnectMcpAsync(CancellationToken cancellationToken)
    {
        await _connecting.WaitAsync(cancellationToken);
        try
        {
            return _mcp ??= await McpPlugins.ConnectAsync(mcpOptions, loggerFactory, cancellationToken);
        }
        finally
        {
            _connecting.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_mcp is { } mcp)
            await mcp.DisposeAsync();
        _mcp = null;
        _connecting.Dispose();
    }

    // The host disposes its singletons synchronously.
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
