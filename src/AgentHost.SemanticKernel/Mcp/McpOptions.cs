using System.Text.RegularExpressions;
using AgentHost.Llama;

namespace AgentHost.SemanticKernel.Mcp;

/// <summary>
/// External MCP servers whose tools become Semantic Kernel plugins: configuration section <c>Mcp</c> of appsettings.json.
/// </summary>
/// <example>
/// <code>
/// "Mcp": {
///   "Servers": {
///     "git": { "Command": "uvx", "Args": [ "mcp-server-git" ], "Env": { "GIT_PAGER": "cat" } },
///     "search": { "Url": "http://127.0.0.1:9000/mcp" }
///   }
/// }
/// </code>
/// </example>
public sealed partial class McpOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Mcp";

    /// <summary>The servers by name; each name is also its plugin's name (letters, digits and underscores).</summary>
    public Dictionary<string, McpServerEntry> Servers { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>How long a server may take to start and answer the handshake and tool list (default 30 s).</summary>
    public int StartTimeoutSeconds { get; set; } = 30;

    /// <summary>How long one tool call may take before it fails (default 120 s).</summary>
    public int CallTimeoutSeconds { get; set; } = 120;

    /// <summary>
    /// A copy with only the servers among <paramref name="plugins"/> (plugin names; those that name no server are
    /// ignored), so a caller that uses some plugins starts only their servers.
    /// </summary>
    /// <param name="plugins">Plugin names, such as an agent's (<see cref="Agents.AgentCatalog.PluginsUsedBy"/>).</param>
    /// <returns>The same timeouts with the named servers, in configuration order.</returns>
    public McpOptions Only(IEnumerable<string> plugins)
    {
        ArgumentNullException.ThrowIfNull(plugins);
        var names = plugins.ToHashSet(StringComparer.OrdinalIgnoreCase);
        var only = new McpOptions { StartTimeoutSeconds = StartTimeoutSeconds, CallTimeoutSeconds = CallTimeoutSeconds };
        foreach (var (name, server) in Servers)
        {
            if (names.Contains(name))
                only.Servers[name] = server;
        }
        return only;
    }

    /// <summary>Checks every entry; throws an <see cref="AgentHostException"/> naming the key.</summary>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidArgument"/> (a configuration error): a bad name, both or neither of command and URL, a bad URL or timeout.</exception>
    public void Validate()
    {
        if (StartTimeoutSeconds < 1)
            throw Invalid($"{SectionName}:StartTimeoutSeconds must be at least 1, not {StartTimeoutSeconds}.");
        if (CallTimeoutSeconds < 1)
            throw Invalid($"{SectionName}:CallTimeoutSeconds must be at least 1, not {CallTimeoutSeconds}.");
        foreach (var (name, server) in Servers)
        {
            var key = $"{SectionName}:Servers:{name}";
            if (!ValidName().IsMatch(name))
                throw Invalid($"{key}: '{name}' is not a valid plugin name (letters, digits and underscores only).");
            var hasCommand = !string.IsNullOrWhiteSpace(server.Command);
            var hasUrl = !string.IsNullOrWhiteSpace(server.Url);
            if (hasCommand == hasUrl)
                throw Invalid($"{key} needs either Command (a stdio server) or Url (an HTTP server), {(hasCommand ? "not both" : "and has neither")}.");
            if (hasUrl && (!Uri.TryCreate(server.Url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")))
                throw Invalid($"{key}:Url '{server.Url}' is not an http or https URL.");
        }
    }

    // A configuration value out of range or malformed: a usage error (exit 2), like every other configuration key.
    private static AgentHostException Invalid(string message) => new(ErrorKind.InvalidArgument, message);

    // Semantic Kernel's rule for plugin names.
    [GeneratedRegex("^[0-9A-Za-z_]+$")]
    private static partial Regex ValidName();
}

/// <summary>One MCP server: a command to start (stdio) or the URL of a streamable HTTP endpoint.</summary>
public sealed class McpServerEntry
{
    /// <summary>The program of a stdio server (found on PATH), e.g. <c>npx</c> or <c>dotnet</c>.</summary>
    public string? Command { get; set; }

    /// <summary>Its arguments.</summary>
    public List<string> Args { get; set; } = [];

    /// <summary>Environment variables set for it (over the inherited environment).</summary>
    public Dictionary<string, string> Env { get; set; } = [];

    /// <summary>The URL of a streamable HTTP (or SSE) server.</summary>
    public string? Url { get; set; }

    /// <summary>HTTP headers sent to a URL server, e.g. <c>Authorization</c>.</summary>
    public Dictionary<string, string> Headers { get; set; } = [];
}
