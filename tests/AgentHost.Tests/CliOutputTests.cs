using AgentHost.Cli;
using Spectre.Console;

namespace AgentHost.Tests;

/// <summary>The CLI's tables and progress through Spectre.Console: aligned columns, plain text when piped.</summary>
public sealed class CliOutputTests
{
    [Fact]
    public async Task Models_columns_align_on_every_row_and_piped_output_has_no_ansi_escapes()
    {
        var result = await AgentHostProcess.RunAsync(["models"], new Dictionary<string, string> { ["TERM"] = "xterm-256color" });

        Assert.Equal(0, result.ExitCode);
        Assert.DoesNotContain('\u001b', result.StdOut);
        Assert.DoesNotContain('\u001b', result.StdErr);
        var lines = result.StdOut.ReplaceLineEndings("\n").Split('\n').TakeWhile(l => l.Length > 0).ToList();
        var header = lines[0];
        Assert.StartsWith("name ", header, StringComparison.Ordinal);
        int[] starts = [header.IndexOf("  file ", StringComparison.Ordinal) + 2, header.IndexOf("  where", StringComparison.Ordinal) + 2];
        Assert.All(starts, s => Assert.True(s > 2, header));
        Assert.True(lines.Count > 2, result.StdOut);
        // The catalog holds names and files of different lengths (stories260k-wide, phi4-mini's long file name):
        // every row's column starts exactly where its header does, after at least two spaces.
        foreach (var line in lines)
        {
            Assert.NotEqual(' ', line[0]);
            foreach (var start in starts)
            {
                Assert.True(line.Length > start, $"'{line}' ends before column {start}");
                Assert.True(line[start - 2] == ' ' && line[start - 1] == ' ' && line[start] != ' ', $"'{line}' has no column at {start}");
            }
        }
        Assert.Contains(lines, l => l.StartsWith("stories260k *", StringComparison.Ordinal) && l.TrimEnd().EndsWith(Path.Combine(AgentHostProcess.ModelsDirectory, "stories260K.gguf"), StringComparison.Ordinal));
    }

    [Fact]
    public void A_redirected_console_writes_no_escapes_and_never_wraps_a_long_cell()
    {
        var writer = new StringWriter();
        var console = CliConsole.Create(writer, redirected: true);
        var path = "/" + string.Join('/', Enumerable.Repeat("a-rather-long-folder-name", 12)) + "/[model].gguf";
        console.Write(CliConsole.Table("name", ">size", "path").Row("x", "12", path).Row("longer-name", "1234567", "p"));

        var lines = writer.ToString().ReplaceLineEndings("\n").TrimEnd('\n').Split('\n');
        Assert.DoesNotContain('\u001b', writer.ToString());
        Assert.Equal(3, lines.Length);
        Assert.Equal("name            size  path", lines[0].TrimEnd());
        Assert.Equal($"x                 12  {path}", lines[1].TrimEnd());
        Assert.Equal("longer-name  1234567  p", lines[2].TrimEnd());
        Assert.False(console.Profile.Capabilities.Interactive);
        Assert.Equal(ColorSystem.NoColors, console.Profile.Capabilities.ColorSystem);
    }
}
