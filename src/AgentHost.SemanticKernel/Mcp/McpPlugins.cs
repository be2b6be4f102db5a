using System.Runtime.ExceptionServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using AgentHost.Llama;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.SemanticKernel;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace AgentHost.SemanticKernel.Mcp;

/// <summary>
/// The MCP servers of <see cref="McpOptions"/>, connected, each as a Semantic Kernel plugin named after the server
/// with one function per tool. Every wait is bounded: a server that does not start, answers with bad data or dies is
/// an <see cref="AgentHostException"/> at connection, and a failing, dying or silent server during a call fails that
/// call with a message naming server and tool (the model or the user reads it), never a hang. Disposing stops the
/// stdio servers.
/// </summary>
public sealed partial class McpPlugins : IAsyncDisposable
{
    private const int StderrLinesKept = 5;
    private readonly List<McpClient> _clients;

    private McpPlugins(List<McpClient> clients, IReadOnlyList<KernelPlugin> plugins, IReadOnlyList<AgentHostException> failures)
    {
        _clients = clients;
        Plugins = plugins;
        Failures = failures;
    }

    /// <summary>One plugin per connected server, in configuration order.</summary>
    public IReadOnlyList<KernelPlugin> Plugins { get; }

    /// <summary>
    /// The servers that did not connect, one error each in configuration order: only after
    /// <see cref="ConnectAvailableAsync"/> (<see cref="ConnectAsync"/> throws the first instead).
    /// </summary>
    public IReadOnlyList<AgentHostException> Failures { get; }

    /// <summary>
    /// Starts (or connects to) every configured server, all at once, and lists its tools; the first server that
    /// fails stops the others. Pass <see cref="McpOptions.Only"/> to connect only the servers a caller names.
    /// </summary>
    /// <param name="options">The servers and timeouts; validated first.</param>
    /// <param name="loggerFactory">Logging (a server's stderr goes to it at debug level).</param>
    /// <param name="cancellationToken">Cancels the connection.</param>
    /// <returns>The connected servers; none when none is configured.</returns>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidArgument"/>: a bad entry; <see cref="ErrorKind.InvalidPlugin"/>: a server that cannot be started, does not answer in time or returns bad data.</exception>
    public static Task<McpPlugins> ConnectAsync(McpOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
        => ConnectCoreAsync(options, keepGoing: false, loggerFactory, cancellationToken);

    /// <summary>
    /// Like <see cref="ConnectAsync"/>, but a server that fails to connect is left out and its error added to
    /// <see cref="Failures"/>, so the others are still usable (a listing of what works).
    /// </summary>
    /// <param name="options">The servers and timeouts; validated first.</param>
    /// <param name="loggerFactory">Logging (a server's stderr goes to it at debug level).</param>
    /// <param name="cancellationToken">Cancels the connection.</param>
    /// <returns>The servers that connected and the errors of those that did not.</returns>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidArgument"/>: a bad entry.</exception>
    public static Task<McpPlugins> ConnectAvailableAsync(McpOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
        => ConnectCoreAsync(options, keepGoing: true, loggerFactory, cancellationToken);

    // Servers start concurrently: N slow servers take about the slowest one's time, not the sum.
    private static async Task<McpPlugins> ConnectCoreAsync(McpOptions options, bool keepGoing, ILoggerFactory? loggerFactory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        loggerFactory ??= NullLoggerFactory.Instance;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var connecting = options.Servers.Select(async server =>
        {
            try
            {
                return await ConnectServerAsync(server.Key, server.Value, options, loggerFactory, stop.Token).ConfigureAwait(false);
            }
            catch (AgentHostException) when (!keepGoing)
            {
                await stop.CancelAsync().ConfigureAwait(false);   // one failure is the answer: stop waiting for the others
                throw;
            }
        }).ToList();
        await ((Task)Task.WhenAll(connecting)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);   // each outcome is read below

        // A server either connected, failed (ConnectServerAsync turns every failure into an AgentHostException) or was stopped.
        var connected = connecting.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result).ToList();
        var failures = connecting.Where(t => t.IsFaulted).Select(t => (AgentHostException)t.Exception!.InnerException!).ToList();
        var mcp = new McpPlugins([.. connected.Select(s => s.Client)], [.. connected.Select(s => s.Plugin)], failures);
        if (cancellationToken.IsCancellationRequested || (failures.Count > 0 && !keepGoing))
        {
            await mcp.DisposeAsync().ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            ExceptionDispatchInfo.Throw(failures[0]);
        }
        return mcp;
    }

    /// <summary>Adds the plugins to <paramref name="kernel"/>.</summary>
    /// <param name="kernel">The kernel.</param>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidPlugin"/>: a server is named like a plugin the kernel has.</exception>
    public void ImportInto(Kernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        foreach (var plugin in Plugins)
        {
            if (kernel.Plugins.Contains(plugin.Name))
                throw new AgentHostException(ErrorKind.InvalidPlugin, $"{McpOptions.SectionName}:Servers:{plugin.Name} is named like a plugin that is already loaded; rename the server.");
        }
        kernel.Plugins.AddRange(Plugins);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
            await client.DisposeAsync().ConfigureAwait(false);
        _clients.Clear();
    }

    private static async Task<(McpClient Client, KernelPlugin Plugin)> ConnectServerAsync(string name, McpServerEntry entry, McpOptions options, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var logger = loggerFactory.CreateLogger($"AgentHost.Mcp.{name}");
        var stderr = new Queue<string>();
        var startTimeout = TimeSpan.FromSeconds(options.StartTimeoutSeconds);
        IClientTransport transport = entry.Url is { Length: > 0 } url
            ? new HttpClientTransport(new HttpClientTransportOptions
            {
                Name = name,
                Endpoint = new Uri(url),
                AdditionalHeaders = entry.Headers,
                ConnectionTimeout = startTimeout,
            }, loggerFactory)
            : new StdioClientTransport(new StdioClientTransportOptions
            {
                Name = name,
                Command = entry.Command!,
                Arguments = entry.Args,
                EnvironmentVariables = entry.Env.ToDictionary(e => e.Key, e => (string?)e.Value),
                StandardErrorLines = line =>
                {
                    logger.LogDebug("{Line}", line);
                    lock (stderr)
                    {
                        stderr.Enqueue(line);
                        if (stderr.Count > StderrLinesKept)
                            stderr.Dequeue();
                    }
                },
            }, loggerFactory);

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(startTimeout);
        McpClient? client = null;
        try
        {
            client = await McpClient.CreateAsync(transport, new McpClientOptions
            {
                ClientInfo = new Implementation { Name = "agenthost", Version = typeof(McpPlugins).Assembly.GetName().Version?.ToString() ?? "0" },
                InitializationTimeout = startTimeout,
            }, loggerFactory, deadline.Token).ConfigureAwait(false);
            var tools = await client.ListToolsAsync(cancellationToken: deadline.Token).ConfigureAwait(false);
            var functions = new List<KernelFunction>();
            var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var tool in tools)
            {
                // Semantic Kernel allows letters, digits and '_' in function names; MCP also allows '-', '.' and '/'.
                var functionName = InvalidNameCharacter().Replace(tool.Name, "_");
                if (functionName.Length == 0 || !names.Add(functionName))
                    throw new InvalidDataException($"its tool name '{tool.Name}' is empty or repeats another tool's name as {functionName}");
                functions.Add(new BoundedTool(tool.WithName(functionName), name, TimeSpan.FromSeconds(options.CallTimeoutSeconds)).AsKernelFunction());
            }
            var description = client.ServerInstructions ?? client.ServerInfo?.Title ?? client.ServerInfo?.Name;
            return (client, KernelPluginFactory.CreateFromFunctions(name, description, functions));
        }
        catch (Exception e)
        {
            if (client is not null)
                await client.DisposeAsync().ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();   // stopped, not failed: whatever the SDK threw on the way out
            var why = deadline.IsCancellationRequested || e is TimeoutException
                ? $"did not answer within {options.StartTimeoutSeconds} s ({McpOptions.SectionName}:StartTimeoutSeconds)"
                : $"failed to start: {FirstLine(e.GetBaseException().Message)}";   // the SDK's own wrapper says only "Failed to connect transport"
            string tail;
            lock (stderr)
                tail = stderr.Count == 0 ? "" : $" Its last output: {string.Join(" | ", stderr)}";
            throw new AgentHostException(ErrorKind.InvalidPlugin, $"MCP server '{name}' ({Describe(entry)}) {why}.{tail}", e);
        }
    }

    // One line: the SDK appends the server's stderr, which the error reports once, as its last output.
    private static string FirstLine(string message) => message.Split('\n', 2)[0].Trim().TrimEnd('.');

    private static string Describe(McpServerEntry entry)
        => entry.Url is { Length: > 0 } url ? url : string.Join(' ', [entry.Command!, .. entry.Args]);

    [GeneratedRegex("[^0-9A-Za-z_]")]
    private static partial Regex InvalidNameCharacter();

    /// <summary>
    /// A server's tool with a deadline per call; an error result, a dead server or a timeout fails the call with
    /// one message naming the server and tool, and a success returns the result's text.
    /// </summary>
    private sealed class BoundedTool(McpClientTool tool, string server, TimeSpan timeout) : DelegatingAIFunction(tool)
    {
        protected override async ValueTask<object?> InvokeCoreAsync(AIFunctionArguments arguments, CancellationToken cancellationToken)
        {
            var where = $"MCP server '{server}', tool '{tool.ProtocolTool.Name}'";
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            CallToolResult result;
            try
            {
                result = await tool.CallAsync(arguments, cancellationToken: deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"{where}: no answer within {timeout.TotalSeconds:0} s ({McpOptions.SectionName}:CallTimeoutSeconds).");
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new InvalidOperationException($"{where} failed: {string.Join(' ', e.Message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))}", e);   // one line: a trace entry or a log line
            }
            var text = Text(result);
            return result.IsError == true ? throw new InvalidOperationException($"{where} returned an error: {text}") : text;
        }

        /// <summary>The text blocks of a result (a model reads text), else its structured content as JSON.</summary>
        private static string Text(CallToolResult result)
        {
            var text = new StringBuilder();
            foreach (var block in result.Content)
            {
                if (block is TextContentBlock { Text: var part })
                    text.Append(text.Length == 0 ? "" : "\n").Append(part);
            }
            return text.Length > 0 || result.StructuredContent is null ? text.ToString() : JsonSerializer.Serialize(result.StructuredContent);
        }
    }
}
