using System.CommandLine;
using AgentHost.Cli;
using AgentHost.Llama;

namespace AgentHost.Bench;

/// <summary>The options the bench scenarios share.</summary>
internal static class BenchOptions
{
    /// <summary><c>--warmup</c>: runs before the measured ones.</summary>
    public static Option<int> Warmup { get; } = CliOption.Int("--warmup", "Warm-up runs, not counted.", "N", 1, min: 0, max: 100);

    /// <summary><c>--json FILE</c>: every measurement, as JSON.</summary>
    public static Option<string?> JsonFile { get; } = CliOption.Text("--json", "Also write every measurement to this JSON file.", "FILE");

    /// <summary><c>--prompts FILE</c>.</summary>
    public static Option<string?> Prompts { get; } = CliOption.Text("--prompts", "Prompt file, one per line (default: the Bench/prompts.txt shipped with AgentHost).", "FILE");

    /// <summary><c>--runs</c> with the scenario's default.</summary>
    public static Option<int> Runs(int defaultValue) => CliOption.Int("--runs", "Measured runs.", "N", defaultValue, min: 1, max: 1000);

    /// <summary>The prompts of <see cref="Prompts"/> (lines that are neither empty nor # comments).</summary>
    public static List<string> ReadPrompts(ParseResult parse)
    {
        var path = parse.GetValue(Prompts) ?? Path.Combine(AppContext.BaseDirectory, "Bench", "prompts.txt");
        var prompts = BoundedFile.ReadLines(path, "prompts", BoundedFile.MaxPromptsBytes, BoundedFile.MaxPromptLines, l => l.Length > 0 && !l.StartsWith('#'));
        return prompts.Count > 0 ? prompts : throw new AgentHostException(ErrorKind.InvalidArgument, $"Prompt file '{path}' has no prompts.");
    }
}
