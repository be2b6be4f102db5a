using System.Text;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests.Support;

namespace AgentHost.Llama.Tests.Families;

/// <summary>Loads each family test model once (building it on first use) for the tests of this collection.</summary>
public sealed class FamilyModelsFixture : IDisposable
{
    private readonly Dictionary<string, LlamaModel> _models = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public static ModelSettings Settings => new() { ContextSize = 256, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 2 };

    public LlamaModel Get(string family)
    {
        lock (_gate)
        {
            if (!_models.TryGetValue(family, out var model))
                _models[family] = model = LlamaModel.Load(family, FamilyModels.Get(family), Settings);
            return model;
        }
    }

    public void Dispose()
    {
        foreach (var model in _models.Values)
            model.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class FamilyModelsCollection : ICollectionFixture<FamilyModelsFixture>
{
    public const string Name = "family models";
}

/// <summary>
/// The family test models (real tokenizers, chat templates and architecture metadata; random weights): llama.cpp
/// loads each, tokenizes exactly as the family's reference tokenizer does, keeps the chat special tokens whole, and
/// generates.
/// </summary>
[Collection(FamilyModelsCollection.Name)]
public sealed class FamilyModelTests(FamilyModelsFixture fixture)
{
    public static TheoryData<string> Families => [.. FamilyModels.Names];

    public static TheoryData<string> ByteLevelBpeFamilies => ["llama", "qwen2", "qwen3", "phi3"];

    // Texts that exercise the pre-tokenizers: contractions, digit grouping, whitespace runs, newlines, non-Latin
    // scripts, emoji with modifiers, combining marks, and code.
    private static readonly string[] _texts =
    [
        "Hello world",
        "The quick brown fox jumps over the lazy dog.",
        "  two leading spaces,   runs   of spaces\tand\t\ttabs\n\nnewlines\r\nand a trailing space ",
        "Numbers: 0 7 42 123 1234 12345 3.14159 1,000,000 2025-01-31",
        "don't I'm we'll they've She'D YOU'RE",
        "Unicode: café naïve Ünïcödé — “quotes” … 日本語のテキスト 中文 한국어 Здравствуй, мир! مرحبا",
        "Emoji 🎉👍🏽 and symbols ∑∫√ ≤≥ → ← ©®™ €£¥",
        "def f(x):\n    return x**2  # square\n\n\tif x >= 10: print(\"big\")",
        "   ",
        "\n\n\n",
        "a",
    ];

    private static readonly Dictionary<string, string[]> _specials = new(StringComparer.Ordinal)
    {
        ["llama"] = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|python_tag|>", "<|eom_id|>"],
        ["qwen2"] = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
        ["qwen3"] = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
        ["gemma3"] = ["<bos>", "<start_of_turn>", "<end_of_turn>"],
        ["phi3"] = ["<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "<|tool|>", "<|/tool|>", "<|tool_call|>", "<|/tool_call|>", "<|tool_response|>", "<|endoftext|>"],
    };

    // A chat turn in each family's own markup, for tokenization with special tokens.
    private static readonly Dictionary<string, string> _turns = new(StringComparer.Ordinal)
    {
        ["llama"] = "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        ["qwen2"] = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n<tool_call>\n{\"name\": \"add\"}\n</tool_call><|im_end|>",
        ["qwen3"] = "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
        ["gemma3"] = "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
        ["phi3"] = "<|system|>You are terse.<|tool|>[{\"name\": \"add\"}]<|/tool|><|end|><|user|>What is 2+2?<|end|><|assistant|><|tool_call|>[{\"name\": \"add\"}]<|/tool_call|>",
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void Model_shape_accepts_the_family_architecture_and_the_file_carries_its_tokenizer(string family)
    {
        var file = GgufFile.Read(FamilyModels.Get(family));

        var shape = ModelShape.Read(file);

        Assert.Equal(family, shape.Architecture);
        Assert.Equal(2, shape.BlockCount);
        Assert.Equal(64, shape.EmbeddingLength);
        Assert.Equal(family == "gemma3" ? "llama" : "gpt2", file.GetString("tokenizer.ggml.model"));
        Assert.False(string.IsNullOrEmpty(file.GetString("tokenizer.chat_template")));
        Assert.Equal(shape.VocabularySize, file.GetStringArray("tokenizer.ggml.tokens")!.Length);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Llama_cpp_loads_the_model_with_its_special_tokens(string family)
    {
        var model = fixture.Get(family);

        Assert.Equal(model.File.GetStringArray("tokenizer.ggml.tokens")!.Length, model.Vocabulary.Count);
        Assert.Equal(family is "llama" or "gemma3", model.Vocabulary.AddBos);
        var eos = (int)model.File.GetInteger("tokenizer.ggml.eos_token_id")!.Value;
        Assert.True(model.Vocabulary.IsEndOfGeneration(eos));
        var eot = (int)model.File.GetInteger("tokenizer.ggml.eot_token_id")!.Value;
        Assert.True(model.Vocabulary.IsEndOfGeneration(eot));
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Tokenization_equals_the_reference_tokenizer(string family)
    {
        var model = fixture.Get(family);
        string[] texts = [.. _texts, _turns[family]];

        var expected = FamilyModels.ReferenceTokenize(family, texts);

        var mismatches = new StringBuilder();
        for (var i = 0; i < texts.Length; i++)
        {
            var actual = model.Tokenize(texts[i], model.Vocabulary.AddBos, parseSpecial: true);
            if (!actual.AsSpan().SequenceEqual(expected[i]))
                mismatches.AppendLine($"{Show(texts[i])}\n  reference [{string.Join(',', expected[i])}]\n  llama.cpp [{string.Join(',', actual)}]");
        }
        Assert.True(mismatches.Length == 0, $"{family}: llama.cpp's tokens differ from the reference tokenizer's:\n{mismatches}");
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Chat_special_tokens_are_single_control_tokens_that_user_text_cannot_forge(string family)
    {
        var model = fixture.Get(family);
        var types = (int[])model.File.Metadata["tokenizer.ggml.token_type"];

        foreach (var special in _specials[family])
        {
            var parsed = model.Tokenize(special, addBos: false, parseSpecial: true);
            var id = Assert.Single(parsed);
            Assert.True(types[id] == 3, $"{family}: {special} is token {id} of type {types[id]}, not control (3)");
            Assert.True(model.Tokenize(special, addBos: false, parseSpecial: false).Length > 1, $"{family}: {special} as user text is still one token");
            Assert.Equal("", model.Detokenize([id])); // control tokens render as nothing
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public async Task Greedy_generation_runs_a_few_tokens(string family)
    {
        var model = fixture.Get(family);
        using var session = await model.CreateSessionAsync();

        var result = await session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = _turns[family], MaxTokens = 6 });

        Assert.InRange(result.Tokens.Count, 1, 6);
        Assert.All(result.Tokens, t => Assert.InRange(t, 0, model.Vocabulary.Count - 1));
        var again = await session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = _turns[family], MaxTokens = 6 });
        Assert.Equal(result.Tokens, again.Tokens);
    }

    /// <summary>
    /// docs/decoding.md: on byte-level BPE the running-text stop rule picks, for each punctuation character c, the
    /// token the paper's code picks (<c>encode(c)[0]</c>, the token spelling exactly c), plus the " c" token the
    /// vocabulary also has (e.g. "Ġ." in Llama 3 and Qwen), and nothing else.
    /// </summary>
    [Theory]
    [MemberData(nameof(ByteLevelBpeFamilies))]
    public async Task Cautious_running_text_stop_ids_are_the_papers_ids_plus_the_space_prefixed_ones_on_byte_level_bpe(string family)
    {
        var model = fixture.Get(family);
        using var session = await model.CreateSessionAsync();

        var runningText = await session.RunAsync(_ => CautiousStrategy.PunctuationIds(model, StopRule.RunningText));
        var paper = await session.RunAsync(_ => CautiousStrategy.PunctuationIds(model, StopRule.PaperCode));

        var expectedPaper = CautiousStrategy.PunctuationCharacters.Select(c => model.Tokenize(c, addBos: false)[0]).ToArray();
        Assert.Equal(expectedPaper, paper);
        var expectedRunningText = new List<int>();
        foreach (var c in CautiousStrategy.PunctuationCharacters)
        {
            var exact = model.Tokenize(c, addBos: false);
            Assert.Equal(c, model.Detokenize([Assert.Single(exact)]));
            expectedRunningText.Add(exact[0]);
            var spaced = model.Tokenize(" " + c, addBos: false);
            if (c != "\n" && spaced.Length == 1)
                expectedRunningText.Add(spaced[0]);
        }
        Assert.Equal(expectedRunningText, runningText);
        Assert.True(runningText.Count > paper.Count, $"{family}: no \" c\" tokens among the running-text stop ids");
    }

    private static string Show(string text) => "\"" + text.Replace("\n", "\\n", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal) + "\"";
}
