using AgentHost.Llama;

namespace AgentHost.SemanticKernel.Plugins;

/// <summary>
/// Which plugins a kernel gets: configuration section <c>Plugins</c> of appsettings.json.
/// </summary>
/// <example>
/// <code>
/// "Plugins": {
///   "Native": [ "Math", "Time", "Text" ],
///   "PromptDirectories": [ "plugins/prompts" ],
///   "FilesRoot": ""
/// }
/// </code>
/// </example>
public sealed class PluginOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Plugins";

    /// <summary>
    /// Names of the native plugins to import, chosen from those the app supplies (AgentHost ships
    /// <c>Math</c>, <c>Time</c> and <c>Text</c>). Case-insensitive; empty imports none.
    /// </summary>
    public List<string> Native { get; set; } = [];

    /// <summary>
    /// Folders of prompt plugins: each sub-folder of such a folder is one plugin (named after the
    /// sub-folder), each of its sub-folders one function with <c>skprompt.txt</c> and an optional
    /// <c>config.json</c>. Relative paths resolve against the base directory given to the loader: the
    /// app's content root, which is the folder holding appsettings.json.
    /// </summary>
    public List<string> PromptDirectories { get; set; } = [];

    /// <summary>
    /// The folder the native <c>Files</c> plugin may read (relative to the same base directory); the plugin
    /// refuses paths that leave it or pass through symbolic links. Empty (the default): no <c>Files</c> plugin.
    /// </summary>
    public string? FilesRoot { get; set; }

    /// <summary>
    /// The full path of <see cref="FilesRoot"/> against <paramref name="baseDirectory"/>, or null when no <c>Files</c>
    /// plugin is configured.
    /// </summary>
    /// <param name="baseDirectory">The folder relative paths resolve against (the app's content root).</param>
    /// <returns>The folder the <c>Files</c> plugin may read, or null.</returns>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidPlugin"/>: the folder does not exist, or <see cref="Native"/> lists Files without a root.</exception>
    public string? ResolveFilesRoot(string baseDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(baseDirectory);
        if (string.IsNullOrWhiteSpace(FilesRoot))
        {
            return Native.Contains("Files", StringComparer.OrdinalIgnoreCase)
                ? throw new AgentHostException(ErrorKind.InvalidPlugin, $"{SectionName}:Native lists Files but {SectionName}:FilesRoot is empty; set it to the folder the Files plugin may read.")
                : null;
        }
        var root = Path.GetFullPath(FilesRoot, baseDirectory);
        return Directory.Exists(root) ? root : throw new AgentHostException(ErrorKind.InvalidPlugin, $"{SectionName}:FilesRoot '{root}' does not exist.");
    }
}
