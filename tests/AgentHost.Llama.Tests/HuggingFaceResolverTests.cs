using System.Net;
using System.Security.Cryptography;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests.Support;

namespace AgentHost.Llama.Tests;

/// <summary><c>hf:</c> references resolved against a fake hub on loopback serving the real test model.</summary>
public sealed class HuggingFaceResolverTests : IDisposable
{
    private const string Repository = "someone/Stories-GGUF";
    private const string QuantFile = "stories260K-Q4_K_M.gguf";
    private static readonly TimeSpan _bound = TimeSpan.FromSeconds(30);
    private static readonly Lazy<byte[]> _modelBytes = new(() => File.ReadAllBytes(TestModels.Stories260K));

    private readonly TempFolder _temp = new();
    private readonly HttpClient _httpClient = new() { Timeout = _bound };
    private readonly Dictionary<string, string?> _environment = new(StringComparer.Ordinal);
    private readonly FakeHuggingFace _hub;

    public HuggingFaceResolverTests()
    {
        _environment["HOME"] = _temp.Combine("home");
        _hub = new FakeHuggingFace(new Dictionary<string, IReadOnlyDictionary<string, byte[]>>
        {
            [Repository] = new Dictionary<string, byte[]>
            {
                ["README.md"] = "# stories"u8.ToArray(),
                [QuantFile] = _modelBytes.Value,
                ["stories260K-Q8_0.gguf"] = _modelBytes.Value,
                ["mmproj-stories260K-Q4_K_M.gguf"] = "not a model"u8.ToArray(),
            },
        });
    }

    private string CacheDir => _temp.Combine("cache");

    public void Dispose()
    {
        _hub.Dispose();
        _httpClient.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task A_quantisation_is_chosen_from_the_file_list_downloaded_under_its_repository_and_found_in_the_cache_next_time()
    {
        var resolver = CreateResolver(Options());

        var model = await resolver.ResolveAsync($"hf:{Repository}:Q4_K_M").WaitAsync(_bound);

        var cached = Path.Combine(CacheDir, "someone--Stories-GGUF--" + QuantFile);
        Assert.Equal(($"hf:{Repository}/{QuantFile}", cached, ModelSource.Downloaded), (model.Name, model.Path, model.Source));
        Assert.Equal(_modelBytes.Value, await File.ReadAllBytesAsync(cached));
        Assert.Equal((1, 1), (_hub.FileListRequests, _hub.FileRequests));
        // Trust on first use, as for a catalog entry without a SHA-256.
        Assert.Equal($"{Convert.ToHexStringLower(SHA256.HashData(_modelBytes.Value))}  {Path.GetFileName(cached)}\n", await File.ReadAllTextAsync(cached + ".sha256"));

        foreach (var again in new[] { $"hf:{Repository}:q4_k_m", $"hf:{Repository}", $"hf:{Repository}/{QuantFile}" })
        {
            var found = await resolver.ResolveAsync(again).WaitAsync(_bound);
            Assert.Equal((cached, ModelSource.Cache), (found.Path, found.Source));
        }
        Assert.Equal(2, _hub.Requests.Count);

        Assert.Equal([new LocalModel($"hf:{Repository}/{QuantFile}", cached, _modelBytes.Value.Length, ModelSource.Cache, LocalDigest.RecordedOnFirstUse)], resolver.ListLocal());
        Assert.Equal([cached, cached + ".sha256"], resolver.RemoveCached($"hf:{Repository}:Q4_K_M"));
        Assert.Empty(Directory.GetFiles(CacheDir));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_reference_to_a_catalog_entrys_file_is_that_entry_with_its_checksum_and_no_file_list_request(bool urlIsReference)
    {
        var options = Options();
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(_modelBytes.Value));
        options.Models["stories-q4"] = new ModelSettings
        {
            File = "stories-q4.gguf",
            Url = urlIsReference ? $"hf:{Repository}/{QuantFile}" : new Uri(_hub.Endpoint, $"{Repository}/resolve/main/{QuantFile}").AbsoluteUri,
            Sha256 = sha256,
            ContextSize = 64,
        };
        var resolver = CreateResolver(options);

        var model = await resolver.ResolveAsync($"hf:{Repository}:Q4_K_M").WaitAsync(_bound);

        Assert.Equal(("stories-q4", Path.Combine(CacheDir, "stories-q4.gguf"), 64), (model.Name, model.Path, model.Settings.ContextSize));
        Assert.Equal((0, 1), (_hub.FileListRequests, _hub.FileRequests));
        Assert.False(File.Exists(model.Path + ".sha256"));
        Assert.Equal(LocalDigest.Verified, (await resolver.InspectAsync($"hf:{Repository}/{QuantFile}").WaitAsync(_bound)).Digest);
    }

    [Fact]
    public async Task A_catalog_url_given_as_a_reference_downloads_from_the_configured_endpoint_a_mirror_say()
    {
        var options = Options();
        options.Models["mirrored"] = new ModelSettings { File = "mirrored.gguf", Url = $"hf:{Repository}/{QuantFile}", ContextSize = 64 };
        options.Models["no-file"] = new ModelSettings { File = "no-file.gguf", Url = $"hf:{Repository}:Q4_K_M" };
        var resolver = CreateResolver(options);

        var model = await resolver.ResolveAsync("mirrored").WaitAsync(_bound);
        var error = await Assert.ThrowsAsync<AgentHostException>(() => resolver.ResolveAsync("no-file").WaitAsync(_bound));

        Assert.Equal((Path.Combine(CacheDir, "mirrored.gguf"), ModelSource.Downloaded), (model.Path, model.Source));
        Assert.Equal(_modelBytes.Value, await File.ReadAllBytesAsync(model.Path));
        Assert.Equal((0, 1), (_hub.FileListRequests, _hub.FileRequests));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("names no file", error.Message);
    }

    [Fact]
    public async Task The_token_goes_to_the_configured_endpoint_and_HF_TOKEN_wins_over_the_configuration_key()
    {
        var options = Options();
        options.HuggingFaceToken = "from-config";
        var fromConfig = new ModelResolver(options, getEnvironmentVariable: name => _environment.GetValueOrDefault(name));

        await fromConfig.InspectAsync($"hf:{Repository}:Q8_0").WaitAsync(_bound);
        _environment["HF_TOKEN"] = "from-environment";
        var model = await new ModelResolver(options, getEnvironmentVariable: name => _environment.GetValueOrDefault(name))
            .ResolveAsync($"hf:{Repository}:Q8_0").WaitAsync(_bound);

        Assert.Equal(ModelSource.Downloaded, model.Source);
        Assert.Equal(
            [($"/api/models/{Repository}", "Bearer from-config"), ($"/api/models/{Repository}", "Bearer from-environment"), ($"/{Repository}/resolve/main/stories260K-Q8_0.gguf", "Bearer from-environment")],
            _hub.Requests);
    }

    [Theory]
    [InlineData(HttpStatusCode.Unauthorized, ErrorKind.DownloadFailed, "HF_TOKEN")]
    [InlineData(HttpStatusCode.Forbidden, ErrorKind.DownloadFailed, "gated or private")]
    [InlineData(HttpStatusCode.NotFound, ErrorKind.ModelNotFound, "there is no repository someone/Stories-GGUF")]
    [InlineData(HttpStatusCode.ServiceUnavailable, ErrorKind.DownloadFailed, "HTTP 503")]
    public async Task A_refused_file_list_is_one_clear_error(HttpStatusCode status, ErrorKind kind, string says)
    {
        using var refusing = new FakeHuggingFace(new Dictionary<string, IReadOnlyDictionary<string, byte[]>>(), status);
        var options = Options();
        options.HuggingFaceEndpoint = refusing.Endpoint.AbsoluteUri;

        var error = await Assert.ThrowsAsync<AgentHostException>(() => CreateResolver(options).ResolveAsync($"hf:{Repository}:Q4_K_M").WaitAsync(_bound));

        Assert.Equal(kind, error.Kind);
        Assert.StartsWith($"hf:{Repository}:Q4_K_M: ", error.Message, StringComparison.Ordinal);
        Assert.Contains(says, error.Message, StringComparison.Ordinal);
        Assert.Single(refusing.Requests);
    }

    [Fact]
    public async Task A_missing_repository_on_a_hub_that_answers_404_for_unknown_paths_is_ModelNotFound()
    {
        var error = await Assert.ThrowsAsync<AgentHostException>(() => CreateResolver(Options()).ResolveAsync("hf:nobody/Nothing-GGUF:Q4_K_M").WaitAsync(_bound));

        Assert.Equal(ErrorKind.ModelNotFound, error.Kind);
        Assert.Contains("there is no repository nobody/Nothing-GGUF", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_file_missing_from_the_repository_is_the_downloads_404()
    {
        var error = await Assert.ThrowsAsync<AgentHostException>(() => CreateResolver(Options()).ResolveAsync($"hf:{Repository}/missing.gguf").WaitAsync(_bound));

        Assert.Equal(ErrorKind.DownloadFailed, error.Kind);
        Assert.Contains("HTTP 404", error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.Exists(CacheDir) ? Directory.GetFiles(CacheDir) : []);
    }

    [Fact]
    public async Task With_downloads_disabled_an_unsettled_quantisation_asks_nothing()
    {
        var options = Options();
        options.AllowDownload = false;

        var error = await Assert.ThrowsAsync<AgentHostException>(() => CreateResolver(options).ResolveAsync($"hf:{Repository}:Q4_K_M").WaitAsync(_bound));

        Assert.Equal(ErrorKind.ModelNotFound, error.Kind);
        Assert.Contains("downloads are disabled", error.Message, StringComparison.Ordinal);
        Assert.Empty(_hub.Requests);
    }

    [Fact]
    public void A_malformed_endpoint_is_a_clear_configuration_error()
    {
        var options = Options();
        options.HuggingFaceEndpoint = "huggingface.co";

        var error = Assert.Throws<AgentHostException>(options.Validate);

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.StartsWith("AgentHost:HuggingFaceEndpoint 'huggingface.co' is not an absolute http or https URL", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inspect_reads_the_local_files_header_and_says_what_a_missing_one_would_be()
    {
        var options = Options();
        var resolver = CreateResolver(options);

        Assert.Equal("not found; the repository's file list chooses the file", resolver.Describe($"hf:{Repository}:Q4_K_M").Status);
        var before = await resolver.InspectAsync($"hf:{Repository}:Q4_K_M").WaitAsync(_bound);
        Assert.Equal((false, LocalDigest.Unverified, (long?)null), (before.Location.IsAvailable, before.Digest, before.Size));
        Assert.Equal(new Uri(_hub.Endpoint, $"{Repository}/resolve/main/{QuantFile}"), before.Url);
        Assert.Equal(0, _hub.FileRequests);

        await resolver.ResolveAsync($"hf:{Repository}:Q4_K_M").WaitAsync(_bound);
        var after = await resolver.InspectAsync($"hf:{Repository}:Q4_K_M").WaitAsync(_bound);

        Assert.Equal((true, LocalDigest.RecordedOnFirstUse, (long?)_modelBytes.Value.Length), (after.Location.IsAvailable, after.Digest, after.Size));
        Assert.Equal(after.Location.Path, resolver.Describe($"hf:{Repository}:Q4_K_M").Path);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(_modelBytes.Value)), after.Sha256);
        Assert.Equal("llama", after.File!.Architecture);
        Assert.Equal(GgufFile.Read(TestModels.Stories260K).GetInteger("llama.context_length"), after.TrainedContext);
        Assert.Null(after.Problem);
    }

    private AgentHostOptions Options() => new()
    {
        CacheDir = CacheDir,
        HuggingFaceEndpoint = _hub.Endpoint.AbsoluteUri,
        Models = new(StringComparer.OrdinalIgnoreCase),
    };

    private ModelResolver CreateResolver(AgentHostOptions options) =>
        new(options, logger: null, new ModelDownloader(_httpClient) { RetryDelay = TimeSpan.FromMilliseconds(10) }, name => _environment.GetValueOrDefault(name));
}
