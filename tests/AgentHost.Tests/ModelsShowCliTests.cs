using System.Text.Json;
using AgentHost.Llama.Tests.Support;

namespace AgentHost.Tests;

/// <summary><c>models show</c> on the real test models and the catalog, and <c>hf:</c> references through the real CLI against a fake hub.</summary>
public sealed class ModelsShowCliTests : IDisposable
{
    private const string Repository = "someone/Stories-GGUF";
    private const string QuantFile = "stories260K-Q4_K_M.gguf";
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly string _stories = Path.Combine(AgentHostProcess.ModelsDirectory, "stories260K.gguf");

    private static Dictionary<string, string> Show(string[] lines) =>
        lines.Where(l => l.Contains(':', StringComparison.Ordinal))
            .ToDictionary(l => l[..l.IndexOf(':', StringComparison.Ordinal)], l => l[(l.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim());

    [Fact]
    public async Task Show_of_a_local_model_reads_its_file_and_names_what_will_be_used()
    {
        var result = await AgentHostProcess.RunAsync(["models", "show", "stories260k"]);

        Assert.Equal(0, result.ExitCode);
        var show = Show(result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("stories260k", show["name"]);
        Assert.Equal($"yes, models folder: {_stories}", show["local"]);
        Assert.Equal("1,185,376 bytes (1.2 MB)", show["size"]);
        Assert.Equal("pinned by the catalog: 270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d (checked when downloaded)", show["digest"]);
        Assert.Equal($"2048 tokens (catalog; trained with {TrainedContext()})", show["context size"]);
        Assert.Equal("built-in plain (catalog; the GGUF's own template is not used: the model has no chat template)", show["chat format"]);
        Assert.Equal("generic", show["tool calls"]);
        Assert.Equal("MIT", show["licence"]);
        Assert.Equal("", result.StdErr);
    }

    [Fact]
    public async Task The_catalogs_chat_format_wins_over_the_detected_one_and_brings_its_tool_call_format()
    {
        var result = await AgentHostProcess.RunAsync(["models", "show", "stories260k", "--json"],
            new Dictionary<string, string> { ["AGENTHOST_AgentHost__Models__stories260k__ChatFormat"] = "chatml" });

        Assert.Equal(0, result.ExitCode);
        var json = JsonDocument.Parse(result.StdOut).RootElement;
        Assert.Equal(("chatml", "catalog", "plain", "hermes"), (json.GetProperty("chat_format").GetString(), json.GetProperty("chat_format_source").GetString(),
            json.GetProperty("detected_chat_format").GetString(), json.GetProperty("tool_call_format").GetString()));
        Assert.Equal(("catalog", "chatml", "the model has no chat template"), (json.GetProperty("chat_template_source").GetString(), json.GetProperty("chat_family").GetString(),
            json.GetProperty("chat_template_problem").GetString()));
        Assert.Equal((true, _stories, 1185376L, "verified"), (json.GetProperty("local").GetBoolean(), json.GetProperty("path").GetString(),
            json.GetProperty("size").GetInt64(), json.GetProperty("digest").GetString()));
    }

    private const string ChatMlTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private string StoriesWithTemplate(string template)
        => CraftedModel.Write(_stories, Path.Combine(_temp.Path, $"templated-{Guid.NewGuid():N}.gguf"), m => m["tokenizer.chat_template"] = template);

    [Fact]
    public async Task A_file_with_a_jinja_template_uses_the_ggufs_own_template_and_the_tool_call_syntax_it_gets()
    {
        var path = StoriesWithTemplate(ChatMlTemplate);

        var text = await AgentHostProcess.RunAsync(["models", "show", path]);
        var json = await AgentHostProcess.RunAsync(["models", "show", path, "--json"]);

        Assert.Equal(0, text.ExitCode);
        var show = Show(text.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("the GGUF's own template (family chatml)", show["chat format"]);
        Assert.Equal("hermes", show["tool calls"]);   // the template writes no tools: the family's built-in syntax is used
        using var document = JsonDocument.Parse(json.StdOut);
        var root = document.RootElement;
        Assert.Equal(("gguf", "gguf", "chatml", "hermes"), (root.GetProperty("chat_format").GetString(), root.GetProperty("chat_template_source").GetString(),
            root.GetProperty("chat_family").GetString(), root.GetProperty("tool_call_format").GetString()));
    }

    [Fact]
    public async Task A_template_that_is_only_a_name_gives_the_built_in_format_and_says_why()
    {
        var path = StoriesWithTemplate("chatml");

        var result = await AgentHostProcess.RunAsync(["models", "show", path, "--json"]);

        Assert.Equal(0, result.ExitCode);
        using var document = JsonDocument.Parse(result.StdOut);
        var root = document.RootElement;
        Assert.Equal(("chatml", "built-in", "hermes"), (root.GetProperty("chat_format").GetString(), root.GetProperty("chat_template_source").GetString(),
            root.GetProperty("tool_call_format").GetString()));
        Assert.Equal("the model's chat template is only a name ('chatml')", root.GetProperty("chat_template_problem").GetString());
    }

    [Fact]
    public async Task Show_of_a_path_detects_everything_from_the_file()
    {
        var result = await AgentHostProcess.RunAsync(["models", "show", Path.Combine(AgentHostProcess.ModelsDirectory, "TinyStories-656K-Q8_0.gguf")]);

        Assert.Equal(0, result.ExitCode);
        var show = Show(result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("tinystories656k", show["name"]);
        Assert.Equal("built-in plain (the GGUF's own template is not used: the model has no chat template; family detected from the architecture llama)", show["chat format"]);
        Assert.Equal("512 tokens (catalog; trained with 512)", show["context size"]);
        Assert.Equal("not stated (see the model's page)", show["licence"]);
    }

    [Fact]
    public async Task Show_of_a_catalog_model_not_yet_local_gives_its_url_size_formats_and_licence_without_downloading()
    {
        var result = await AgentHostProcess.RunAsync(["models", "show", "qwen2.5-1.5b"]);

        Assert.Equal(0, result.ExitCode);
        var show = Show(result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("no, not found; downloads are disabled", show["local"]);
        Assert.Equal("https://huggingface.co/Qwen/Qwen2.5-1.5B-Instruct-GGUF/resolve/main/qwen2.5-1.5b-instruct-q4_k_m.gguf", show["url"]);
        Assert.Equal("about 1.12 GB (catalog)", show["size"]);
        Assert.Equal("none yet: recorded on first download (trust on first use)", show["digest"]);
        Assert.Equal("8192 tokens (catalog)", show["context size"]);
        // Real models are written with their GGUF's own template: which one is known once the file is.
        Assert.Equal("the GGUF's own template or a built-in one, decided once the file is local", show["chat format"]);
        Assert.Equal("as the chat format's, once it is known", show["tool calls"]);
        Assert.Equal("Apache-2.0", show["licence"]);
    }

    [Fact]
    public async Task Hf_references_pull_show_list_and_rm_through_the_real_cli()
    {
        var bytes = File.ReadAllBytes(_stories);
        using var hub = new FakeHuggingFace(new Dictionary<string, IReadOnlyDictionary<string, byte[]>>
        {
            [Repository] = new Dictionary<string, byte[]> { [QuantFile] = bytes, ["stories260K-Q8_0.gguf"] = bytes },
        });
        var cache = _temp.Combine("cache");
        var environment = new Dictionary<string, string>
        {
            ["AGENTHOST_AgentHost__CacheDir"] = cache,
            ["AGENTHOST_AgentHost__AllowDownload"] = "true",
            ["AGENTHOST_AgentHost__HuggingFaceEndpoint"] = hub.Endpoint.AbsoluteUri,
        };
        var cached = Path.Combine(cache, "someone--Stories-GGUF--" + QuantFile);

        var pull = await AgentHostProcess.RunAsync(["models", "pull", $"hf:{Repository}:Q4_K_M"], environment);
        Assert.Equal(0, pull.ExitCode);
        Assert.StartsWith($"path: {cached}\nsha256: 270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d", pull.StdOut.ReplaceLineEndings("\n"));

        var show = await AgentHostProcess.RunAsync(["models", "show", $"hf:{Repository}:Q4_K_M"], environment);
        Assert.Equal(0, show.ExitCode);
        var fields = Show(show.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal($"hf:{Repository}/{QuantFile}", fields["name"]);
        Assert.Equal($"yes, user cache: {cached}", fields["local"]);
        Assert.StartsWith("recorded on first use: 270cba1b", fields["digest"], StringComparison.Ordinal);
        Assert.Equal(new Uri(hub.Endpoint, $"{Repository}/resolve/main/{QuantFile}").AbsoluteUri, fields["url"]);

        var generate = await AgentHostProcess.RunAsync(["generate", "--model", $"hf:{Repository}", "--prompt", "Once upon a time", "--max-tokens", "4"], environment);
        Assert.Equal(0, generate.ExitCode);
        Assert.StartsWith(", there was", generate.StdOut, StringComparison.Ordinal);

        var list = await AgentHostProcess.RunAsync(["models", "list"], environment);
        Assert.Contains(list.StdOut.Split('\n'), l => l.StartsWith($"hf:{Repository}/{QuantFile} ", StringComparison.Ordinal) && l.Contains("recorded-on-first-use", StringComparison.Ordinal));

        var rm = await AgentHostProcess.RunAsync(["models", "rm", $"hf:{Repository}/{QuantFile}"], environment);
        Assert.Equal(0, rm.ExitCode);
        Assert.Empty(Directory.GetFiles(cache));
        Assert.Equal((1, 1), (hub.FileListRequests, hub.FileRequests));

        var missing = await AgentHostProcess.RunAsync(["models", "pull", $"hf:{Repository}:Q5_K_M"], environment);
        Assert.Equal(1, missing.ExitCode);
        Assert.Equal($"error: hf:{Repository}:Q5_K_M: the repository {Repository} has no .gguf file of quantisation Q5_K_M; it has: Q4_K_M, Q8_0.", missing.StdErr.Trim());
    }

    [Theory]
    [InlineData(new[] { "models", "show", "hf:just-a-name" }, 2, "error: 'hf:just-a-name' is not a Hugging Face reference")]
    [InlineData(new[] { "models", "show", "no-such-model" }, 1, "error: Unknown model 'no-such-model'")]
    [InlineData(new[] { "generate", "--model", "hf:someone/Repo:Q4_K_M", "--prompt", "Hi" }, 1, "error: hf:someone/Repo:Q4_K_M: no file of it is in the catalog or the user cache")]
    public async Task Bad_names_are_one_clear_line(string[] args, int exitCode, string error)
    {
        var result = await AgentHostProcess.RunAsync(args);

        Assert.Equal(exitCode, result.ExitCode);
        var line = Assert.Single(result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith(error, line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_malformed_endpoint_stops_every_verb_with_one_line_naming_the_key()
    {
        var result = await AgentHostProcess.RunAsync(["models", "list"], new Dictionary<string, string> { ["AGENTHOST_AgentHost__HuggingFaceEndpoint"] = "ftp://mirror" });

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("error: AgentHost:HuggingFaceEndpoint 'ftp://mirror' is not an absolute http or https URL", result.StdErr, StringComparison.Ordinal);
    }

    private static long TrainedContext() => Llama.Models.GgufFile.Read(_stories).GetInteger("llama.context_length")!.Value;
}
