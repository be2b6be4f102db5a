using AgentHost.Plugins;
using AgentHost.SemanticKernel.Plugins;
using Microsoft.SemanticKernel;
// Wrapper "kernel-plugins": a kernel, the bound AgentHost:Plugins options and the folder their paths are relative to.
internal static class __NAME__
{
    public static async Task RunAsync(Kernel kernel, PluginOptions pluginOptions, string contentRoot)
    {
/*SNIPPET*/
    }
}
