using System.Text.RegularExpressions;

namespace AgentHost.Llama.Tests.Models;

/// <summary>
/// Text reaches llama.cpp's tokenizer only through <c>LlamaModel.Tokenize</c>, which runs the input guard first
/// (or, for LLamaSharp's own executors, after <c>LlamaModel.MakeTokenizable</c>). A new direct call would let a
/// character the vocabulary lacks abort the process, so the sources are scanned for every native tokenize path.
/// </summary>
public sealed partial class TokenizerEntryPointTests
{
    // Native tokenize calls and the LLamaSharp types that tokenize text on their own.
    [GeneratedRegex(@"(NativeHandle|Context|SafeLlamaModelHandle|Vocab)\s*\.\s*Tokenize\s*\(|llama_tokenize|\b(StatelessExecutor|InteractiveExecutor|InstructExecutor|LLamaEmbedder|BatchedExecutor)\s*\(")]
    private static partial Regex NativeTokenizePath();

    [Fact]
    public void Only_the_guarded_entry_points_hand_text_to_the_native_tokenizer()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "AgentHost.sln")))
            root = root.Parent;
        Assert.NotNull(root);

        var found = new List<string>();
        foreach (var folder in new[] { "src", "plugins" })
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(root.FullName, folder), "*.cs", SearchOption.AllDirectories))
            {
                if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
                    continue;
                foreach (var line in File.ReadLines(file))
                {
                    if (NativeTokenizePath().IsMatch(line) && !line.TrimStart().StartsWith("//", StringComparison.Ordinal))
                        found.Add($"{Path.GetFileName(file)}: {line.Trim()}");
                }
            }
        }

        Assert.Equal(
        [
            "BenchCommand.cs: var executor = new StatelessExecutor(model.Weights, model.Parameters);",
            "LlamaModel.cs: var tokens = Weights.NativeHandle.Tokenize(MakeTokenizable(text), addBos, parseSpecial, Encoding.UTF8);",
        ], found.Order(StringComparer.Ordinal));
        var bench = File.ReadAllText(Path.Combine(root.FullName, "src", "AgentHost", "Bench", "BenchCommand.cs"));
        Assert.Contains("executor.InferAsync(model.MakeTokenizable(prompt)", bench);
    }
}
