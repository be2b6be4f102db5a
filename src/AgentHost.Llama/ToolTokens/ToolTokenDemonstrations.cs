namespace AgentHost.Llama.ToolTokens;

/// <summary>
/// Argument demonstrations as data (ToolkenGPT's per-tool <c>templates[op]</c>): a folder with one text file per tool,
/// <c>TOOL.txt</c>, each a few lines of text ending in calls of that tool (<c>... so he had add(3, 4)=7 apples.</c>).
/// In argument mode the model reads the tool's demonstrations, then the text so far and the call start, and writes the
/// arguments. <c>[QUESTION]</c> in a file stands for the prompt, as in the paper's templates.
/// </summary>
public static class ToolTokenDemonstrations
{
    /// <summary>The placeholder ToolkenGPT's templates use for the question (the prompt).</summary>
    public const string QuestionPlaceholder = "[QUESTION]";

    /// <summary>Most bytes of one demonstrations file.</summary>
    public const int MaxBytes = 256 * 1024;

    /// <summary>The file of <paramref name="tool"/>'s demonstrations in <paramref name="folder"/>.</summary>
    public static string FileOf(string folder, string tool) => Path.Combine(folder, tool + ".txt");

    /// <summary>
    /// Reads the demonstrations of <paramref name="tools"/> from <paramref name="folder"/>; a tool without a file has none.
    /// A missing folder, a folder with none of the tools' files, or an unreadable file is a clear error.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Load(string folder, IReadOnlyList<string> tools)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(tools);
        if (!Directory.Exists(folder))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"The demonstrations folder '{folder}' does not exist (one file TOOL.txt per tool expected).");
        var prompts = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var tool in tools)
        {
            var file = FileOf(folder, tool);
            if (!File.Exists(file))
                continue;
            try
            {
                prompts[tool] = BoundedFile.ReadAllText(file, "demonstrations", MaxBytes);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new AgentHostException(ErrorKind.InvalidArgument, $"Cannot read demonstrations file '{file}': {e.Message}", e);
            }
        }
        if (prompts.Count == 0)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"The demonstrations folder '{folder}' has no file for any of the tools [{string.Join(", ", tools)}] (TOOL.txt expected).");
        return prompts;
    }

    /// <summary>Writes one file per tool into <paramref name="folder"/>.</summary>
    public static void Write(string folder, IReadOnlyDictionary<string, string> prompts)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(prompts);
        Directory.CreateDirectory(folder);
        foreach (var (tool, text) in prompts)
            File.WriteAllText(FileOf(folder, tool), text);
    }
}
