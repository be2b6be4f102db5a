using Spectre.Console;
using Spectre.Console.Rendering;

namespace AgentHost.Cli;

/// <summary>
/// The CLI's human-readable output (tables, progress) through Spectre.Console. On a terminal it may use colour and a
/// live progress bar sized to the window; when the stream is redirected (piped, captured, a file) it writes plain text
/// with no ANSI escapes and no animation, and tables are never wrapped to a guessed width. <c>NO_COLOR</c> (any
/// non-empty value) drops colour everywhere. <c>--json</c> output does not go through here.
/// </summary>
internal static class CliConsole
{
    /// <summary>The width a redirected table may take: wide enough that no cell is wrapped or cut.</summary>
    private const int RedirectedWidth = 4096;

    /// <summary>A console writing to stdout, set up for whether stdout is a terminal.</summary>
    public static IAnsiConsole Out() => Create(Console.Out, Console.IsOutputRedirected);

    /// <summary>A console writing to stderr, set up for whether stderr is a terminal.</summary>
    public static IAnsiConsole Error() => Create(Console.Error, Console.IsErrorRedirected);

    /// <summary>Whether colour is switched off by the <c>NO_COLOR</c> convention (https://no-color.org).</summary>
    public static bool NoColor => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));

    internal static IAnsiConsole Create(TextWriter writer, bool redirected)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = redirected ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = redirected || NoColor ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            Interactive = redirected ? InteractionSupport.No : InteractionSupport.Detect,
        });
        if (redirected)
            console.Profile.Width = RedirectedWidth;
        return console;
    }

    /// <summary>
    /// A borderless table (a Spectre <see cref="Grid"/>) with a header row, its columns separated by two spaces: the
    /// first column starts at the line's start and every column starts at the same offset on every row. A header that
    /// starts with <c>&gt;</c> names a right-aligned (numeric) column. Cell text is literal (no markup).
    /// </summary>
    public static Grid Table(params string[] headers)
    {
        var grid = new Grid();
        for (var i = 0; i < headers.Length; i++)
        {
            var column = new GridColumn { Padding = new Padding(0, 0, i == headers.Length - 1 ? 0 : 2, 0) };
            if (headers[i].StartsWith('>'))
                column.RightAligned();
            grid.AddColumn(column);
        }
        return grid.AddRow(headers.Select(h => (IRenderable)new Text(h.TrimStart('>'), new Style(decoration: Decoration.Bold))).ToArray());
    }

    /// <summary>Adds a row of literal cells (no markup is interpreted: paths and names may hold brackets).</summary>
    public static Grid Row(this Grid table, params string?[] cells)
        => table.AddRow(cells.Select(c => (IRenderable)new Text(c ?? "")).ToArray());

    /// <summary>Writes <paramref name="table"/> to stdout.</summary>
    public static void WriteOut(Grid table) => Out().Write(table);
}
