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
        Directory.CreateDirectory(Path.Combine(_temp, "empty-models"));   // a models folder that does not exist is an error
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
    [Fact]
    public async Task Models_pull_list_and_rm_manage_the_user_cache_through_the_real_cli()
    {
        Directory.CreateDirectory(Path.Combine(_temp, "empty-models"));
        var sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(AgentHostProcess.ModelsDirectory, "stories260K.gguf"))));
        var cached = Path.Combine(Cache, "stories260K.gguf");
        // Environment(sha256: "") clears the catalog's checksum: the first download's digest is recorded (trust on first use).

        var pull = await AgentHostProcess.RunAsync(["models", "pull", "stories260k"], Environment(sha256: ""));
        Assert.Equal(0, pull.ExitCode);
        Assert.Contains("downloading: 100%", pull.StdErr);
        Assert.Equal($"path: {cached}\nsha256: {sha256}\n", pull.StdOut.ReplaceLineEndings("\n"));
        Assert.Equal($"{sha256}  stories260K.gguf\n", File.ReadAllText(cached + ".sha256"));

        var again = await AgentHostProcess.RunAsync(["models", "pull", "stories260k"], Environment(sha256: ""));
        Assert.Equal(0, again.ExitCode);
        Assert.Contains(sha256, again.StdOut);
        Assert.Equal(1, _server.RequestCount);

        var list = await AgentHostProcess.RunAsync(["models", "list"], Environment(sha256: ""));
        Assert.Equal(0, list.ExitCode);
        var row = Assert.Single(list.StdOut.Split('\n'), l => l.StartsWith("stories260k ", StringComparison.Ordinal));
        Assert.Contains("1185376", row);
        Assert.Contains("recorded-on-first-use", row);
        Assert.EndsWith(cached, row.TrimEnd());

        var rm = await AgentHostProcess.RunAsync(["models", "rm", "stories260k"], Environment(sha256: ""));
        Assert.Equal(0, rm.ExitCode);
        Assert.Contains($"removed {cached}", rm.StdOut);
        Assert.Empty(Directory.GetFiles(Cache));

        var rmAgain = await AgentHostProcess.RunAsync(["models", "rm", "stories260k"], Environment(sha256: ""));
        Assert.Equal(1, rmAgain.ExitCode);
        Assert.StartsWith("error: The user cache", rmAgain.StdErr);

        var noName = await AgentHostProcess.RunAsync(["models", "pull"], Environment(sha256: ""));
        Assert.Equal(2, noName.ExitCode);
        Assert.Contains("needs NAME|URL", noName.StdErr);
    }

    [Fact]
    public async Task Models_pull_of_a_url_that_answers_403_is_one_clear_error_naming_HF_TOKEN()
    {
        using var forbidden = LoopbackHttpServer.Answering(System.Net.HttpStatusCode.Forbidden);

        var result = await AgentHostProcess.RunAsync(["models", "pull", forbidden.Url("gated/model.gguf").ToString()], Environment());

        Assert.Equal(1, result.ExitCode);
        var error = Assert.Single(result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.Contains("HTTP 403", error);
        Assert.Contains("HF_TOKEN", error);
        Assert.DoesNotContain("   at ", result.StdErr);
        Assert.Equal(1, forbidden.RequestCount);
    }
    [Fact]
    public async Task Two_processes_pulling_one_model_at_once_both_succeed_with_one_download()
    {
        Directory.CreateDirectory(Path.Combine(_temp, "empty-models"));
        var bytes = File.ReadAllBytes(Path.Combine(AgentHostProcess.ModelsDirectory, "stories260K.gguf"));
        using var slow = new LoopbackHttpServer(async (context, stopping) =>
        {
            context.Response.ContentLength64 = bytes.Length;
            var chunk = bytes.Length / 20 + 1;
            for (var offset = 0; offset < bytes.Length; offset += chunk)
            {
                await context.Response.OutputStream.WriteAsync(bytes.AsMemory(offset, Math.Min(chunk, bytes.Length - offset)), stopping);
                await Task.Delay(150, stopping); // about 3 s in all: the other process starts while this one downloads
            }
            context.Response.Close();
        });
        var environment = Environment();
        environment["AGENTHOST_AgentHost__Models__stories260k__Url"] = slow.Url("stories260K.gguf").ToString();

        var results = await Task.WhenAll(
            AgentHostProcess.RunAsync(["models", "pull", "stories260k"], environment),
            AgentHostProcess.RunAsync(["models", "pull", "stories260k"], environment));

        Assert.All(results, r => Assert.Equal(0, r.ExitCode));
        Assert.Equal(results[0].StdOut, results[1].StdOut);
        Assert.Contains("sha256: 270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d", results[0].StdOut);
        Assert.Single(results, r => r.StdErr.Contains("downloading: 100%", StringComparison.Ordinal));
        Assert.Equal(1, slow.RequestCount);
        Assert.Equal(["stories260K.gguf"], Directory.GetFiles(Cache).Select(Path.GetFileName));
    }
}
