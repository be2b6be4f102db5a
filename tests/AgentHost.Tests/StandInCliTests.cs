using System.Text.Json;

namespace AgentHost.Tests;

/// <summary>The catalog's stand-in <c>stories260k-wide</c>, built on first use into a temp user cache.</summary>
public sealed class StandInCliTests : IDisposable
{
    private readonly string _cache = Directory.CreateTempSubdirectory("agenthost-standin-").FullName;

    public void Dispose() => Directory.Delete(_cache, recursive: true);

    [Fact]
    public async Task Generate_builds_stories260k_wide_on_first_use_and_writes_stories260ks_text()
    {
        var environment = new Dictionary<string, string>
        {
            ["AGENTHOST_AgentHost__CacheDir"] = _cache,
            ["AGENTHOST_AgentHost__Models__stories260k-wide__Threads"] = "1",
            ["AGENTHOST_AgentHost__Models__stories260k-wide__BatchThreads"] = "1",
        };
        string[] Generate(string model) => ["generate", "--model", model, "--prompt", "Once upon a time", "--max-tokens", "16", "--json"];

        var wide = await AgentHostProcess.RunAsync(Generate("stories260k-wide"), environment);
        var source = await AgentHostProcess.RunAsync(Generate("stories260k"), environment);

        Assert.True(wide.ExitCode == 0, wide.StdErr);
        Assert.Contains("building: 100%", wide.StdErr); // build progress on stderr, labelled as a build
        Assert.Equal(0, source.ExitCode);
        using var wideJson = JsonDocument.Parse(wide.StdOut);
        using var sourceJson = JsonDocument.Parse(source.StdOut);
        Assert.Equal(16, wideJson.RootElement.GetProperty("token_ids").GetArrayLength());
        Assert.Equal(sourceJson.RootElement.GetProperty("text").GetString(), wideJson.RootElement.GetProperty("text").GetString());
        Assert.Equal(Path.Combine(_cache, "stories260K-wide-768x3072x12.gguf"), wideJson.RootElement.GetProperty("model_path").GetString());
        Assert.True(File.Exists(Path.Combine(_cache, "stories260K-wide-768x3072x12.gguf.sha256")));
    }
}
