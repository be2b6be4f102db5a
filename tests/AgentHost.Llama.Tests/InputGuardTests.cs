using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Tests;

/// <summary>TinyStories-656K has no byte-fallback tokens: untokenizable characters would abort the process.</summary>
public sealed class InputGuardTests
{
    private const string Hazard = "Tom (the cat) said: café ☕";

    private static ModelSettings Settings(UnsupportedCharacterPolicy policy) => new()
    {
        ContextSize = 256,
        Threads = TestModels.Threads,
        Sequences = 1,
        UnsupportedCharacters = policy,
    };

    [Fact]
    public void The_hazard_is_detected_at_load_only_for_the_vocabulary_without_byte_fallback()
    {
        using var hazardous = LlamaModel.Load("656k", TestModels.TinyStories656K, Settings(UnsupportedCharacterPolicy.Replace));
        using var safe = LlamaModel.Load("260k", TestModels.Stories260K, Settings(UnsupportedCharacterPolicy.Replace));

        Assert.True(hazardous.Vocabulary.Guard.IsActive);
        Assert.False(safe.Vocabulary.Guard.IsActive);
    }

    [Fact]
    public async Task The_hazard_text_is_replaced_and_generation_survives()
    {
        using var model = LlamaModel.Load("656k", TestModels.TinyStories656K, Settings(UnsupportedCharacterPolicy.Replace));
        using var session = await model.CreateSessionAsync();

        var sanitized = model.Vocabulary.Guard.Sanitize(Hazard, out var replaced);
        var result = await session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = Hazard, MaxTokens = 40 });

        Assert.Equal("Tom  the cat  said: cafe  ", sanitized);
        Assert.Equal(4, replaced);
        Assert.NotEmpty(result.Tokens);
        Assert.False(string.IsNullOrWhiteSpace(result.Text));
    }

    [Fact]
    public async Task With_the_reject_policy_the_hazard_text_is_a_clear_error_naming_the_character()
    {
        using var model = LlamaModel.Load("656k", TestModels.TinyStories656K, Settings(UnsupportedCharacterPolicy.Reject));
        using var session = await model.CreateSessionAsync();

        var error = await Assert.ThrowsAsync<AgentHostException>(() => session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = Hazard }));

        Assert.Equal(ErrorKind.UnsupportedInput, error.Kind);
        Assert.Contains("'(' (U+0028) at position 4", error.Message);
        var ok = await session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = "Tom the cat said hello", MaxTokens = 5 });
        Assert.Equal(5, ok.Tokens.Count);
    }

    [Fact]
    public void Every_character_the_guard_lets_through_tokenizes_without_aborting()
    {
        using var model = LlamaModel.Load("656k", TestModels.TinyStories656K, Settings(UnsupportedCharacterPolicy.Replace));
        var guard = model.Vocabulary.Guard;
        // Printable ASCII, TAB, newline and a few non-ASCII letters; llama.cpp aborts on any it cannot encode.
        var candidates = Enumerable.Range(32, 95).Select(c => (char)c).Concat(['\t', '\n', 'é', 'ß', '€']).ToArray();
        var allowed = candidates.Where(c => guard.CanEncode(new System.Text.Rune(c))).ToArray();

        foreach (var c in allowed)
            Assert.NotEmpty(model.Tokenize("a" + c + "b", addBos: false));
        Assert.Contains('a', allowed);
        Assert.DoesNotContain('(', allowed);
        Assert.DoesNotContain('é', allowed);
    }

    [Fact]
    public async Task The_tiny_stories_model_ends_its_story_with_an_end_of_generation_token()
    {
        var settings = Settings(UnsupportedCharacterPolicy.Replace);
        settings.ContextSize = 512;
        using var model = LlamaModel.Load("656k", TestModels.TinyStories656K, settings);
        using var session = await model.CreateSessionAsync();
        var result = await session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 480 });

        Assert.Equal(StopReason.EndOfGeneration, result.StopReason);
        Assert.DoesNotContain(model.Vocabulary.Eos, result.Tokens);
        Assert.True(result.Tokens.Count < 480);
    }
}
