using System.CommandLine;
using Microsoft.SemanticKernel;

namespace AgentHost.Cli;

/// <summary>
/// <c>plugins</c>: loads the plugins configured under <c>Plugins</c> and the MCP servers of <c>Mcp:Servers</c> exactly
/// as a kernel would and lists their functions, so a broken plugin folder shows up as one clear error. Servers are
/// independent processes: the listing shows every one that connected, and each that did not is one <c>error:</c>
/// line on stderr and exit code 1.
/// </summary>
internal sealed class PluginsCommand(AppPlugins appPlugins) : ICommand
{
    public string Name => "plugins";

    public string Summary => "Load the configured plugins (Plugins and Mcp:Servers in appsettings.json) and list their functions.";

    public IReadOnlyList<Symbol> Options { get; } = [SharedOptions.Json];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var (plugins, failures) = await appPlugins.ImportAvailableAsync(new Kernel(), cancellationToken);
        foreach (var failure in failures)
            Console.Error.WriteLine($"error: {failure.Message}");
        var exit = failures.Count == 0 ? CliApp.ExitOk : CliApp.ExitError;
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
            return exit;
        }

        if (plugins.Count == 0 && failures.Count == 0)
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
        return exit;
    }
}
