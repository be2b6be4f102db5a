using AgentHost.Llama;
using AgentHost.Llama.Models;
using AgentHost.SemanticKernel.Agents;
using AgentHost.SemanticKernel.Plugins;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace AgentHost.Cli;

/// <summary>
/// Entry point: builds the generic host (appsettings.json next to the executable, environment
/// variables, logging to stderr, DI) and runs one verb. A user mistake prints one line on stderr and
/// exits non-zero; it never shows a stack trace.
/// </summary>
internal static class CliApp
{
    public const int ExitOk = 0;
    public const int ExitError = 1;
    public const int ExitUsage = 2;
    public const int ExitInternal = 70;
    public const int ExitCancelled = 130;

    private static readonly OptionSpec[] _globalOptions =
    [
        new("verbose", "Log debug detail (native llama.cpp log included) to stderr.", IsFlag: true),
        new("help", "Show help for the verb.", IsFlag: true),
    ];

    public static async Task<int> RunAsync(string[] args)
    {
        using var cancellation = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancellation.Cancel();
        };

        var verbose = args.Contains("--verbose");
        IHost built;
        try
        {
            built = BuildHost(verbose);
        }
        catch (AgentHostException ex)
        {
            // A configuration value of the wrong type or out of range: every verb refuses to start.
            Console.Error.WriteLine($"error: {ex.Message}");
            return ExitUsage;
        }
        using var host = built;
        var commands = host.Services.GetServices<ICommand>().ToList();
        var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("AgentHost");

        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            PrintUsage(commands);
            return args.Length == 0 ? ExitUsage : ExitOk;
        }

        // A verb is one word ("generate") or two ("analyze rollouts", "models pull"); two words win over one.
        var command = args.Length > 1 ? commands.FirstOrDefault(c => c.Name == $"{args[0]} {args[1]}") : null;
        var verbWords = 2;
        if (command is null)
        {
            command = commands.FirstOrDefault(c => c.Name == args[0]);
            verbWords = 1;
        }
        if (command is null)
        {
            var group = commands.Where(c => c.Name.StartsWith(args[0] + " ", StringComparison.Ordinal)).Select(c => c.Name[(args[0].Length + 1)..]).ToList();
            Console.Error.WriteLine(group.Count > 0
                ? $"error: '{args[0]}' needs one of: {string.Join(", ", group)}."
                : $"error: unknown verb '{args[0]}'. Verbs: {string.Join(", ", commands.Select(c => c.Name))}.");
            return ExitUsage;
        }

        try
        {
            var specs = command.Options.Concat(_globalOptions).ToList();
            var line = CommandLine.Parse(command.Name, args[verbWords..], specs);
            if (line.Has("help"))
            {
                PrintHelp(command, specs);
                return ExitOk;
            }
            return await command.RunAsync(line, cancellation.Token);
        }
        catch (AgentHostException ex)
        {
            logger.LogDebug(ex, "User error");
            Console.Error.WriteLine($"error: {ex.Message}");
            return ex.Kind == ErrorKind.InvalidArgument ? ExitUsage : ExitError;
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            Console.Error.WriteLine("cancelled.");
            return ExitCancelled;
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Unexpected failure");
            Console.Error.WriteLine($"error: internal failure: {ex.Message} (run with --verbose for details).");
            return ExitInternal;
        }
    }

    private static IHost BuildHost(bool verbose)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            // The CLI parses its own arguments; configuration comes from files and the environment.
            Args = [],
            ContentRootPath = AppContext.BaseDirectory,
            EnvironmentName = Environments.Production,
        });
        builder.Configuration.AddEnvironmentVariables("AGENTHOST_");

        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = null;
        });
        // Logs never mix with the generated text on stdout.
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        // The category-less rule overrides appsettings.json's Logging:LogLevel:Default, which would otherwise
        // keep AgentHost's own debug messages out (a minimum level alone does not beat a configured rule).
        if (verbose)
            builder.Logging.SetMinimumLevel(LogLevel.Debug).AddFilter(category: null, level: LogLevel.Debug).AddFilter(NativeRuntime.LogCategory, LogLevel.Debug);

        builder.Services.AddSingleton(ConfigurationBinding.BindAgentHost(builder.Configuration));
        builder.Services.AddSingleton<ModelLoader>();
        builder.Services.AddSingleton<ICommand, GenerateCommand>();
        builder.Services.AddSingleton<ICommand, ChatCommand>();
        builder.Services.AddSingleton<ICommand, ServeCommand>();
        builder.Services.AddSingleton<ICommand, ModelsCommand>();
        builder.Services.AddSingleton<ICommand, ModelsPullCommand>();
        builder.Services.AddSingleton<ICommand, ModelsListCommand>();
        builder.Services.AddSingleton<ICommand, ModelsRemoveCommand>();
        builder.Services.AddSingleton<ICommand, Bench.BenchCommand>();
        builder.Services.AddSingleton<ICommand, AnalyzeRolloutsCommand>();
        builder.Services.AddSingleton<ICommand, AnalyzeContrastCommand>();

        builder.Services.AddSingleton(ConfigurationBinding.Bind<PluginOptions>(builder.Configuration, PluginOptions.SectionName));
        builder.Services.AddSingleton<AppPlugins>();
        builder.Services.AddSingleton<ToolTokenTools>();
        builder.Services.AddSingleton<ICommand, PluginsCommand>();

        builder.Services.AddSingleton(ConfigurationBinding.Bind<AgentOptions>(builder.Configuration, AgentOptions.SectionName));
        builder.Services.AddSingleton<AppAgents>();
        builder.Services.AddSingleton<ICommand, RunCommand>();
        builder.Services.AddSingleton<ICommand, ToolkensCorpusCommand>();
        builder.Services.AddSingleton<ICommand, ToolkensTrainCommand>();
        builder.Services.AddSingleton<ICommand, ToolkensEvalCommand>();
        return builder.Build();
    }

    private static void PrintUsage(IEnumerable<ICommand> commands)
    {
        Console.WriteLine("AgentHost: local GGUF models with token-level decoding strategies.");
        Console.WriteLine();
        Console.WriteLine("usage: agenthost <verb> [options]    (dotnet run --project src/AgentHost -- <verb> ...)");
        Console.WriteLine();
        foreach (var command in commands)
            Console.WriteLine($"  {command.Name,-18} {command.Summary}");
        Console.WriteLine();
        Console.WriteLine("'<verb> --help' lists a verb's options.");
    }

    private static void PrintHelp(ICommand command, IEnumerable<OptionSpec> specs)
    {
        Console.WriteLine($"{command.Name}: {command.Summary}");
        Console.WriteLine();
        foreach (var spec in specs)
        {
            var left = spec.IsPositional ? spec.ValueName : spec.IsFlag ? $"--{spec.Name}" : $"--{spec.Name} {spec.ValueName}";
            Console.WriteLine($"  {left,-26} {spec.Help}{(spec.Repeatable ? " (repeatable)" : "")}");
        }
    }
}
