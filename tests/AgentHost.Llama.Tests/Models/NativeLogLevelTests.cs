using AgentHost.Llama.Models;
using AgentHost.Llama.Tests.Support;
using LLama.Native;
using Microsoft.Extensions.Logging;

namespace AgentHost.Llama.Tests.Models;

/// <summary>
/// llama.cpp's load chatter is Debug, its real warnings and errors keep their level: a host app at the default
/// Information level prints nothing of llama.cpp's when a model loads. Not run in parallel: the native log goes to
/// the logger factory of the last load in the process.
/// </summary>
[Collection(NativeLogCollection.Name)]
public sealed class NativeLogLevelTests
{
    [Theory]
    [InlineData(LLamaLogLevel.Info, "llama_model_loader: loaded meta data with 22 key-value pairs", LogLevel.Debug)]
    [InlineData(LLamaLogLevel.Debug, "llama_context: graph splits = 1", LogLevel.Trace)]
    [InlineData(LLamaLogLevel.Warning, "llama_context: n_ctx_per_seq (512) < n_ctx_train (2048)", LogLevel.Warning)]
    [InlineData(LLamaLogLevel.Error, "llama_model_load: error loading model", LogLevel.Error)]
    [InlineData(LLamaLogLevel.Warning, "load: bad special token: 'tokenizer.ggml.seperator_token_id' = 4294967295, using default id -1", LogLevel.Debug)]
    [InlineData(LLamaLogLevel.Warning, "load: special_eos_id is not in special_eog_ids - the tokenizer config may be incorrect", LogLevel.Debug)]
    [InlineData(LLamaLogLevel.Warning, "llama_init_from_model: model default pooling_type is [-1], but [0] was specified", LogLevel.Debug)]
    public void MapLevel_LoadChatterIsDebug_RealProblemsKeepTheirLevel(LLamaLogLevel native, string message, LogLevel expected)
    {
        Assert.Equal(expected, NativeRuntime.MapLevel(native, message));
    }

    [Theory]
    [InlineData("stories260K.gguf")]
    [InlineData("TinyStories-656K-Q8_0.gguf")]
    public async Task Load_AtDefaultLevel_PrintsNoNativeLine(string file)
    {
        using var logs = new RecordingLoggerFactory(includeNative: true);
        var path = Path.Combine(TestModels.Directory, file);
        using (var model = LlamaModel.Load("quiet", path, new ModelSettings { ContextSize = 256, Threads = TestModels.Threads }, logs))
        {
            using var session = await model.CreateSessionAsync(hiddenStates: true);   // what embeddings open
        }

        var native = logs.Entries.Where(e => e.Category == NativeRuntime.LogCategory).ToList();
        Assert.True(native.Count > 20, $"llama.cpp's load log should still reach Debug; got {native.Count} lines");
        var loud = native.Where(e => e.Level >= LogLevel.Information).Select(e => $"{e.Level}: {e.Message}").ToList();
        Assert.True(loud.Count == 0, "llama.cpp lines at Information or above:\n" + string.Join("\n", loud));
        var ours = logs.Entries.Where(e => e.Category != NativeRuntime.LogCategory && e.Level >= LogLevel.Information).ToList();
        Assert.True(ours.Count <= 1, "more than one line at Information per load:\n" + string.Join("\n", ours.Select(e => e.Message)));
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NativeLogCollection
{
    public const string Name = "native log";
}

/// <summary>A missing native backend is one clear error naming the packages to add, not LLamaSharp's raw exception.</summary>
public sealed class NativeBackendMissingTests
{
    public static TheoryData<Exception> Failures => new()
    {
        new TypeInitializationException("LLama.Native.NativeApi", new LLama.Exceptions.RuntimeError("The native library cannot be correctly loaded.")),
        new DllNotFoundException("Unable to load shared library 'llama'"),
        new InvalidOperationException("wrapped", new TypeInitializationException("LLama.Native.NativeApi", null)),
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public void BackendMissing_NamesTheBackendPackages(Exception failure)
    {
        var error = NativeRuntime.BackendMissing(failure);

        Assert.NotNull(error);
        Assert.Equal(ErrorKind.NativeBackendMissing, error.Kind);
        Assert.Contains("LLamaSharp.Backend.Cpu", error.Message, StringComparison.Ordinal);
        Assert.Contains("LLamaSharp.Backend.Cuda12", error.Message, StringComparison.Ordinal);
        Assert.Same(failure, error.InnerException);
        // The package version from Directory.Packages.props: LLamaSharp's own assembly says 0.0.0.0.
        Assert.Matches(@"^\d+\.\d+\.\d+", NativeRuntime.LLamaSharpVersion);
        Assert.NotEqual("0.0.0", NativeRuntime.LLamaSharpVersion);
        Assert.Contains($"--version {NativeRuntime.LLamaSharpVersion})", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BackendMissing_LeavesOtherFailuresAlone()
    {
        Assert.Null(NativeRuntime.BackendMissing(new InvalidOperationException("no")));
        Assert.Null(NativeRuntime.BackendMissing(new TypeInitializationException("AgentHost.Something", null)));
    }
}
