using AgentHost.Llama.Models;

namespace AgentHost.Llama.Tests;

public sealed class HuggingFaceReferenceTests
{
    // The shape of a real bartowski repository's file list: many quantisations, an imatrix file, a vision projector.
    private static readonly string[] _files =
    [
        ".gitattributes", "README.md", "Model-7B-Instruct.imatrix",
        "Model-7B-Instruct-IQ3_M.gguf", "Model-7B-Instruct-Q4_K_M.gguf", "Model-7B-Instruct-Q4_K_S.gguf",
        "Model-7B-Instruct-Q4_K_L.gguf", "Model-7B-Instruct-Q8_0.gguf", "Model-7B-Instruct-f16.gguf", "mmproj-Model-7B-Instruct-Q4_K_M.gguf",
        "Model-7B-Instruct-Q6_K/Model-7B-Instruct-Q6_K-00001-of-00002.gguf", "Model-7B-Instruct-Q6_K/Model-7B-Instruct-Q6_K-00002-of-00002.gguf",
    ];

    [Theory]
    [InlineData("hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf", "Qwen", "Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q4_k_m.gguf", null)]
    [InlineData("hf:bartowski/Model-GGUF/sub/folder/Model-Q4_K_M.gguf", "bartowski", "Model-GGUF", "sub/folder/Model-Q4_K_M.gguf", null)]
    [InlineData("hf:bartowski/Model-GGUF:q8_0", "bartowski", "Model-GGUF", null, "q8_0")]
    [InlineData("  HF:bartowski/Model-GGUF  ", "bartowski", "Model-GGUF", null, "Q4_K_M")]
    public void Parse_reads_the_file_and_the_quantisation_forms(string value, string owner, string repository, string? file, string? quantization)
    {
        var reference = HuggingFaceReference.Parse(value);

        Assert.Equal(new HuggingFaceReference(owner, repository, file, quantization), reference);
        Assert.Equal(reference, HuggingFaceReference.Parse(reference.ToString()));
    }

    [Theory]
    [InlineData("hf:", "OWNER/REPO")]
    [InlineData("hf:justone", "OWNER/REPO")]
    [InlineData("hf:owner/re po", "OWNER/REPO")]
    [InlineData("hf:owner/repo/model.bin", "not the path of a .gguf file")]
    [InlineData("hf:owner/repo/../x.gguf", "not the path of a .gguf file")]
    [InlineData("hf:owner/repo/.gguf", "not the path of a .gguf file")]
    [InlineData("hf:owner/repo:Q4-K", "not a quantisation")]
    [InlineData("hf:owner/repo:", "not a quantisation")]
    [InlineData("hf:owner/repo/x.gguf:Q4_K_M", "either a file or a quantisation")]
    public void A_malformed_reference_is_one_clear_error_with_the_syntax(string value, string why)
    {
        var error = Assert.Throws<AgentHostException>(() => HuggingFaceReference.Parse(value));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains(why, error.Message, StringComparison.Ordinal);
        Assert.Contains("hf:OWNER/REPO/FILE.gguf or hf:OWNER/REPO:QUANT", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Q4_K_M", "Model-7B-Instruct-Q4_K_M.gguf")]
    [InlineData("q4_k_m", "Model-7B-Instruct-Q4_K_M.gguf")]
    [InlineData("F16", "Model-7B-Instruct-f16.gguf")]
    [InlineData("IQ3_M", "Model-7B-Instruct-IQ3_M.gguf")]
    public void A_quantisation_chooses_the_one_single_file_model_that_has_it_as_a_whole_word(string quantization, string expected)
    {
        var chosen = new HuggingFaceReference("bartowski", "Model-GGUF", null, quantization).Choose(_files);

        Assert.Equal(new HuggingFaceReference("bartowski", "Model-GGUF", expected, null), chosen);
    }

    [Fact]
    public void No_file_of_the_quantisation_lists_the_quantisations_there()
    {
        var error = Assert.Throws<AgentHostException>(() => HuggingFaceReference.Parse("hf:bartowski/Model-GGUF:Q5_K_M").Choose(_files));

        Assert.Equal(ErrorKind.ModelNotFound, error.Kind);
        Assert.Equal("hf:bartowski/Model-GGUF:Q5_K_M: the repository bartowski/Model-GGUF has no .gguf file of quantisation Q5_K_M; it has: F16, IQ3_M, Q4_K_L, Q4_K_M, Q4_K_S, Q6_K, Q8_0.", error.Message);
    }

    [Fact]
    public void Several_matching_files_are_listed()
    {
        string[] files = ["a/Model-Q4_K_M.gguf", "b/Model-Q4_K_M.gguf"];

        var error = Assert.Throws<AgentHostException>(() => HuggingFaceReference.Parse("hf:o/r").Choose(files));

        Assert.Equal("hf:o/r:Q4_K_M: 2 files of the repository match Q4_K_M: a/Model-Q4_K_M.gguf, b/Model-Q4_K_M.gguf; name one as hf:o/r/FILE.", error.Message);
    }

    [Fact]
    public void A_quantisation_held_only_in_split_parts_is_refused_by_name()
    {
        var error = Assert.Throws<AgentHostException>(() => HuggingFaceReference.Parse("hf:o/r:Q6_K").Choose(_files));

        Assert.Contains("only split into parts", error.Message, StringComparison.Ordinal);
        Assert.Contains("Model-7B-Instruct-Q6_K-00001-of-00002.gguf", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_named_file_must_be_in_the_repository()
    {
        var reference = HuggingFaceReference.Parse("hf:o/r/Model-7B-Instruct-Q8_0.gguf");

        Assert.Same(reference, reference.Choose(_files));
        var error = Assert.Throws<AgentHostException>(() => HuggingFaceReference.Parse("hf:o/r/missing.gguf").Choose(_files));
        Assert.Equal("hf:o/r/missing.gguf: the repository o/r has no file 'missing.gguf'.", error.Message);
    }

    [Fact]
    public void Urls_and_cache_names_round_trip_and_other_urls_are_no_references()
    {
        var endpoint = new Uri("http://127.0.0.1:9/mirror");
        var reference = HuggingFaceReference.Parse("hf:o/r/sub/My Model-Q4_K_M.gguf");

        var url = reference.FileUrl(endpoint);

        Assert.Equal("http://127.0.0.1:9/mirror/o/r/resolve/main/sub/My%20Model-Q4_K_M.gguf", url.AbsoluteUri);
        Assert.Equal(reference, HuggingFaceReference.FromUrl(url, endpoint));
        Assert.Equal("o--r--sub--My Model-Q4_K_M.gguf", reference.CacheFileName);
        Assert.Equal(reference, HuggingFaceReference.FromCacheFileName(reference.CacheFileName));
        Assert.Null(HuggingFaceReference.FromUrl(new Uri("https://example.com/o/r/resolve/main/x.gguf"), endpoint));
        Assert.Null(HuggingFaceReference.FromUrl(new Uri("http://127.0.0.1:9/mirror/o/r/resolve/v1/x.gguf"), endpoint));
        Assert.Null(HuggingFaceReference.FromCacheFileName("stories260K.gguf"));
    }
}
