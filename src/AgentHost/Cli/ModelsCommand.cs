using System.CommandLine;
using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;

namespace AgentHost.Cli;

/// <summary><c>models</c>: the catalog and where each model resolves now, or why it does not.</summary>
internal sealed class ModelsCommand(LlamaModelProvider models, AgentHostOptions options) : ICommand
{
    public string Name => "models";

    public string Summary => "List the model catalog and where each model resolves (or why not).";

    public IReadOnlyList<Symbol> Options { get; } = [SharedOptions.Json];

    public Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var locations = models.Resolver.DescribeAll();
        if (parse.GetValue(SharedOptions.Json))
        {
            Console.Out.WriteLine(JsonOutput.Serialize(locations.Select(l => new Dictionary<string, object?>
            {
                ["name"] = l.Name,
                ["default"] = IsDefault(l.Name),
                ["file"] = l.Settings.File,
                ["available"] = l.IsAvailable,
                ["path"] = l.Path,
                ["source"] = l.Source,
                ["status"] = l.Status,
                ["url"] = l.Settings.Url,
                ["context_size"] = l.Settings.ContextSize,
                ["size"] = l.Settings.Size > 0 ? l.Settings.Size : null,
                ["license"] = l.Settings.License,
                ["chat_format"] = l.Settings.ChatFormat,
            })));
            return Task.FromResult(CliApp.ExitOk);
        }

        if (locations.Count == 0)
        {
            Console.Out.WriteLine("The catalog (AgentHost:Models in appsettings.json) is empty.");
            return Task.FromResult(CliApp.ExitOk);
        }
        var table = CliConsole.Table("name", "file", "where");
        foreach (var location in locations)
        {
            var name = IsDefault(location.Name) ? location.Name + " *" : location.Name;
            var where = location.Path is null ? location.Status : $"{location.Status}: {location.Path}";
            table.Row(name, location.Settings.File, where);
        }
        CliConsole.WriteOut(table);
        Console.Out.WriteLine();
        Console.Out.WriteLine("* default model");
        return Task.FromResult(CliApp.ExitOk);
    }

    private bool IsDefault(string name) => string.Equals(name, options.DefaultModel, StringComparison.OrdinalIgnoreCase);
}
