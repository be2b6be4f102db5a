using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests.Support;

namespace AgentHost.Llama.Tests.Models;

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
    public async Task One_token_typed_byte_does_not_switch_the_guard_off()
    {
        // The attack: mark one ordinary token of the vocabulary without byte fallback as BYTE (type 6).
        using var temp = new TempFolder();
        var path = CraftedModel.Write(TestModels.TinyStories656K, temp.Combine("one-byte-type.gguf"), m =>
        {
            var types = ((int[])m["tokenizer.ggml.token_type"]).ToArray();
            types[100] = 6;
            m["tokenizer.ggml.token_type"] = types;
        });
        using var model = LlamaModel.Load("one-byte-type", path, Settings(UnsupportedCharacterPolicy.Replace));
        using var session = await model.CreateSessionAsync();

        var result = await session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = Hazard, MaxTokens = 10 });

        Assert.True(model.Vocabulary.Guard.IsActive);
        Assert.False(model.Vocabulary.Guard.CanEncode(new System.Text.Rune('(')));
        Assert.NotEmpty(result.Tokens);
    }

    [Fact]
    public async Task A_missing_byte_token_guards_exactly_the_characters_whose_bytes_need_it()
    {
        // The attack: a byte-fallback vocabulary with one of its 256 byte tokens renamed (its type stays BYTE).
        using var temp = new TempFolder();
        string[] tokens = [];
        var path = CraftedModel.Write(TestModels.Stories260K, temp.Combine("no-0xC3.gguf"), m =>
        {
            tokens = ((string[])m["tokenizer.ggml.tokens"]).ToArray();
            tokens[Array.IndexOf(tokens, "<0xC3>")] = "<removed 0xC3>";
            m["tokenizer.ggml.tokens"] = tokens;
        });
        // A Latin-1 letter (UTF-8 lead byte C3) that is not a piece of its own, so only byte fallback could encode it.
        var victim = Enumerable.Range(0xC0, 0x40).Select(c => ((char)c).ToString()).First(c => !tokens.Contains(c));
        using var rejecting = LlamaModel.Load("no-0xC3", path, Settings(UnsupportedCharacterPolicy.Reject));
        using var replacing = LlamaModel.Load("no-0xC3", path, Settings(UnsupportedCharacterPolicy.Replace));
        var guard = rejecting.Vocabulary.Guard;

        Assert.True(guard.IsActive);
        Assert.False(guard.CanEncode(new System.Text.Rune(victim[0])));
        foreach (var covered in new[] { "a", " ", "(", "\t", "\u03A9", "\u2615", "\U0001F600" })   // ASCII, Greek, CJK-range symbol, emoji: bytes all present
            Assert.True(guard.CanEncode(System.Text.Rune.GetRuneAt(covered, 0)), covered);
        var error = Assert.Throws<AgentHostException>(() => rejecting.Tokenize("Un caf" + victim, addBos: true));
        Assert.Equal(ErrorKind.UnsupportedInput, error.Kind);
        Assert.NotEmpty(rejecting.Tokenize("Tom (the cat) \u2615 \U0001F600", addBos: true));
        using var session = await replacing.CreateSessionAsync();
        var result = await session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = "Un caf" + victim + " \u2615", MaxTokens = 5 });
        Assert.NotEmpty(result.Tokens);
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
