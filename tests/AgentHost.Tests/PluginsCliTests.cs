using System.Text.Json;

namespace AgentHost.Tests;

/// <summary>The <c>plugins</c> verb: the shipped plugins load from the build output, broken folders give one clear error.</summary>
public sealed class PluginsCliTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("agenthost-plugins-cli-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    [Fact]
    public async Task Lists_the_shipped_native_and_prompt_plugins()
    {
        // The process runs in the temp folder: plugins/prompts must resolve against appsettings.json's folder, not the working directory.
        var result = await AgentHostProcess.RunAsync(["plugins"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("", result.StdErr);
        var lines = result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
        Assert.Equal(["Math", "Time", "Text", "Writing"], lines.Where(l => !l.StartsWith(' ')).ToArray());
        Assert.Contains(lines, l => l.StartsWith("  Evaluate(expression)  Evaluates an arithmetic expression", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("  Summarize(input, max_sentences)  Summarises a text", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Json_lists_every_function_with_its_parameters()
    {
        var result = await AgentHostProcess.RunAsync(["plugins", "--json"]);

        Assert.Equal(0, result.ExitCode);
        using var json = JsonDocument.Parse(result.StdOut);
        var writing = json.RootElement.EnumerateArray().Single(p => p.GetProperty("name").GetString() == "Writing");
        var names = writing.GetProperty("functions").EnumerateArray().Select(f => f.GetProperty("name").GetString()!).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["ContinueStory", "Rewrite", "Summarize"], names);
    }

    [Fact]
    public async Task A_broken_prompt_folder_is_one_clear_error_naming_it()
    {
        var function = Path.Combine(_temp, "Broken", "Summarize");
        Directory.CreateDirectory(function);
        File.WriteAllText(Path.Combine(function, "skprompt.txt"), "user: {{ if input }} never ends");
        File.WriteAllText(Path.Combine(function, "config.json"), """{ "template_format": "scriban" }""");

        var result = await AgentHostProcess.RunAsync(["plugins"], new Dictionary<string, string> { ["AGENTHOST_Plugins__PromptDirectories__0"] = _temp });

        Assert.Equal(1, result.ExitCode);
        var error = Assert.Single(result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: Prompt plugin 'Broken', function 'Summarize': '{Path.Combine(function, "skprompt.txt")}' is not a valid 'scriban' template:", error);
        Assert.DoesNotContain("   at ", result.StdErr);
        Assert.Equal("", result.StdOut);
    }

    [Fact]
    public async Task An_unknown_native_plugin_is_one_clear_error()
    {
        var result = await AgentHostProcess.RunAsync(["plugins"], new Dictionary<string, string> { ["AGENTHOST_Plugins__Native__0"] = "Weather" });

        Assert.Equal(1, result.ExitCode);
        Assert.Equal("error: Unknown native plugin 'Weather' in Plugins:Native; available: Math, Time, Text.", result.StdErr.Trim());
    }

    [Fact]
    public async Task The_files_plugin_needs_an_existing_root()
    {
        var files = new Dictionary<string, string> { ["AGENTHOST_Plugins__Native__3"] = "Files" };
        var noRoot = await AgentHostProcess.RunAsync(["plugins"], files);
        Assert.Equal(1, noRoot.ExitCode);
        Assert.Equal("error: Plugins:Native lists Files but Plugins:FilesRoot is empty; set it to the folder the Files plugin may read.", noRoot.StdErr.Trim());

        files["AGENTHOST_Plugins__FilesRoot"] = Path.Combine(_temp, "missing");
        var missing = await AgentHostProcess.RunAsync(["plugins"], files);
        Assert.Equal(1, missing.ExitCode);
        Assert.Equal($"error: Plugins:FilesRoot '{Path.Combine(_temp, "missing")}' does not exist.", missing.StdErr.Trim());

        files["AGENTHOST_Plugins__FilesRoot"] = _temp;
        var ok = await AgentHostProcess.RunAsync(["plugins"], files);
        Assert.Equal(0, ok.ExitCode);
        Assert.Contains("\nFiles\n  ListFiles(path)", ok.StdOut.ReplaceLineEndings("\n"));
    }
}
