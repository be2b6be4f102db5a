using AgentHost.Llama.Tests.Support;

namespace AgentHost.Tests;

/// <summary>A catalog model found nowhere locally is downloaded (from a loopback server) with progress and a checksum check.</summary>
public sealed class DownloadCliTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("agenthost-download-").FullName;
    private readonly LoopbackHttpServer _server = LoopbackHttpServer.Serving(File.ReadAllBytes(Path.Combine(AgentHostProcess.ModelsDirectory, "stories260K.gguf")));

    public void Dispose()
    {
        _server.Dispose();
        Directory.Delete(_temp, recursive: true);
    }

    private string Cache => Path.Combine(_temp, "cache");

    private Dictionary<string, string> Environment(string? sha256 = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["AGENTHOST_MODELS_DIR"] = Path.Combine(_temp, "empty-models"),
            ["AGENTHOST_AgentHost__CacheDir"] = Cache,
            ["AGENTHOST_AgentHost__AllowDownload"] = "true",
            ["AGENTHOST_AgentHost__Models__stories260k__Url"] = _server.Url("stories260K.gguf").ToString(),
        };
        if (sha256 is not null)
            environment["AGENTHOST_AgentHost__Models__stories260k__Sha256"] = sha256;
        return environment;
    }

    [Fact]
    public async Task Generate_downloads_a_missing_model_with_progress_into_the_cache_then_uses_it()
    {
        Directory.CreateDirectory(Path.Combine(_temp, "empty-models"));
        var first = await AgentHostProcess.RunAsync(["generate", "--prompt", "Once upon a time", "--max-tokens", "8"], Environment());

        Assert.Equal(0, first.ExitCode);
        Assert.Contains("downloading: 100%", first.StdErr);
        Assert.StartsWith(", there was a little girl", first.StdOut);
        Assert.Equal(["stories260K.gguf"], Directory.GetFiles(Cache).Select(Path.GetFileName));
        Assert.Equal(1, _server.RequestCount);

        var second = await AgentHostProcess.RunAsync(["generate", "--prompt", "Once upon a time", "--max-tokens", "8"], Environment());
        Assert.Equal(0, second.ExitCode);
        Assert.DoesNotContain("downloading", second.StdErr);
        Assert.Equal(1, _server.RequestCount);
    }

    [Fact]
    public async Task A_download_with_the_wrong_checksum_is_one_clear_error_and_leaves_nothing_behind()
    {
        var result = await AgentHostProcess.RunAsync(["generate", "--prompt", "Once"], Environment(sha256: new string('0', 64)));

        Assert.Equal(1, result.ExitCode);
        var error = result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
        Assert.StartsWith("error: Downloading", error);
        Assert.Contains("SHA-256", error);
        Assert.DoesNotContain("   at ", result.StdErr);
        Assert.Empty(Directory.Exists(Cache) ? Directory.GetFiles(Cache) : []);
    }
}
