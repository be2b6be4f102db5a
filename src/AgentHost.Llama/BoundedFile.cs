using System.Runtime.InteropServices;
using System.Text;

namespace AgentHost.Llama;

/// <summary>
/// The one way AgentHost reads a file a user names (grammars, schemas, prompt lists, templates, heads, corpora) and
/// lines from a stream it does not control (stdin): regular files only, after following links (a FIFO would block the
/// open forever, a device such as <c>/dev/zero</c> never ends), a stated size bound per kind of file, a bound on lines,
/// and cancellation. Every refusal is one <see cref="AgentHostException"/> of kind <see cref="ErrorKind.InvalidArgument"/>
/// naming the file and the limit.
/// </summary>
public static class BoundedFile
{
    /// <summary>Largest GBNF grammar file: the grammar parser's own bound (<see cref="Grammar.GrammarLimits.MaxGrammarLength"/>).</summary>
    public const long MaxGrammarBytes = Grammar.GrammarLimits.MaxGrammarLength;

    /// <summary>Largest JSON schema file (1 MiB).</summary>
    public const long MaxSchemaBytes = 1L << 20;

    /// <summary>Largest prompt list file (16 MiB).</summary>
    public const long MaxPromptsBytes = 16L << 20;

    /// <summary>Most prompts (non-empty, non-comment lines) a prompt list may hold.</summary>
    public const int MaxPromptLines = 100_000;

    /// <summary>Largest template, agent definition or plugin file (1 MiB).</summary>
    public const long MaxTemplateBytes = 1L << 20;

    /// <summary>Largest tool-token head file (256 MiB: a head is tools x hidden size floats as JSON).</summary>
    public const long MaxHeadBytes = 256L << 20;

    /// <summary>Largest annotated corpus file (64 MiB).</summary>
    public const long MaxCorpusBytes = 64L << 20;

    /// <summary>Longest line read from standard input, in characters (1 MiB of text).</summary>
    public const int MaxLineChars = 1 << 20;

    /// <summary>
    /// Refuses <paramref name="path"/> unless it names an existing regular file once every link is followed.
    /// </summary>
    /// <param name="path">The file as the user named it.</param>
    /// <param name="what">What the file is, for the message (e.g. "grammar").</param>
    /// <returns>The full path.</returns>
    /// <exception cref="AgentHostException">Missing, a directory, a FIFO, socket or device, or an invalid path.</exception>
    public static string CheckRegular(string path, string what)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Cannot read the {what} file '{path}': it is not a valid path.", e);
        }
        if (Directory.Exists(full))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Cannot read the {what} file '{path}': it is a directory, not a file.");
        if (!File.Exists(full))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Cannot read the {what} file '{path}': it does not exist.");
        if (FileType(full) is { } type && type != RegularType)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                $"Cannot read the {what} file '{path}': it is a {TypeName(type)}, not a regular file; only regular files are read.");
        }
        return full;
    }

    /// <summary>Reads a whole regular file as UTF-8 text, refusing it when it is larger than <paramref name="maxBytes"/>.</summary>
    /// <param name="path">The file as the user named it.</param>
    /// <param name="what">What the file is, for the message.</param>
    /// <param name="maxBytes">The size bound for this kind of file.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <exception cref="AgentHostException">Not a regular file, too large, or unreadable.</exception>
    public static string ReadAllText(string path, string what, long maxBytes, CancellationToken cancellationToken = default)
    {
        var full = CheckRegular(path, what);
        try
        {
            using var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
            if (stream.CanSeek && stream.Length > maxBytes)
                throw TooLarge(path, what, maxBytes);
            // Read at most maxBytes + 1 bytes whatever the file claims: it may grow, or not be seekable after all.
            var buffer = new MemoryStream();
            var chunk = new byte[64 * 1024];
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var read = stream.Read(chunk, 0, (int)Math.Min(chunk.Length, maxBytes + 1 - buffer.Length));
                if (read == 0)
                    break;
                buffer.Write(chunk, 0, read);
                if (buffer.Length > maxBytes)
                    throw TooLarge(path, what, maxBytes);
            }
            return new UTF8Encoding(false).GetString(buffer.GetBuffer(), 0, (int)buffer.Length).TrimStart('\uFEFF');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Cannot read the {what} file '{path}': {e.Message}", e);
        }
    }

    /// <summary>
    /// Reads the lines of a regular file (at most <paramref name="maxBytes"/> bytes) that <paramref name="keep"/>
    /// accepts, refusing the file when more than <paramref name="maxLines"/> are kept.
    /// </summary>
    /// <param name="path">The file as the user named it.</param>
    /// <param name="what">What the file is, for the message.</param>
    /// <param name="maxBytes">The size bound for this kind of file.</param>
    /// <param name="maxLines">The most lines kept.</param>
    /// <param name="keep">Which lines count (null: all).</param>
    /// <exception cref="AgentHostException">Not a regular file, too large, too many lines, or unreadable.</exception>
    public static List<string> ReadLines(string path, string what, long maxBytes, int maxLines, Func<string, bool>? keep = null)
    {
        var text = ReadAllText(path, what, maxBytes);
        var lines = new List<string>();
        using var reader = new StringReader(text);
        while (reader.ReadLine() is { } line)
        {
            if (keep is not null && !keep(line))
                continue;
            if (lines.Count == maxLines)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"Cannot read the {what} file '{path}': it has more than {maxLines} lines, the limit for a {what} file.");
            lines.Add(line);
        }
        return lines;
    }

    /// <summary>
    /// Reads one line from <paramref name="reader"/> (standard input), refusing a line longer than
    /// <paramref name="maxChars"/> characters before it is held in memory.
    /// </summary>
    /// <param name="reader">The stream of text.</param>
    /// <param name="maxChars">The longest line accepted.</param>
    /// <param name="cancellationToken">Stops the wait.</param>
    /// <returns>The line without its end, or null at the end of the stream.</returns>
    /// <exception cref="AgentHostException">The line is longer than <paramref name="maxChars"/>.</exception>
    public static async Task<string?> ReadLineAsync(TextReader reader, int maxChars, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var builder = new StringBuilder();
        var buffer = new char[1];
        while (true)
        {
            var read = await reader.ReadAsync(buffer.AsMemory(), cancellationToken).ConfigureAwait(false);
            if (read == 0)
                return builder.Length == 0 ? null : builder.ToString();
            var c = buffer[0];
            if (c == '\n')
                return builder.ToString();
            if (c == '\r')
            {
                if (reader.Peek() == '\n')
                    reader.Read();
                return builder.ToString();
            }
            if (builder.Length == maxChars)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"An input line is longer than {maxChars} characters.");
            builder.Append(c);
        }
    }

    private const int RegularType = 0x8000; // S_IFREG

    private static AgentHostException TooLarge(string path, string what, long maxBytes) =>
        new(ErrorKind.InvalidArgument, $"Cannot read the {what} file '{path}': it is larger than {maxBytes} bytes, the limit for a {what} file.");

    internal static string TypeName(int type) => type switch
    {
        0x1000 => "FIFO (named pipe)",
        0x2000 => "character device",
        0x6000 => "block device",
        0xC000 => "socket",
        0x4000 => "directory",
        _ => "special file",
    };

    /// <summary>The S_IFMT bits of the file after following links, or null where they cannot be read (not Linux).</summary>
    internal static int? FileType(string path)
    {
        if (OperatingSystem.IsWindows())
            return path.StartsWith(@"\\.\", StringComparison.Ordinal) ? 0x1000 : RegularType;
        if (!OperatingSystem.IsLinux())
            return null;
        try
        {
            // struct statx has one layout on every Linux architecture: stx_mode is the u16 at offset 28.
            var buffer = new byte[256];
            const int AtFdCwd = -100;
            const uint StatxType = 0x1;
            if (Statx(AtFdCwd, path, 0, StatxType, buffer) != 0)
                return null;
            return BitConverter.ToUInt16(buffer, 28) & 0xF000;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return null;
        }
    }

    [DllImport("libc", EntryPoint = "statx", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern int Statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, [Out] byte[] buffer);
}
