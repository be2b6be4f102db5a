using System.Net;
using System.Security.Cryptography;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests.Support;

namespace AgentHost.Llama.Tests.Models;

public sealed class ModelResolverTests : IDisposable
{
    private const string ModelFile = "stories260K.gguf";
    private static readonly TimeSpan _bound = TimeSpan.FromSeconds(30);
    private static readonly Lazy<byte[]> _modelBytes = new(() => File.ReadAllBytes(TestModels.Stories260K));
    private static readonly Lazy<string> _modelSha256 = new(() => Convert.ToHexStringLower(SHA256.HashData(_modelBytes.Value)));

    private readonly TempFolder _temp = new();
    private readonly HttpClient _httpClient = new() { Timeout = _bound };
    private readonly Dictionary<string, string?> _environment = new(StringComparer.Ordinal);
    private readonly string _modelsDir;
    private readonly string _cacheDir;

    public ModelResolverTests()
    {
        _modelsDir = _temp.Combine("models");
        _cacheDir = _temp.Combine("cache");
        Directory.CreateDirectory(_modelsDir);
        Directory.CreateDirectory(_cacheDir);
        // The real environment never leaks in: the resolver reads only this dictionary.
        _environment["HOME"] = _temp.Combine("home");
    }

    public void Dispose()
    {
        _httpClient.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task Explicit_path_wins_over_the_catalog_folders_and_gets_default_settings()
    {
        PlaceModel(_modelsDir);
        PlaceModel(_cacheDir);
        var explicitPath = PlaceModel(_temp.Combine("elsewhere"), "mine.gguf");

        var model = await CreateResolver(Options()).ResolveAsync(explicitPath, null, CancellationToken.None);

        Assert.Equal(ModelSource.ExplicitPath, model.Source);
        Assert.Equal(explicitPath, model.Path);
        Assert.Equal("mine.gguf", model.Name);
        Assert.Equal(0, model.Settings.ContextSize);
    }

    [Fact]
    public async Task Explicit_path_named_like_a_catalog_file_takes_that_entrys_settings()
    {
        var explicitPath = PlaceModel(_temp.Combine("elsewhere"));
        var options = Options();

        var model = await CreateResolver(options).ResolveAsync(explicitPath, null, CancellationToken.None);

        Assert.Equal(ModelSource.ExplicitPath, model.Source);
        Assert.Equal("stories", model.Name);
        Assert.Equal(123, model.Settings.ContextSize);
        Assert.NotSame(options.Models["stories"], model.Settings);
    }

    [Fact]
    public async Task Relative_explicit_path_resolves_to_a_full_path()
    {
        var explicitPath = PlaceModel(_temp.Combine("elsewhere"), "mine.gguf");
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, explicitPath);

        var model = await CreateResolver(Options()).ResolveAsync(relative, null, CancellationToken.None);

        Assert.Equal(explicitPath, model.Path);
        Assert.True(Path.IsPathFullyQualified(model.Path));
    }

    [Fact]
    public async Task Relative_paths_missing_from_the_current_directory_resolve_against_the_base_directories()
    {
        var contentRoot = _temp.Combine("app");
        var explicitPath = PlaceModel(Path.Combine(contentRoot, "local"), "mine.gguf");
        PlaceModel(Path.Combine(contentRoot, "models"));
        var options = Options();
        options.ModelsDir = "models";
        var resolver = new ModelResolver(options, null, new ModelDownloader(_httpClient), name => _environment.GetValueOrDefault(name),
            baseDirectories: [_temp.Combine("nowhere"), contentRoot]);

        var byPath = await resolver.ResolveAsync(Path.Combine("local", "mine.gguf"), null, CancellationToken.None);
        var byName = await resolver.ResolveAsync("stories", null, CancellationToken.None);

        Assert.Equal(explicitPath, byPath.Path);
        Assert.Equal((Path.Combine(contentRoot, "models", ModelFile), ModelSource.ModelsDir), (byName.Path, byName.Source));
        // Found nowhere, a relative path is reported under the current directory, as before.
        var missing = await Assert.ThrowsAsync<AgentHostException>(() => resolver.ResolveAsync(Path.Combine("local", "other.gguf"), null, CancellationToken.None));
        Assert.Contains(Path.GetFullPath(Path.Combine("local", "other.gguf")), missing.Message);
    }

    [Fact]
    public async Task Explicit_path_that_does_not_exist_is_ModelNotFound()
    {
        var missing = _temp.Combine("nowhere", "missing.gguf");

        var ex = await Assert.ThrowsAsync<AgentHostException>(() => CreateResolver(Options()).ResolveAsync(missing, null, CancellationToken.None));

        Assert.Equal(ErrorKind.ModelNotFound, ex.Kind);
        Assert.Equal($"Model file '{missing}' does not exist.", ex.Message);
    }

    [Fact]
    public async Task A_gguf_file_name_is_a_path_even_without_a_separator()
    {
        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            CreateResolver(Options()).ResolveAsync("no-such-model-8d1f.gguf", null, CancellationToken.None));

        Assert.Equal(ErrorKind.ModelNotFound, ex.Kind);
        Assert.Equal($"Model file '{Path.GetFullPath("no-such-model-8d1f.gguf")}' does not exist.", ex.Message);
    }

    [Fact]
    public async Task Models_folder_beats_the_cache()
    {
        var inModelsDir = PlaceModel(_modelsDir);
        PlaceModel(_cacheDir);

        var model = await CreateResolver(Options()).ResolveAsync("stories", null, CancellationToken.None);

        Assert.Equal(ModelSource.ModelsDir, model.Source);
        Assert.Equal(inModelsDir, model.Path);
        Assert.Equal("stories", model.Name);
        Assert.Equal(123, model.Settings.ContextSize);
    }

    [Fact]
    public async Task Environment_models_folder_beats_the_configured_one()
    {
        var fromEnvironment = _temp.Combine("env-models");
        var inEnvironmentDir = PlaceModel(fromEnvironment);
        PlaceModel(_modelsDir);
        _environment[AgentHostOptions.ModelsDirVariable] = fromEnvironment;

        var resolver = CreateResolver(Options());
        var model = await resolver.ResolveAsync("stories", null, CancellationToken.None);

        Assert.Equal(ModelSource.ModelsDir, model.Source);
        Assert.Equal(inEnvironmentDir, model.Path);
        Assert.Equal(fromEnvironment, resolver.ModelsDirectory);
    }

    [Fact]
    public async Task Cache_is_used_when_the_models_folder_lacks_the_file()
    {
        var inCache = PlaceModel(_cacheDir);

        var model = await CreateResolver(Options()).ResolveAsync("stories", null, CancellationToken.None);

        Assert.Equal(ModelSource.Cache, model.Source);
        Assert.Equal(inCache, model.Path);
    }

    [Fact]
    public async Task Cache_defaults_to_XDG_CACHE_HOME_then_the_home_folder()
    {
        var options = Options();
        options.CacheDir = null;
        var resolver = CreateResolver(options);
        Assert.Equal(Path.Combine(_temp.Combine("home"), ".cache", "agenthost", "models"), resolver.CacheDirectory);

        var xdg = _temp.Combine("xdg");
        _environment["XDG_CACHE_HOME"] = xdg;
        var inXdgCache = PlaceModel(Path.Combine(xdg, "agenthost", "models"));

        var model = await resolver.ResolveAsync("stories", null, CancellationToken.None);

        Assert.Equal(ModelSource.Cache, model.Source);
        Assert.Equal(inXdgCache, model.Path);
    }

    [Fact]
    public async Task Catalog_names_are_case_insensitive_and_null_takes_the_default_model()
    {
        PlaceModel(_modelsDir);
        var resolver = CreateResolver(Options());

        var byOtherCase = await resolver.ResolveAsync("STORIES", null, CancellationToken.None);
        var byDefault = await resolver.ResolveAsync(null, null, CancellationToken.None);

        Assert.Equal("stories", byOtherCase.Name);
        Assert.Equal("stories", byDefault.Name);
        Assert.Equal(byOtherCase.Path, byDefault.Path);
    }

    [Fact]
    public async Task Download_comes_last_and_a_second_resolve_finds_the_file_in_the_cache_without_a_request()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);
        var options = Options(url: server.Url(ModelFile).ToString(), sha256: _modelSha256.Value);
        var resolver = CreateResolver(options);
        var progress = new RecordingProgress<DownloadProgress>();

        var downloaded = await resolver.ResolveAsync("stories", progress, CancellationToken.None).WaitAsync(_bound);

        Assert.Equal(ModelSource.Downloaded, downloaded.Source);
        Assert.Equal(Path.Combine(_cacheDir, ModelFile), downloaded.Path);
        Assert.Equal(_modelBytes.Value, await File.ReadAllBytesAsync(downloaded.Path));
        Assert.Equal(123, downloaded.Settings.ContextSize);
        Assert.Equal(_modelBytes.Value.Length, progress.Reports[^1].BytesReceived);
        Assert.Equal(1, server.RequestCount);
        Assert.Equal([ModelFile], Directory.GetFiles(_cacheDir).Select(Path.GetFileName));

        var again = await resolver.ResolveAsync("stories", null, CancellationToken.None).WaitAsync(_bound);

        Assert.Equal(ModelSource.Cache, again.Source);
        Assert.Equal(downloaded.Path, again.Path);
        Assert.Equal(1, server.RequestCount);
    }

    [Fact]
    public async Task A_download_without_a_catalog_checksum_records_its_digest_and_a_changed_file_is_then_refused()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);
        var resolver = CreateResolver(Options(url: server.Url(ModelFile).ToString()));

        var downloaded = await resolver.ResolveAsync("stories", null, CancellationToken.None).WaitAsync(_bound);

        Assert.Equal($"{_modelSha256.Value}  {ModelFile}\n", await File.ReadAllTextAsync(downloaded.Path + ".sha256"));
        Assert.Equal(ModelSource.Cache, (await resolver.ResolveAsync("stories", null, CancellationToken.None).WaitAsync(_bound)).Source);
        Assert.Equal([new LocalModel("stories", downloaded.Path, _modelBytes.Value.Length, ModelSource.Cache, LocalDigest.RecordedOnFirstUse)], resolver.ListLocal());

        // Still a readable GGUF file (only tensor data changes), so only the recorded digest can tell.
        var changed = _modelBytes.Value.ToArray();
        changed[^1] ^= 0x01;
        await File.WriteAllBytesAsync(downloaded.Path, changed);
        var changedSha256 = Convert.ToHexStringLower(SHA256.HashData(changed));

        var ex = await Assert.ThrowsAsync<AgentHostException>(() => resolver.ResolveAsync("stories", null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.InvalidModelFile, ex.Kind);
        Assert.Contains(changedSha256, ex.Message, StringComparison.Ordinal);
        Assert.Contains(_modelSha256.Value, ex.Message, StringComparison.Ordinal);
        Assert.Contains("models rm stories", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, server.RequestCount);

        Assert.Equal([downloaded.Path, downloaded.Path + ".sha256"], resolver.RemoveCached("stories"));
        Assert.Empty(Directory.GetFileSystemEntries(_cacheDir));
        Assert.Equal(ErrorKind.ModelNotFound, Assert.Throws<AgentHostException>(() => resolver.RemoveCached("stories")).Kind);
    }

    [Fact]
    public async Task A_download_with_a_catalog_checksum_records_no_digest_and_lists_as_verified()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);
        var resolver = CreateResolver(Options(url: server.Url(ModelFile).ToString(), sha256: _modelSha256.Value));

        var (model, sha256) = await resolver.PullAsync("stories", null, CancellationToken.None).WaitAsync(_bound);

        Assert.Equal(_modelSha256.Value, sha256);
        Assert.False(File.Exists(model.Path + ".sha256"));
        Assert.Equal(LocalDigest.Verified, Assert.Single(resolver.ListLocal()).Digest);
    }

    [Fact]
    public async Task A_broken_file_in_the_cache_is_removed_and_downloaded_again()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);
        var broken = Path.Combine(_cacheDir, ModelFile);
        File.WriteAllText(broken, "<html>not a model</html>");
        var resolver = CreateResolver(Options(url: server.Url(ModelFile).ToString()));

        var model = await resolver.ResolveAsync("stories", null, CancellationToken.None).WaitAsync(_bound);

        Assert.Equal(ModelSource.Downloaded, model.Source);
        Assert.Equal(_modelBytes.Value, await File.ReadAllBytesAsync(broken));
        Assert.Equal(1, server.RequestCount);
    }

    [Fact]
    public async Task A_broken_file_in_the_cache_without_a_download_is_removed_and_reported()
    {
        File.WriteAllText(Path.Combine(_cacheDir, ModelFile), "GGUF but nothing more");

        var ex = await Assert.ThrowsAsync<AgentHostException>(() => CreateResolver(Options()).ResolveAsync("stories", null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.ModelNotFound, ex.Kind);
        Assert.Empty(Directory.GetFileSystemEntries(_cacheDir));
    }

    [Fact]
    public async Task Failed_download_is_DownloadFailed_and_leaves_the_cache_empty()
    {
        using var server = LoopbackHttpServer.Answering(HttpStatusCode.NotFound);
        var resolver = CreateResolver(Options(url: server.Url(ModelFile).ToString()));

        var ex = await Assert.ThrowsAsync<AgentHostException>(() => resolver.ResolveAsync("stories", null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.DownloadFailed, ex.Kind);
        Assert.Contains("404", ex.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(_cacheDir));
    }

    [Fact]
    public async Task Unknown_name_lists_the_known_models()
    {
        var options = Options();
        options.Models["alpha"] = new ModelSettings { File = "alpha.gguf" };

        var ex = await Assert.ThrowsAsync<AgentHostException>(() => CreateResolver(options).ResolveAsync("nosuch", null, CancellationToken.None));

        Assert.Equal(ErrorKind.ModelNotFound, ex.Kind);
        Assert.Equal("Unknown model 'nosuch'. Known models: alpha, stories. Pass a catalog name, a path to a .gguf file or a Hugging Face reference (hf:OWNER/REPO:QUANT).", ex.Message);
    }

    [Fact]
    public async Task Disabled_downloads_give_ModelNotFound_naming_the_searched_places_and_make_no_request()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);
        var options = Options(url: server.Url(ModelFile).ToString());
        options.AllowDownload = false;

        var ex = await Assert.ThrowsAsync<AgentHostException>(() => CreateResolver(options).ResolveAsync("stories", null, CancellationToken.None));

        Assert.Equal(ErrorKind.ModelNotFound, ex.Kind);
        Assert.Contains($"'{_modelsDir}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"'{_cacheDir}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(ModelFile, ex.Message, StringComparison.Ordinal);
        Assert.Contains("downloads are disabled", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, server.RequestCount);
        Assert.Empty(Directory.GetFileSystemEntries(_cacheDir));
    }

    [Fact]
    public async Task Missing_url_gives_ModelNotFound_saying_there_is_no_download_URL()
    {
        var ex = await Assert.ThrowsAsync<AgentHostException>(() => CreateResolver(Options()).ResolveAsync("stories", null, CancellationToken.None));

        Assert.Equal(ErrorKind.ModelNotFound, ex.Kind);
        Assert.Contains($"'{_cacheDir}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("no download URL", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Catalog_file_with_a_relative_folder_is_rejected()
    {
        var options = Options();
        options.Models["stories"].File = "../escape.gguf";

        var ex = await Assert.ThrowsAsync<AgentHostException>(() => CreateResolver(options).ResolveAsync("stories", null, CancellationToken.None));

        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
    }

    [Fact]
    public void Describe_says_where_a_model_is_or_why_not_without_downloading()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);
        var url = server.Url(ModelFile).ToString();
        var options = Options(url: url);
        options.Models["local"] = new ModelSettings { File = "local.gguf" };
        options.Models["nourl"] = new ModelSettings { File = "nourl.gguf" };
        var inModelsDir = PlaceModel(_modelsDir, "local.gguf");
        var resolver = CreateResolver(options);

        var local = resolver.Describe("LOCAL");
        var downloadable = resolver.Describe("stories");
        var unreachable = resolver.Describe("nourl");

        Assert.Equal(new ModelLocation("local", local.Settings, inModelsDir, ModelSource.ModelsDir, "models folder"), local);
        Assert.True(local.IsAvailable);
        Assert.Null(downloadable.Path);
        Assert.Equal($"not found; would download from {url}", downloadable.Status);
        Assert.Equal("not found; no download URL", unreachable.Status);
        Assert.False(unreachable.IsAvailable);
        Assert.Equal(0, server.RequestCount);

        options.AllowDownload = false;
        Assert.Equal("not found; downloads are disabled", resolver.Describe("stories").Status);

        Assert.Equal(["local", "nourl", "stories"], resolver.DescribeAll().Select(l => l.Name));
        var unknown = Assert.Throws<AgentHostException>(() => resolver.Describe("nosuch"));
        Assert.Equal(ErrorKind.ModelNotFound, unknown.Kind);
    }

    [Fact]
    public async Task Missing_models_folder_from_the_environment_is_an_error_naming_it_not_a_download()
    {
        PlaceModel(_cacheDir);   // even a cached copy is not a silent fallback: the setting is wrong
        var missing = _temp.Combine("no-such-models");
        _environment[AgentHostOptions.ModelsDirVariable] = missing;

        var error = await Assert.ThrowsAsync<AgentHostException>(() =>
            CreateResolver(Options(url: "http://127.0.0.1:9/stories260K.gguf")).ResolveAsync("stories", null, CancellationToken.None));

        Assert.Equal(ErrorKind.ModelNotFound, error.Kind);
        Assert.Contains($"'{missing}'", error.Message, StringComparison.Ordinal);
        Assert.Contains(AgentHostOptions.ModelsDirVariable, error.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_models_folder_from_configuration_is_an_error_naming_the_setting()
    {
        var options = Options(url: "http://127.0.0.1:9/stories260K.gguf");
        options.ModelsDir = _temp.Combine("typo");

        var error = await Assert.ThrowsAsync<AgentHostException>(() => CreateResolver(options).ResolveAsync("stories", null, CancellationToken.None));

        Assert.Equal(ErrorKind.ModelNotFound, error.Kind);
        Assert.Contains($"'{options.ModelsDir}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("AgentHost:ModelsDir", error.Message, StringComparison.Ordinal);
    }

    private AgentHostOptions Options(string? url = null, string? sha256 = null) => new()
    {
        DefaultModel = "stories",
        ModelsDir = _modelsDir,
        CacheDir = _cacheDir,
        Models = new(StringComparer.OrdinalIgnoreCase)
        {
            ["stories"] = new ModelSettings { File = ModelFile, Url = url, Sha256 = sha256, ContextSize = 123 },
        },
    };

    private ModelResolver CreateResolver(AgentHostOptions options) =>
        new(options, logger: null, new ModelDownloader(_httpClient), name => _environment.GetValueOrDefault(name));

    /// <summary>Copies the real test model into <paramref name="folder"/> and returns its full path.</summary>
    private static string PlaceModel(string folder, string fileName = ModelFile)
    {
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, fileName);
        File.WriteAllBytes(path, _modelBytes.Value);
        return path;
    }
}
