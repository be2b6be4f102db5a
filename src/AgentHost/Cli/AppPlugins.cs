using AgentHost.Plugins;
using AgentHost.SemanticKernel.Plugins;
using Microsoft.Extensions.Hosting;
using Microsoft.SemanticKernel;

namespace AgentHost.Cli;

/// <summary>The one place the app imports the plugins configured under <c>Plugins</c> into a kernel.</summary>
internal sealed class AppPlugins(PluginOptions options, IHostEnvironment environment)
{
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
}
