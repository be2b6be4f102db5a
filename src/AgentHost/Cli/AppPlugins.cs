using AgentHost.Llama;
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
        string? filesRoot = null;
        if (!string.IsNullOrWhiteSpace(options.FilesRoot))
        {
            filesRoot = Path.GetFullPath(options.FilesRoot, baseDirectory);
            if (!Directory.Exists(filesRoot))
                throw new AgentHostException(ErrorKind.InvalidPlugin, $"{PluginOptions.SectionName}:FilesRoot '{filesRoot}' does not exist.");
        }
        else if (options.Native.Contains("Files", StringComparer.OrdinalIgnoreCase))
        {
            throw new AgentHostException(ErrorKind.InvalidPlugin, $"{PluginOptions.SectionName}:Native lists Files but {PluginOptions.SectionName}:FilesRoot is empty; set it to the folder the Files plugin may read.");
        }
        return kernel.ImportPlugins(options, baseDirectory, NativePlugins.Create(TimeProvider.System, filesRoot));
    }
}
