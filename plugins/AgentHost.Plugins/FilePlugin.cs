using System.ComponentModel;
using System.Text;
using Microsoft.SemanticKernel;
using Microsoft.Win32.SafeHandles;

namespace AgentHost.Plugins;

/// <summary>
/// Read-only file skills confined to one root folder: list a folder, read a text file. A path is
/// relative to the root; one that leaves it (<c>..</c>, an absolute path) or passes through a symbolic
/// link is refused with <see cref="UnauthorizedAccessException"/>, so a link planted inside the root
/// cannot lead out of it. Nothing is ever written.
/// </summary>
/// <remarks>
/// On Linux the file is opened first (non-blocking, final link not followed) and the checks are made on the
/// opened handle, so nothing can be swapped in between: it must be a regular file (never a FIFO, device or
/// socket), have one link (a hard link could lead out of the root), lie inside the root once every link is
/// resolved, and hold at most <see cref="MaxReadBytes"/>. Elsewhere the same checks run on the path.
/// Listings stop after <see cref="MaxListEntries"/> entries.
/// </remarks>
public sealed class FilePlugin
{
    /// <summary>The largest file <see cref="ReadFile"/> returns, in bytes (256 KiB).</summary>
    public const int MaxReadBytes = 256 * 1024;

    /// <summary>The most entries <see cref="ListFiles"/> returns (1000); a longer listing says it was cut.</summary>
    public const int MaxListEntries = 1000;

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
        if (OperatingSystem.IsLinux())
            full = Path.TrimEndingDirectorySeparator(LinuxFile.RealPath(full) ?? full);
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
        // Enumeration stops one past the limit: a folder of millions of entries costs no more than the limit.
        var found = new DirectoryInfo(full).EnumerateFileSystemInfos()
            .Where(e => e.LinkTarget is null)
            .Take(MaxListEntries + 1)
            .ToList();
        var entries = found.Take(MaxListEntries)
            .OrderBy(e => e is FileInfo)
            .ThenBy(e => e.Name, StringComparer.Ordinal)
            .Select(e => e is DirectoryInfo ? e.Name + "/" : e.Name);
        var listing = string.Join('\n', entries);
        return found.Count > MaxListEntries ? listing + $"\n(listing cut at {MaxListEntries} entries)" : listing;
    }

    /// <summary>Reads a UTF-8 text file of at most <see cref="MaxReadBytes"/> bytes.</summary>
    /// <param name="path">A file relative to the root.</param>
    /// <returns>The file's text.</returns>
    [KernelFunction]
    [Description("Reads a text file of the workspace and returns its content.")]
    public string ReadFile([Description("The file, relative to the workspace root, e.g. 'notes/todo.txt'.")] string path)
    {
        var full = Resolve(path);
        var bytes = OperatingSystem.IsLinux() ? ReadOpened(path, full) : ReadChecked(path, full);
        if (Array.IndexOf(bytes, (byte)0) >= 0)
            throw new InvalidOperationException($"The file '{path}' is not a text file.");
        return new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetString(bytes).TrimStart('\uFEFF');
    }

    // Opens first, then checks what was opened: no check-then-use race, and a FIFO never blocks the open.
    private byte[] ReadOpened(string path, string full)
    {
        using var handle = LinuxFile.OpenForReading(full, out var error);
        if (handle is null)
        {
            throw error switch
            {
                LinuxFile.NoEntry or LinuxFile.NotDirectory => new FileNotFoundException($"There is no file '{path}'."),
                LinuxFile.TooManyLinks => new UnauthorizedAccessException($"The path '{path}' goes through a symbolic link, which is not followed."),
                _ => new UnauthorizedAccessException($"The file '{path}' cannot be opened (error {error})."),
            };
        }
        var status = LinuxFile.Status(handle);
        if (status.IsDirectory)
            throw new FileNotFoundException($"There is no file '{path}'.");
        if (!status.IsRegularFile)
            throw new UnauthorizedAccessException($"The file '{path}' is not a regular file (a FIFO, device or socket), so it is not read.");
        if (status.Links > 1)
            throw new UnauthorizedAccessException($"The file '{path}' has {status.Links} hard links, which could lead outside the workspace, so it is not read.");
        var real = LinuxFile.RealPath(handle);
        if (real is null || !real.StartsWith(_rootPrefix, StringComparison.Ordinal))
            throw new UnauthorizedAccessException($"The path '{path}' is outside the workspace.");
        if (status.Size > MaxReadBytes)
            throw new InvalidOperationException($"The file '{path}' has {status.Size} bytes; at most {MaxReadBytes} are read.");
        return ReadAtMost(path, handle);
    }

    private static byte[] ReadChecked(string path, string full)
    {
        var info = new FileInfo(full);
        if (!info.Exists)
            throw new FileNotFoundException($"There is no file '{path}'.");
        if (info.Length > MaxReadBytes)
            throw new InvalidOperationException($"The file '{path}' has {info.Length} bytes; at most {MaxReadBytes} are read.");
        using var handle = File.OpenHandle(full);
        return ReadAtMost(path, handle);
    }

    // The size was checked, but a file can grow: never read more than the limit.
    private static byte[] ReadAtMost(string path, SafeFileHandle handle)
    {
        var buffer = new byte[MaxReadBytes + 1];
        var length = 0;
        int read;
        while (length < buffer.Length && (read = RandomAccess.Read(handle, buffer.AsSpan(length), length)) > 0)
            length += read;
        if (length > MaxReadBytes)
            throw new InvalidOperationException($"The file '{path}' has more than {MaxReadBytes} bytes; at most {MaxReadBytes} are read.");
        return buffer[..length];
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
