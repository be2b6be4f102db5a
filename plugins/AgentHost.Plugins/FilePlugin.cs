using System.ComponentModel;
using System.Text;
using Microsoft.SemanticKernel;

namespace AgentHost.Plugins;

/// <summary>
/// Read-only file skills confined to one root folder: list a folder, read a text file. A path is
/// relative to the root; one that leaves it (<c>..</c>, an absolute path) or passes through a symbolic
/// link is refused with <see cref="UnauthorizedAccessException"/>, so a link planted inside the root
/// cannot lead out of it. Nothing is ever written.
/// </summary>
/// <remarks>
/// The checks run before each access; a process that can swap folders for links under the root
/// between the check and the read (a race) is outside what this guards against.
/// </remarks>
public sealed class FilePlugin
{
    /// <summary>The largest file <see cref="ReadFile"/> returns, in bytes (256 KiB).</summary>
    public const int MaxReadBytes = 256 * 1024;

    private static readonly StringComparison _pathComparison = OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    private readonly string _root;
    private readonly string _rootPrefix;

    /// <summary>Confines the skills to <paramref name="root"/>.</summary>
    /// <param name="root">An existing folder; a symbolic link to one is resolved once, here.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    public FilePlugin(string root)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        var info = new DirectoryInfo(full);
        if (info.LinkTarget is not null)
            full = Path.TrimEndingDirectorySeparator(info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full);
        if (!Directory.Exists(full))
            throw new DirectoryNotFoundException($"The files root '{full}' does not exist.");
        _root = full;
        _rootPrefix = Path.EndsInDirectorySeparator(full) ? full : full + Path.DirectorySeparatorChar;
    }

    /// <summary>The root folder every path is relative to.</summary>
    public string Root => _root;

    /// <summary>Lists a folder: sub-folders first (with a trailing <c>/</c>), then files, each in name order.</summary>
    /// <param name="path">A folder relative to the root; <c>.</c> is the root itself.</param>
    /// <returns>One entry per line; symbolic links are left out.</returns>
    [KernelFunction]
    [Description("Lists the files and folders (folders end with '/') in a folder of the workspace.")]
    public string ListFiles([Description("The folder, relative to the workspace root; '.' for the root.")] string path = ".")
    {
        var full = Resolve(path);
        if (!Directory.Exists(full))
            throw new DirectoryNotFoundException($"There is no folder '{path}'.");
        var entries = new DirectoryInfo(full).EnumerateFileSystemInfos()
            .Where(e => e.LinkTarget is null)
            .OrderBy(e => e is FileInfo)
            .ThenBy(e => e.Name, StringComparer.Ordinal)
            .Select(e => e is DirectoryInfo ? e.Name + "/" : e.Name);
        return string.Join('\n', entries);
    }

    /// <summary>Reads a UTF-8 text file of at most <see cref="MaxReadBytes"/> bytes.</summary>
    /// <param name="path">A file relative to the root.</param>
    /// <returns>The file's text.</returns>
    [KernelFunction]
    [Description("Reads a text file of the workspace and returns its content.")]
    public string ReadFile([Description("The file, relative to the workspace root, e.g. 'notes/todo.txt'.")] string path)
    {
        var full = Resolve(path);
        var info = new FileInfo(full);
        if (!info.Exists)
            throw new FileNotFoundException($"There is no file '{path}'.");
        if (info.Length > MaxReadBytes)
            throw new InvalidOperationException($"The file '{path}' has {info.Length} bytes; at most {MaxReadBytes} are read.");
        var bytes = File.ReadAllBytes(full);
        if (Array.IndexOf(bytes, (byte)0) >= 0)
            throw new InvalidOperationException($"The file '{path}' is not a text file.");
        return new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetString(bytes).TrimStart('\uFEFF');
    }

    /// <summary>The full path of <paramref name="path"/> after checking it stays inside the root and crosses no link.</summary>
    private string Resolve(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Contains('\0'))
            throw new ArgumentException("The path contains a NUL character.");
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(string.IsNullOrWhiteSpace(path) ? "." : path.Trim(), _root));
        if (!string.Equals(full, _root, _pathComparison) && !full.StartsWith(_rootPrefix, _pathComparison))
            throw new UnauthorizedAccessException($"The path '{path}' is outside the workspace.");

        // Every existing component below the root must be a real folder or file, not a link.
        for (var current = full; current.Length > _root.Length; current = Path.GetDirectoryName(current)!)
        {
            FileSystemInfo info = Directory.Exists(current) ? new DirectoryInfo(current) : new FileInfo(current);
            if (info.Exists && info.LinkTarget is not null)
                throw new UnauthorizedAccessException($"The path '{path}' goes through a symbolic link, which is not followed.");
        }
        return full;
    }
}
