using AgentHost.Llama.Models;

namespace AgentHost;

/// <summary>App-side readings of <see cref="AgentHostOptions"/> (the CLI's and the server's alike).</summary>
internal static class AgentHostOptionsExtensions
{
    /// <summary>The folder whose templates override the built-in chat formats (relative to appsettings.json), or null.</summary>
    public static string? FormatsDirectory(this AgentHostOptions options)
        => string.IsNullOrWhiteSpace(options.ChatFormatsDir) ? null : Path.GetFullPath(options.ChatFormatsDir, AppContext.BaseDirectory);
}
