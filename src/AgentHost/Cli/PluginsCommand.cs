using System.CommandLine;
using Microsoft.SemanticKernel;

namespace AgentHost.Cli;

/// <summary>
/// <c>plugins</c>: loads the plugins configured under <c>Plugins</c> and the MCP servers of <c>Mcp:Servers</c> exactly
/// as a kernel would and lists their functions, so a broken plugin folder or server shows up as one clear error.
/// </summary>
internal sealed class PluginsCommand(AppPlugins appPlugins) : ICommand
{
    public string Name => "plugins";

    public string Summary => "Load the configured plugins (Plugins and Mcp:Servers in appsettings.json) and list their functions.";

    public IReadOnlyList<Symbol> Options { get; } = [SharedOptions.Json];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var plugins = await appPlugins.ImportAllAsync(new Kernel(), cancellationToken);
        if (parse.GetValue(SharedOptions.Json))
        {
            Console.Out.WriteLine(JsonOutput.Serialize(plugins.Select(p => new Dictionary<string, object?>
            {
                ["name"] = p.Name,
                ["functions"] = p.Select(f => new Dictionary<string, object?>
                {
                    ["name"] = f.Name,
                    ["description"] = f.Description,
                    ["parameters"] = f.Metadata.Parameters.Select(a => a.Name).ToList(),
                }).ToList(),
            })));
            return CliApp.ExitOk;
        }

        if (plugins.Count == 0)
            Console.Out.WriteLine("No plugins are configured (Plugins:Native and Plugins:PromptDirectories in appsettings.json).");
        foreach (var plugin in plugins)
        {
            Console.Out.WriteLine(plugin.Name);
            foreach (var function in plugin.OrderBy(f => f.Name, StringComparer.Ordinal))
            {
                var parameters = string.Join(", ", function.Metadata.Parameters.Select(a => a.Name));
                Console.Out.WriteLine($"  {function.Name}({parameters})  {function.Description}");
            }
        }
        return CliApp.ExitOk;
    }
}
