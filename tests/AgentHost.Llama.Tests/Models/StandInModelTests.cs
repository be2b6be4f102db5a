using System.Security.Cryptography;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests.Support;
using Microsoft.Extensions.Logging.Testing;

namespace AgentHost.Llama.Tests.Models;

/// <summary>
/// The exact compute stand-in: stories260K widened with zero dimensions, built by the resolver into a temp user
/// cache. It must predict exactly what stories260K predicts.
/// </summary>
public sealed class StandInModelTests : IDisposable
{
    private const string Wide = "wide";
    private const string Quantized = "wide-q4";

    /// <summary>
    /// Logits agree up to float rounding: longer dot products sum in another order, and the F16 KV cache turns
    /// such last-bit differences into up to about 0.008 (measured) on logits of magnitude ~10.
    /// </summary>
    private const float LogitTolerance = 0.05f;
    private static readonly string[] _prompts = ["Once upon a time", "Tom and Lily went to the park. They saw", "The little dog was sad because"];

    private readonly TempFolder _temp = new();
    private readonly Dictionary<string, string?> _environment;

    public StandInModelTests()
    {
        // The source comes from the shared models folder; the stand-in goes to a temp cache, found via XDG_CACHE_HOME.
        _environment = new(StringComparer.Ordinal)
        {
            [AgentHostOptions.ModelsDirVariable] = TestModels.Directory,
            ["XDG_CACHE_HOME"] = _temp.Combine("xdg"),
            ["HOME"] = _temp.Combine("home"),
        };
    }

    private string Cache => _temp.Combine("xdg", "agenthost", "models");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task A_stand_in_predicts_exactly_what_its_source_predicts()
    {
        var standIn = await Resolve(Options(128, 512, 8));

        await AssertSamePredictions(standIn.Path, _prompts, maxTokens: 48);
    }

    [Fact]
    public async Task The_default_shape_has_about_87M_parameters_and_predicts_exactly_what_its_source_predicts()
    {
        var shape = new StandInSettings();
        var standIn = await Resolve(Options(shape.EmbeddingLength, shape.FeedForwardLength, shape.BlockCount));

        var file = GgufFile.Read(standIn.Path);
        var parameters = file.Tensors.Sum(t => t.ByteSize!.Value) / sizeof(float);
        Assert.InRange(parameters, 87_000_000, 88_000_000);
        Assert.Equal(768, file.GetInteger("llama.embedding_length"));
        Assert.Equal(12, file.GetInteger("llama.block_count"));
        await AssertSamePredictions(standIn.Path, _prompts[..2], maxTokens: 32);
    }

    [Fact]
    public async Task The_stand_in_is_the_widening_the_issue_describes()
    {
        var standIn = GgufFile.Read((await Resolve(Options(128, 512, 8))).Path);
        var source = GgufFile.Read(TestModels.Stories260K);
        float[] Rows(GgufFile file, string name)
        {
            var tensor = file.FindTensor(name)!;
            return file.ReadRows(tensor, 0, (int)GgufFile.RowCount(tensor));
        }

        // Heads are pinned to the source's size, RMSNorm's eps shrinks by D/D' and its weights by sqrt(D/D').
        Assert.Equal(8, standIn.GetInteger("llama.attention.key_length"));
        Assert.Equal(8, standIn.GetInteger("llama.rope.dimension_count"));
        Assert.Equal((float)source.Metadata["llama.attention.layer_norm_rms_epsilon"] / 2, (float)standIn.Metadata["llama.attention.layer_norm_rms_epsilon"], 1e-12f);
        Assert.Equal(Rows(source, "blk.0.attn_norm.weight")[5] * MathF.Sqrt(0.5f), Rows(standIn, "blk.0.attn_norm.weight")[5], 1e-6f);
        // ne[0] is the input: the embedding gets zero tails, readers get copied input columns, writers zero rows.
        var embedding = Rows(standIn, "token_embd.weight");
        Assert.Equal(Rows(source, "token_embd.weight")[64..128], embedding[128..192]);
        Assert.All(embedding[(128 + 64)..256], v => Assert.Equal(0f, v));
        Assert.Equal([128UL, 64UL], standIn.FindTensor("blk.0.attn_q.weight")!.Dimensions);
        Assert.Equal(Rows(source, "blk.0.attn_q.weight")[..64], Rows(standIn, "blk.0.attn_q.weight")[64..128]);
        Assert.Equal([64UL, 128UL], standIn.FindTensor("blk.0.attn_output.weight")!.Dimensions);
        Assert.All(Rows(standIn, "blk.0.attn_output.weight")[(64 * 64)..], v => Assert.Equal(0f, v));
        Assert.Equal([512UL, 128UL], standIn.FindTensor("blk.0.ffn_down.weight")!.Dimensions);
        Assert.All(Rows(standIn, "blk.0.ffn_down.weight")[172..512], v => Assert.Equal(0f, v));
        // Appended blocks compute (nonzero readers) but write nothing.
        Assert.Equal(Rows(standIn, "blk.0.ffn_gate.weight"), Rows(standIn, "blk.5.ffn_gate.weight"));
        Assert.All(Rows(standIn, "blk.7.attn_output.weight"), v => Assert.Equal(0f, v));
        Assert.All(Rows(standIn, "blk.7.ffn_down.weight"), v => Assert.Equal(0f, v));
        Assert.Contains(Rows(standIn, "blk.7.attn_q.weight"), v => v != 0);
    }

    [Fact]
    public async Task The_resolver_builds_a_stand_in_by_catalog_name_with_progress_then_reuses_it()
    {
        var options = Options(128, 512, 8);
        var progress = new RecordingProgress<DownloadProgress>();

        var built = await Resolve(options, progress);
        var reused = await Resolve(options);

        Assert.Equal(ModelSource.Built, built.Source);
        Assert.Equal(Path.Combine(Cache, "wide.gguf"), built.Path);
        Assert.Equal(ModelSource.Cache, reused.Source);
        Assert.Equal(built.Path, reused.Path);
        var length = new FileInfo(built.Path).Length;
        Assert.Equal(new DownloadProgress(length, length) { IsBuild = true }, progress.Reports[^1]);
        Assert.True(progress.Reports[0].BytesReceived < length);
        Assert.All(progress.Reports, p => Assert.Equal(length, p.TotalBytes));
        Assert.All(progress.Reports, p => Assert.True(p.IsBuild));   // a build, not a download: hosts label it so
        Assert.Equal($"{Sha256(built.Path)}  wide.gguf\n", File.ReadAllText(built.Path + ".sha256"));
        Assert.Equal(["wide.gguf", "wide.gguf.sha256"], Directory.GetFiles(Cache).Select(Path.GetFileName).Order());
        Assert.Equal("user cache (stand-in of stories260k, verified on use)", CreateResolver(options).Describe(Wide).Status);
    }

    [Fact]
    public async Task Two_builds_give_the_same_bytes()
    {
        var options = Options(128, 512, 8);
        var first = await Resolve(options);
        var firstDigest = Sha256(first.Path);
        _environment["XDG_CACHE_HOME"] = _temp.Combine("other");

        var second = await Resolve(options);

        Assert.NotEqual(first.Path, second.Path);
        Assert.Equal(firstDigest, Sha256(second.Path));
    }

    [Fact]
    public async Task A_reused_file_whose_bytes_or_record_changed_is_rebuilt()
    {
        var options = Options(128, 512, 8);
        var path = (await Resolve(options)).Path;
        var digest = Sha256(path);
        var logger = new FakeLogger();

        using (var file = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            file.Position = file.Length - 100;
            file.WriteByte(0x7f);
        }
        var afterDamage = await Resolve(options, logger: logger);
        File.Delete(path + ".sha256");
        var afterLostRecord = await Resolve(options);

        Assert.Equal(ModelSource.Built, afterDamage.Source);
        Assert.Contains(logger.Collector.GetSnapshot(), e => e.Message.Contains("not the recorded", StringComparison.Ordinal));
        Assert.Equal(ModelSource.Built, afterLostRecord.Source);
        Assert.Equal(digest, Sha256(path));
    }

    [Fact]
    public async Task A_changed_shape_rebuilds_the_file()
    {
        var first = await Resolve(Options(128, 512, 8));

        var second = await Resolve(Options(128, 512, 6));

        Assert.Equal(first.Path, second.Path);
        Assert.Equal(ModelSource.Built, second.Source);
        Assert.Equal(6, GgufFile.Read(second.Path).GetInteger("llama.block_count"));
    }

    [Fact]
    public async Task A_build_that_does_not_match_the_catalog_checksum_is_refused_and_not_kept()
    {
        var options = Options(128, 512, 8);
        options.Models[Wide].Sha256 = new string('0', 64);

        var error = await Assert.ThrowsAsync<AgentHostException>(() => Resolve(options));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Contains("not the catalog's 0000", error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(Cache));
    }

    [Fact]
    public async Task Cancelling_a_build_leaves_nothing_behind()
    {
        using var cancel = new CancellationTokenSource();
        var progress = new RecordingProgress<DownloadProgress> { OnReport = p => cancel.Cancel() };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Resolve(Options(128, 512, 8), progress, cancel.Token));

        Assert.Empty(Directory.GetFiles(Cache));
    }

    [Fact]
    public async Task Sources_and_shapes_a_stand_in_cannot_be_made_from_are_refused_with_one_clear_error()
    {
        async Task<AgentHostException> Refused(Action<AgentHostOptions> change)
        {
            var options = Options(128, 512, 8);
            change(options);
            return await Assert.ThrowsAsync<AgentHostException>(() => Resolve(options));
        }

        var quantized = await Refused(o => o.Models[Wide].StandIn!.Source = "tinystories656k");
        var narrower = await Refused(o => o.Models[Wide].StandIn!.EmbeddingLength = 32);
        var fewerBlocks = await Refused(o => o.Models[Wide].StandIn!.BlockCount = 0);
        var noSource = await Refused(o => o.Models[Wide].StandIn!.Source = " ");
        var unknownSource = await Refused(o => o.Models[Wide].StandIn!.Source = "nope");
        var path = await Refused(o => o.Models[Wide].File = "../wide.gguf");

        Assert.Equal(ErrorKind.InvalidModelFile, quantized.Kind);
        Assert.Contains("is Q8_0; a stand-in is built from F32 tensors only", quantized.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorKind.InvalidArgument, narrower.Kind);
        Assert.Contains("EmbeddingLength is 32, smaller than the source model's 64", narrower.Message, StringComparison.Ordinal);
        Assert.Contains("BlockCount is 0, smaller than the source model's 5", fewerBlocks.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorKind.InvalidArgument, noSource.Kind);
        Assert.Equal(ErrorKind.ModelNotFound, unknownSource.Kind);
        var ofStandIn = await Assert.ThrowsAsync<AgentHostException>(() =>
        {
            var options = Options(128, 512, 8);
            options.Models["twice"] = new ModelSettings { File = "twice.gguf", StandIn = new StandInSettings { Source = Wide } };
            return CreateResolver(options).ResolveAsync("twice");
        });
        Assert.Contains("which is a stand-in itself", ofStandIn.Message, StringComparison.Ordinal);
        Assert.Contains("must be a plain file name", path.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Cache) && Directory.GetFiles(Cache).Length > 0);
    }

    [Fact]
    public async Task A_quantized_stand_in_is_its_source_through_llama_cpps_quantizer_in_the_type_asked_for()
    {
        // Widened to 256 so that rows fit Q4_K's 256-element blocks (narrower rows fall back to other types).
        var options = Options(256, 512, 5);
        options.Models[Quantized] = new ModelSettings { File = "wide-q4.gguf", StandIn = new StandInSettings { Source = Wide, Quantize = "Q4_K_M" } };
        var resolver = CreateResolver(options);

        var built = await resolver.ResolveAsync(Quantized);
        var reused = await resolver.ResolveAsync(Quantized);
        var source = await resolver.ResolveAsync(Wide);

        Assert.Equal(ModelSource.Built, built.Source);
        Assert.Equal(ModelSource.Cache, reused.Source);
        var file = GgufFile.Read(built.Path);
        Assert.Equal((long)LLama.Native.LLamaFtype.MOSTLY_Q4_K_M, file.GetInteger("general.file_type"));
        Assert.Contains(file.Tensors, t => t.Type == GgmlType.Q4_K);
        Assert.DoesNotContain(file.Tensors, t => t.Dimensions.Length > 1 && t.Type == GgmlType.F32);
        Assert.True(new FileInfo(built.Path).Length * 3 < new FileInfo(source.Path).Length, "Q4_K_M should be well under a third of the F32 file");
        Assert.Equal(ModelDigest.Compute(built.Path), ModelDigest.Recorded(built.Path));

        // Its own check: a quantized model is not the F32 one (greedy tokens may differ from the first; the bench reports
        // the match rate), but its logits are the F32 logits plus quantisation noise: strongly correlated over the vocabulary.
        var settings = new ModelSettings { ContextSize = 256, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 1 };
        using var f32 = LlamaModel.Load("wide", source.Path, settings);
        using var q4 = LlamaModel.Load("wide-q4", built.Path, settings);
        using var f32Session = await f32.CreateSessionAsync();
        using var q4Session = await q4.CreateSessionAsync();
        var greedy = new GreedyStrategy();
        foreach (var prompt in _prompts)
        {
            var request = new GenerationRequest { Prompt = prompt, MaxTokens = 32 };
            var expected = await f32Session.GenerateAsync(greedy, request);
            var actual = await q4Session.GenerateAsync(greedy, request);
            Assert.True(actual.Tokens.Count >= 8, $"'{prompt}' generated only {actual.Tokens.Count} tokens on Q4_K_M");
            var tokens = f32.Tokenize(prompt + expected.Text, addBos: true);
            var correlation = Correlation(await LastLogits(f32Session, tokens), await LastLogits(q4Session, tokens));
            Assert.True(correlation > 0.9, $"'{prompt}': the Q4_K_M logits correlate with the F32 ones at {correlation:F3}");
        }
    }

    [Theory]
    [InlineData("Q4_K_X", "not a llama.cpp quantization type")]
    [InlineData("", "not a llama.cpp quantization type")]
    public async Task A_quantized_stand_in_with_an_unknown_type_is_one_clear_error(string type, string message)
    {
        var options = Options(128, 512, 5);
        options.Models[Quantized] = new ModelSettings { File = "wide-q4.gguf", StandIn = new StandInSettings { Source = Wide, Quantize = type } };

        var error = await Assert.ThrowsAsync<AgentHostException>(() => CreateResolver(options).ResolveAsync(Quantized));

        Assert.Contains(message, error.Message);
        Assert.Contains("Q4_K_M", error.Message);
        Assert.False(Directory.Exists(Cache) && Directory.EnumerateFiles(Cache).Any(), "nothing is built for a bad type");
    }

    [Fact]
    public async Task A_quantized_stand_in_is_not_built_from_a_quantized_one()
    {
        var options = Options(128, 512, 5);
        options.Models[Quantized] = new ModelSettings { File = "wide-q4.gguf", StandIn = new StandInSettings { Source = Wide, Quantize = "Q4_K_M" } };
        options.Models["twice"] = new ModelSettings { File = "twice.gguf", StandIn = new StandInSettings { Source = Quantized, Quantize = "Q4_K_M" } };

        var error = await Assert.ThrowsAsync<AgentHostException>(() => CreateResolver(options).ResolveAsync("twice"));

        Assert.Contains("quantized itself", error.Message);
    }

    /// <summary>Greedy token ids of the stand-in equal the source's, and so do the logits after them, up to float rounding.</summary>
    private static async Task AssertSamePredictions(string standInPath, string[] prompts, int maxTokens)
    {
        var settings = new ModelSettings { ContextSize = 256, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 1 };
        using var source = LlamaModel.Load("stories260k", TestModels.Stories260K, settings);
        using var standIn = LlamaModel.Load("wide", standInPath, settings);
        using var sourceSession = await source.CreateSessionAsync();
        using var standInSession = await standIn.CreateSessionAsync();
        var greedy = new GreedyStrategy();
        foreach (var prompt in prompts)
        {
            var request = new GenerationRequest { Prompt = prompt, MaxTokens = maxTokens };
            var expected = await sourceSession.GenerateAsync(greedy, request);
            var actual = await standInSession.GenerateAsync(greedy, request);

            Assert.True(expected.Tokens.Count >= 8, $"'{prompt}' generated only {expected.Tokens.Count} tokens");
            Assert.Equal(expected.Tokens, actual.Tokens);
            Assert.Equal(expected.Text, actual.Text);

            var tokens = source.Tokenize(prompt + expected.Text, addBos: true);
            var sourceLogits = await LastLogits(sourceSession, tokens);
            var standInLogits = await LastLogits(standInSession, tokens);
            for (var i = 0; i < sourceLogits.Length; i++)
                Assert.True(Math.Abs(sourceLogits[i] - standInLogits[i]) < LogitTolerance, $"'{prompt}': logit {i} is {standInLogits[i]}, the source's {sourceLogits[i]}");
        }
    }

    private static double Correlation(float[] x, float[] y)
    {
        double mx = x.Average(), my = y.Average(), sxy = 0, sxx = 0, syy = 0;
        for (var i = 0; i < x.Length; i++)
        {
            sxy += (x[i] - mx) * (y[i] - my);
            sxx += (x[i] - mx) * (x[i] - mx);
            syy += (y[i] - my) * (y[i] - my);
        }
        return sxy / Math.Sqrt(sxx * syy);
    }

    private static Task<float[]> LastLogits(InferenceSession session, int[] tokens) => session.RunAsync(s =>
    {
        s.Reset();
        return s.GetLogits(s.Prefill(tokens, 0)).ToArray();
    });

    private Task<ResolvedModel> Resolve(AgentHostOptions options, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default, FakeLogger? logger = null)
        => CreateResolver(options, logger).ResolveAsync(Wide, progress, cancellationToken);

    private ModelResolver CreateResolver(AgentHostOptions options, FakeLogger? logger = null)
        => new(options, logger, downloader: null, getEnvironmentVariable: name => _environment.GetValueOrDefault(name));

    private static AgentHostOptions Options(int embeddingLength, int feedForwardLength, int blockCount)
    {
        var options = new AgentHostOptions { AllowDownload = false };
        options.Models["stories260k"] = new ModelSettings { File = "stories260K.gguf" };
        options.Models["tinystories656k"] = new ModelSettings { File = "TinyStories-656K-Q8_0.gguf" };
        options.Models[Wide] = new ModelSettings
        {
            File = "wide.gguf",
            StandIn = new StandInSettings
            {
                Source = "stories260k",
                EmbeddingLength = embeddingLength,
                FeedForwardLength = feedForwardLength,
                BlockCount = blockCount,
            },
        };
        return options;
    }

    private static string Sha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
}
