using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Tests;

[Collection(Stories260KCollection.Name)]
public sealed class BadInputTests(Stories260KFixture fixture)
{
    [Fact]
    public async Task An_empty_prompt_is_a_clear_error()
    {
        var error = await Assert.ThrowsAsync<AgentHostException>(() =>
            fixture.Session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = "" }));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("prompt is empty", error.Message);
    }

    [Fact]
    public async Task A_prompt_longer_than_the_context_is_a_clear_error_and_the_session_survives()
    {
        var settings = Stories260KFixture.Settings;
        settings.ContextSize = 32;
        using var small = LlamaModel.Load("small", TestModels.Stories260K, settings);
        using var session = await small.CreateSessionAsync();
        var prompt = string.Join(' ', Enumerable.Repeat("Once upon a time there was a dog.", 10));

        var error = await Assert.ThrowsAsync<AgentHostException>(() => session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = prompt }));
        Assert.Equal(ErrorKind.ContextOverflow, error.Kind);
        Assert.Contains("context holds 32", error.Message);

        var ok = await session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 100 });
        Assert.Equal(StopReason.ContextFull, ok.StopReason);
        Assert.Equal(32 - 5 + 1, ok.Tokens.Count); // 5 prompt + 27 generated tokens fill the context; the 28th needs no decode
    }

    [Theory]
    [InlineData(-0.5f, 40, 0.95f, 0.05f, "temperature")]
    [InlineData(0.8f, -1, 0.95f, 0.05f, "top-k")]
    [InlineData(0.8f, 40, 0f, 0.05f, "top-p")]
    [InlineData(0.8f, 40, 1.5f, 0.05f, "top-p")]
    [InlineData(0.8f, 40, 0.95f, 1f, "min-p")]
    public async Task Invalid_sampling_options_are_clear_errors(float temperature, int topK, float topP, float minP, string named)
    {
        var request = new GenerationRequest
        {
            Prompt = "Once",
            Sampling = new SamplingOptions { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP },
        };
        var error = await Assert.ThrowsAsync<AgentHostException>(() => fixture.Session.GenerateAsync(new SamplingStrategy(), request));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.StartsWith(named, error.Message);
    }

    [Fact]
    public async Task Max_tokens_below_one_and_empty_stop_strings_are_refused()
    {
        var noTokens = await Assert.ThrowsAsync<AgentHostException>(() => fixture.Session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = "Once", MaxTokens = 0 }));
        Assert.Contains("max tokens", noTokens.Message);
        var emptyStop = await Assert.ThrowsAsync<AgentHostException>(() => fixture.Session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = "Once", Stop = [""] }));
        Assert.Contains("stop string is empty", emptyStop.Message);
    }

    [Fact]
    public void An_unknown_strategy_lists_the_known_ones()
    {
        var error = Assert.Throws<AgentHostException>(() => DecodingStrategies.Create("beam"));
        Assert.Contains("greedy", error.Message);
        Assert.Contains("sample", error.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(257)]
    public void Invalid_sequence_counts_are_refused_before_llama_cpp_sees_them(int sequences)
    {
        var settings = Stories260KFixture.Settings;
        settings.Sequences = sequences;
        var error = Assert.Throws<AgentHostException>(() => LlamaModel.Load("bad", TestModels.Stories260K, settings));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("Sequences", error.Message);
    }

    [Fact]
    public void A_batch_smaller_than_the_sequence_count_is_refused_before_llama_cpp_aborts_on_it()
    {
        var settings = Stories260KFixture.Settings;
        settings.Sequences = 16;
        settings.BatchSize = 15;
        var error = Assert.Throws<AgentHostException>(() => LlamaModel.Load("bad", TestModels.Stories260K, settings));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Equal("AgentHost:Models:bad:BatchSize (15) must be at least Sequences (16).", error.Message);
    }
}
