using System.CommandLine;
using System.CommandLine.Invocation;
using AgentHost.Llama;
using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;
using AgentHost.SemanticKernel.Agents;
using AgentHost.SemanticKernel.Mcp;
using AgentHost.SemanticKernel.Plugins;
using AgentHost.SemanticKernel.ToolTokens;
using AgentHost.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace AgentHost.Cli;

/// <summary>
/// Entry point: builds the generic host (appsettings.json next to the executable, environment variables,
/// logging to stderr, DI), parses the command line with System.CommandLine and runs one verb. A user mistake
/// prints one line on stderr and exits non-zero; it never shows a stack trace.
/// </summary>
internal static class CliApp
{
    public const int ExitOk = 0;
    public const int ExitError = 1;
    public const int ExitUsage = 2;
    public const int ExitInternal = 70;
    public const int ExitCancelled = 130;

    private const string Description = "AgentHost: local GGUF models with token-level decoding strategies.";

    /// <summary>Groups that are not verbs themselves: their help.</summary>
    private static readonly Dictionary<string, string> _groups = new(StringComparer.Ordinal)
    {
        ["analyze"] = "Analyse a response: its critical token (rollouts) or per-token contrastive scores (contrast).",
        ["toolkens"] = "Tool tokens: write the demo corpus, train a head, evaluate it.",
    };

    /// <summary>Groups that run one of their subcommands when given none.</summary>
    private static readonly Dictionary<string, string> _defaultSubcommands = new(StringComparer.Ordinal)
    {
        ["bench"] = "strategies",
    };

    private static readonly Option<bool> _verbose = new("--verbose") { Description = "Log debug detail (native llama.cpp log included) to stderr.", Arity = ArgumentArity.Zero, Recursive = true };

    public static async Task<int> RunAsync(string[] args)
    {
        using var cancellation = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancellation.Cancel();
        };

        IHost built;
        try
        {
            built = BuildHost(verbose: args.Contains(_verbose.Name));
        }
        catch (AgentHostException ex)
        {
            // A configuration value of the wrong type or out of range: every verb refuses to start.
            Console.Error.WriteLine($"error: {ex.Message}");
            return ExitUsage;
        }
        using var host = built;
        await host.StartTelemetryAsync(cancellation.Token);
        var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("AgentHost");
        var root = BuildRoot(host.Services.GetServices<ICommand>());

        // No verb: the overview, as a usage error; 'help' is the overview as asked for.
        var parse = root.Parse(args.Length == 0 || args is ["help"] ? ["--help"] : args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        // Help, --version and the [suggest] directive of shell completion run despite errors (a half-typed line).
        if (parse.Action is ParseErrorAction && UsageError(parse) is { } usage)
        {
            Console.Error.WriteLine($"error: {usage}");
            return ExitUsage;
        }

        try
        {
            var exit = await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null }, cancellation.Token);
            return args.Length == 0 ? ExitUsage : exit;
        }
        catch (AgentHostException ex)
        {
            logger.LogDebug(ex, "User error");
            Console.Error.WriteLine($"error: {ex.Message}");
            return ex.Kind == ErrorKind.InvalidArgument ? ExitUsage : ExitError;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The environment refused a read or write (a path that cannot be written such as /proc/self/mem, a full
            // disk, no permission): an environment error naming the file, not an internal fault.
            logger.LogDebug(ex, "I/O error");
            Console.Error.WriteLine($"error: {ex.Message}");
            return ExitError;
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

    /// <summary>The command tree: one command per verb, groups for two-word verbs, the global options and completion.</summary>
    private static RootCommand BuildRoot(IEnumerable<ICommand> verbs)
    {
        var root = new RootCommand(Description) { _verbose };
        root.Aliases.Add("agenthost");
        foreach (var verb in verbs.Append(new CompletionCommand()))
        {
            var words = verb.Name.Split(' ');
            var parent = words.Length == 1 ? root : Group(root, words[0]);
            var command = parent.Subcommands.FirstOrDefault(c => c.Name == words[^1]);
            if (command is null)
                parent.Subcommands.Add(command = new Command(words[^1]));
            Configure(command, verb);
            if (words.Length == 2 && _defaultSubcommands.GetValueOrDefault(words[0]) == words[1])
                Configure(parent, verb);
        }
        return root;
    }

    private static Command Group(RootCommand root, string name)
    {
        var group = root.Subcommands.FirstOrDefault(c => c.Name == name);
        if (group is null)
            root.Subcommands.Add(group = new Command(name, _groups.GetValueOrDefault(name)));
        return group;
    }

    private static void Configure(Command command, ICommand verb)
    {
        command.Description = verb.Summary;
        foreach (var symbol in verb.Options)
        {
            if (symbol is Option option)
                command.Options.Add(option);
            else if (symbol is Argument argument)
                command.Arguments.Add(argument);
        }
        command.SetAction(verb.RunAsync);
    }

    /// <summary>The first mistake of a parse as one sentence, or null when there is none.</summary>
    private static string? UsageError(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        var verb = CliOption.Verb(parse);
        if (parse.UnmatchedTokens.FirstOrDefault() is { } unmatched)
        {
            if (unmatched.StartsWith('-'))
                return $"unknown option '{unmatched}' for '{verb}' (see '{verb} --help').";
            if (command is RootCommand)
                return $"unknown verb '{unmatched}'. Verbs: {string.Join(", ", command.Subcommands.Select(c => c.Name))}.";
            if (command.Action is null)
                return $"'{verb}' needs one of: {string.Join(", ", command.Subcommands.Select(c => c.Name))}.";
            return $"unexpected argument '{unmatched}' for '{verb}'; options start with -- (see '{verb} --help').";
        }
        if (command.Action is null && command.Subcommands.Count > 0 && command is not RootCommand)
            return $"'{verb}' needs one of: {string.Join(", ", command.Subcommands.Select(c => c.Name))}.";
        return parse.Errors.Count > 0 ? parse.Errors[0].Message : null;
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
        // The MCP SDK logs, with a stack trace, the failures AgentHost reports as one line; --verbose shows them.
        builder.Logging.AddFilter("ModelContextProtocol", verbose ? LogLevel.Debug : LogLevel.None);
        if (verbose)
            builder.Logging.SetMinimumLevel(LogLevel.Debug).AddFilter(category: null, level: LogLevel.Debug).AddFilter(NativeRuntime.LogCategory, LogLevel.Debug);

        // The catalog as bound and range-checked here (one clear error per bad key), for the libraries' model provider;
        // downloads and stand-in builds show a progress bar on stderr.
        var hostOptions = ConfigurationBinding.BindAgentHost(builder.Configuration);
        builder.Services.AddSingleton(hostOptions);
        builder.Services.AddSingleton(Options.Create(hostOptions));
        builder.Services.AddSingleton<IProgress<DownloadProgress>>(new ConsoleProgressBar());
        builder.Services.AddLlamaModelProvider();
        // OTLP export of the verbs' spans and metrics, when Telemetry:Otlp:Endpoint is set (serve has its own container).
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);   // a host started for telemetry says nothing
        builder.Services.AddAgentHostTelemetry(ConfigurationBinding.Bind<TelemetryOptions>(builder.Configuration, TelemetryOptions.SectionName), prometheus: false);
        builder.Services.AddSingleton(services => (LlamaModelProvider)services.GetRequiredService<ILlamaModelProvider>());

        builder.Services.AddSingleton<ICommand, GenerateCommand>();
        builder.Services.AddSingleton<ICommand, ChatCommand>();
        builder.Services.AddSingleton<ICommand, ServeCommand>();
        builder.Services.AddSingleton<ICommand, ModelsCommand>();
        builder.Services.AddSingleton<ICommand, ModelsPullCommand>();
        builder.Services.AddSingleton<ICommand, ModelsListCommand>();
        builder.Services.AddSingleton<ICommand, ModelsRemoveCommand>();
        builder.Services.AddSingleton<ICommand, ModelsShowCommand>();
        builder.Services.AddSingleton<ICommand, Bench.BenchCommand>();
        builder.Services.AddSingleton<ICommand, Bench.BenchChatCommand>();
        builder.Services.AddSingleton<ICommand, Bench.BenchServerCommand>();
        builder.Services.AddSingleton<ICommand, AnalyzeRolloutsCommand>();
        builder.Services.AddSingleton<ICommand, AnalyzeContrastCommand>();

        builder.Services.AddSingleton(ConfigurationBinding.Bind<PluginOptions>(builder.Configuration, PluginOptions.SectionName));
        // Range-checked here, so a bad Mcp key is a configuration error (exit 2) for every verb, not a plugin failure later.
        var mcp = ConfigurationBinding.Bind<McpOptions>(builder.Configuration, McpOptions.SectionName);
        mcp.Validate();
        builder.Services.AddSingleton(mcp);
        builder.Services.AddSingleton<AppPlugins>();
        builder.Services.AddSingleton(services => new ToolTokenTools(() =>
        {
            var kernel = new Microsoft.SemanticKernel.Kernel();
            services.GetRequiredService<AppPlugins>().ImportInto(kernel);
            return kernel;
        }));
        builder.Services.AddSingleton<ICommand, PluginsCommand>();

        builder.Services.AddSingleton(ConfigurationBinding.Bind<AgentOptions>(builder.Configuration, AgentOptions.SectionName));
        builder.Services.AddSingleton<AppAgents>();
        builder.Services.AddSingleton<ICommand, RunCommand>();
        builder.Services.AddSingleton<ICommand, McpCommand>();
        builder.Services.AddSingleton<ICommand, ToolkensCorpusCommand>();
        builder.Services.AddSingleton<ICommand, ToolkensTrainCommand>();
        builder.Services.AddSingleton<ICommand, ToolkensEvalCommand>();
        return builder.Build();
    }
}
