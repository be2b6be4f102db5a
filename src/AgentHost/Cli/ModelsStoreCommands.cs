using System.CommandLine;
using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;

namespace AgentHost.Cli;

/// <summary><c>models pull NAME|URL</c>: makes a model local (downloading it with progress) and prints its path and SHA-256.</summary>
internal sealed class ModelsPullCommand(LlamaModelProvider models) : ICommand
{
    private static readonly Argument<string?> _model = new("name") { Description = "A catalog name, a Hugging Face reference (hf:OWNER/REPO/FILE.gguf, hf:OWNER/REPO:QUANT) or an http(s) URL of a .gguf file.", HelpName = "NAME|URL", Arity = ArgumentArity.ZeroOrOne };

    public string Name => "models pull";

    public string Summary => "Download a catalog model, an hf: reference or a .gguf URL into the user cache; print its path and SHA-256.";

    public IReadOnlyList<Symbol> Options { get; } = [_model];

    public async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var name = parse.Require(_model);
        var progress = new ConsoleProgressBar("downloading");
        (ResolvedModel Model, string Sha256) pulled;
        try
        {
            pulled = await models.Resolver.PullAsync(name, progress, cancellationToken);
        }
        finally
        {
            progress.Finish();
        }
        Console.Out.WriteLine($"path: {pulled.Model.Path}");
        Console.Out.WriteLine($"sha256: {pulled.Sha256}");
        return CliApp.ExitOk;
    }
}

/// <summary><c>models list</c>: the model files on this machine, with size and how their content is vouched for.</summary>
internal sealed class ModelsListCommand(LlamaModelProvider provider) : ICommand
{
    public string Name => "models list";

    public string Summary => "List the local model files (models folder and user cache): name, size, digest status.";

    public IReadOnlyList<Symbol> Options { get; } = [SharedOptions.Json];

    public Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var models = provider.Resolver.ListLocal();
        if (parse.GetValue(SharedOptions.Json))
        {
            Console.Out.WriteLine(JsonOutput.Serialize(models.Select(m => new Dictionary<string, object?>
            {
                ["name"] = m.Name,
                ["path"] = m.Path,
                ["size"] = m.Size,
                ["where"] = Where(m.Source),
                ["digest"] = Status(m.Digest),
            })));
            return Task.FromResult(CliApp.ExitOk);
        }
        if (models.Count == 0)
        {
            Console.Out.WriteLine($"No model files in the models folder or the user cache '{provider.Resolver.CacheDirectory}'.");
            return Task.FromResult(CliApp.ExitOk);
        }
        var table = CliConsole.Table("name", ">size", "digest", "path");
        foreach (var model in models)
            table.Row(model.Name, model.Size.ToString(System.Globalization.CultureInfo.InvariantCulture), Status(model.Digest), model.Path);
        CliConsole.WriteOut(table);
        return Task.FromResult(CliApp.ExitOk);
    }

    private static string Where(ModelSource source) => source == ModelSource.ModelsDir ? "models folder" : "user cache";

    /// <summary>The digest status as <c>models list</c> and <c>models show --json</c> name it.</summary>
    internal static string Status(LocalDigest digest) => digest switch
    {
        LocalDigest.Verified => "verified",
        LocalDigest.RecordedOnFirstUse => "recorded-on-first-use",
        _ => "unverified",
    };
}

/// <summary><c>models rm NAME</c>: removes a model from the user cache with its digest record and any partial download.</summary>
internal sealed class ModelsRemoveCommand(LlamaModelProvider models) : ICommand
{
    private static readonly Argument<string?> _model = new("name") { Description = "A catalog name, a Hugging Face reference or the file name of a model in the user cache.", HelpName = "NAME", Arity = ArgumentArity.ZeroOrOne };

    public string Name => "models rm";

    public string Summary => "Remove a model from the user cache (with its recorded digest and partial download).";

    public IReadOnlyList<Symbol> Options { get; } = [_model];

    public Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        foreach (var path in models.Resolver.RemoveCached(parse.Require(_model)))
            Console.Out.WriteLine($"removed {path}");
        return Task.FromResult(CliApp.ExitOk);
    }
}
