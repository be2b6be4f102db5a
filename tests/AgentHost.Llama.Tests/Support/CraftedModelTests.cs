using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests.Support;

namespace AgentHost.Llama.Tests.Support;

/// <summary>
/// Attacks with crafted copies of a real model: metadata and tensor descriptions that llama.cpp would abort or
/// segfault on. Each one must be one clear <see cref="ErrorKind.InvalidModelFile"/> naming the key or tensor, before
/// llama.cpp sees the file (the test host surviving is part of the assertion).
/// </summary>
public sealed class CraftedModelTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static ModelSettings Settings => new() { ContextSize = 128, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 1 };

    // Sets a number in the type the original file uses for that key (uint32 when the key is new).
    private static void Set(Dictionary<string, object> metadata, string key, double value) =>
        metadata[key] = metadata.TryGetValue(key, out var old) ? Convert.ChangeType(value, old.GetType(), System.Globalization.CultureInfo.InvariantCulture) : (uint)value;

    private static void Retype(List<GgufTensorInfo> tensors, string name, Func<GgufTensorInfo, GgufTensorInfo> change)
    {
        var index = tensors.FindIndex(t => t.Name == name);
        Assert.True(index >= 0, name);
        tensors[index] = change(tensors[index]);
    }

    private static void EditToken(Dictionary<string, object> metadata, int id, Func<string[], string> text)
    {
        var tokens = ((string[])metadata["tokenizer.ggml.tokens"]).ToArray();
        tokens[id] = text(tokens);
        metadata["tokenizer.ggml.tokens"] = tokens;
    }

    public static TheoryData<string, string> Attacks => new()
    {
        { "block_count 0", "'llama.block_count'" },
        { "block_count huge", "'llama.block_count'" },
        { "context_length 0", "'llama.context_length'" },
        { "context_length a string", "'llama.context_length'" },
        { "epsilon NaN", "'llama.attention.layer_norm_rms_epsilon'" },
        { "epsilon negative", "'llama.attention.layer_norm_rms_epsilon'" },
        { "embedding_length 0", "'llama.embedding_length'" },
        { "embedding_length not divisible by head_count", "'llama.attention.head_count'" },
        { "head_count 0", "'llama.attention.head_count'" },
        { "head_count per layer of the wrong length", "'llama.attention.head_count'" },
        { "head_count_kv not dividing head_count", "'llama.attention.head_count_kv'" },
        { "head_count_kv 0", "'llama.attention.head_count_kv'" },
        { "rope dimension odd", "'llama.rope.dimension_count'" },
        { "rope dimension huge", "'llama.rope.dimension_count'" },
        { "rope freq_base infinite", "'llama.rope.freq_base'" },
        { "rope scaling type unknown", "'llama.rope.scaling.type'" },
        { "feed_forward_length 0", "'llama.feed_forward_length'" },
        { "expert_count above the limit", "'llama.expert_count'" },
        { "experts used without experts", "'llama.expert_used_count'" },
        { "vocab_size mismatching the tokens", "'llama.vocab_size'" },
        { "one token fewer than scores", "'tokenizer.ggml.scores'" },
        { "token types of the wrong type", "'tokenizer.ggml.token_type'" },
        { "tokens of the wrong type", "'tokenizer.ggml.tokens'" },
        { "vocabulary one shorter than token_embd", "'token_embd.weight'" },
        { "missing required tensor", "'blk.4.ffn_down.weight'" },
        { "tensor shape transposed", "'blk.0.attn_k.weight'" },
        { "norm of an integer type", "'blk.0.attn_norm.weight'" },
        { "matrix of an integer type", "'blk.1.attn_q.weight'" },
        { "duplicate token text", "'tokenizer.ggml.tokens'" },
        { "token with a NUL byte", "'tokenizer.ggml.tokens'" },
        { "token that becomes a duplicate when cut at NUL", "'tokenizer.ggml.tokens'" },
        { "empty token colliding with its [EMPTY_id] name", "'tokenizer.ggml.tokens'" },
        { "bert tokenizer on llama", "'tokenizer.ggml.model'" },
        { "t5 tokenizer on llama", "'tokenizer.ggml.model'" },
        { "no_vocab tokenizer on llama", "'tokenizer.ggml.model'" },
        { "unknown tokenizer", "'tokenizer.ggml.model'" },
        { "gpt2 tokenizer without merges", "'tokenizer.ggml.merges'" },
        { "byte token not spelled <0xNN>", "'tokenizer.ggml.token_type'" },
        { "bos id outside the vocabulary", "'tokenizer.ggml.bos_token_id'" },
        { "eos id negative", "'tokenizer.ggml.eos_token_id'" },
        { "padding id a string", "'tokenizer.ggml.padding_token_id'" },
        { "unknown architecture", "architecture 'mamba'" },
        { "architecture missing", "general.architecture missing" },
    };

    [Theory]
    [MemberData(nameof(Attacks))]
    public void A_crafted_model_is_one_clear_error_naming_the_key_before_llama_cpp_sees_it(string attack, string named)
    {
        Action<Dictionary<string, object>>? metadata = null;
        Action<List<GgufTensorInfo>>? tensors = null;
        switch (attack)
        {
            case "block_count 0": metadata = m => Set(m, "llama.block_count", 0); break;
            case "block_count huge": metadata = m => Set(m, "llama.block_count", 1_000_000); break;
            case "context_length 0": metadata = m => Set(m, "llama.context_length", 0); break;
            case "context_length a string": metadata = m => m["llama.context_length"] = "2048"; break;
            case "epsilon NaN": metadata = m => m["llama.attention.layer_norm_rms_epsilon"] = float.NaN; break;
            case "epsilon negative": metadata = m => m["llama.attention.layer_norm_rms_epsilon"] = -1e-5f; break;
            case "embedding_length 0": metadata = m => Set(m, "llama.embedding_length", 0); break;
            case "embedding_length not divisible by head_count": metadata = m => Set(m, "llama.embedding_length", 63); break;
            case "head_count 0": metadata = m => Set(m, "llama.attention.head_count", 0); break;
            case "head_count per layer of the wrong length": metadata = m => m["llama.attention.head_count"] = new uint[] { 8, 8 }; break;
            case "head_count_kv not dividing head_count": metadata = m => Set(m, "llama.attention.head_count_kv", 3); break;
            case "head_count_kv 0": metadata = m => Set(m, "llama.attention.head_count_kv", 0); break;
            case "rope dimension odd": metadata = m => Set(m, "llama.rope.dimension_count", 7); break;
            case "rope dimension huge": metadata = m => Set(m, "llama.rope.dimension_count", 1 << 20); break;
            case "rope freq_base infinite": metadata = m => m["llama.rope.freq_base"] = float.PositiveInfinity; break;
            case "rope scaling type unknown": metadata = m => m["llama.rope.scaling.type"] = "warp"; break;
            case "feed_forward_length 0": metadata = m => Set(m, "llama.feed_forward_length", 0); break;
            case "expert_count above the limit": metadata = m => Set(m, "llama.expert_count", 100_000); break;
            case "experts used without experts": metadata = m => Set(m, "llama.expert_used_count", 2); break;
            case "vocab_size mismatching the tokens": metadata = m => Set(m, "llama.vocab_size", 511); break;
            case "one token fewer than scores": metadata = m => m["tokenizer.ggml.tokens"] = ((string[])m["tokenizer.ggml.tokens"])[..^1]; break;
            case "token types of the wrong type": metadata = m => m["tokenizer.ggml.token_type"] = ((int[])m["tokenizer.ggml.token_type"]).Select(t => (float)t).ToArray(); break;
            case "tokens of the wrong type": metadata = m => m["tokenizer.ggml.tokens"] = ((string[])m["tokenizer.ggml.tokens"]).Select((_, i) => i).ToArray(); break;
            case "vocabulary one shorter than token_embd":
                metadata = m =>
                {
                    m["tokenizer.ggml.tokens"] = ((string[])m["tokenizer.ggml.tokens"])[..^1];
                    m["tokenizer.ggml.scores"] = ((float[])m["tokenizer.ggml.scores"])[..^1];
                    m["tokenizer.ggml.token_type"] = ((int[])m["tokenizer.ggml.token_type"])[..^1];
                };
                break;
            case "missing required tensor": tensors = t => t.RemoveAll(x => x.Name == "blk.4.ffn_down.weight"); break;
            case "tensor shape transposed": tensors = t => Retype(t, "blk.0.attn_k.weight", x => x with { Dimensions = [x.Dimensions[1], x.Dimensions[0]] }); break;
            case "norm of an integer type": tensors = t => Retype(t, "blk.0.attn_norm.weight", x => x with { Type = GgmlType.I32 }); break;
            case "matrix of an integer type": tensors = t => Retype(t, "blk.1.attn_q.weight", x => x with { Type = GgmlType.I32 }); break;
            case "duplicate token text": metadata = m => EditToken(m, 300, t => t[301]); break;
            case "token with a NUL byte": metadata = m => EditToken(m, 300, t => "ab\0cd"); break;
            case "token that becomes a duplicate when cut at NUL": metadata = m => EditToken(m, 300, t => t[301] + "\0x"); break;
            case "empty token colliding with its [EMPTY_id] name":
                metadata = m => { EditToken(m, 300, _ => ""); EditToken(m, 301, _ => "[EMPTY_300]"); };
                break;
            case "bert tokenizer on llama": metadata = m => m["tokenizer.ggml.model"] = "bert"; break;
            case "t5 tokenizer on llama": metadata = m => m["tokenizer.ggml.model"] = "t5"; break;
            case "no_vocab tokenizer on llama": metadata = m => m["tokenizer.ggml.model"] = "no_vocab"; break;
            case "unknown tokenizer": metadata = m => m["tokenizer.ggml.model"] = "sentencepiece2"; break;
            case "gpt2 tokenizer without merges": metadata = m => { m["tokenizer.ggml.model"] = "gpt2"; m.Remove("tokenizer.ggml.merges"); }; break;
            case "byte token not spelled <0xNN>": metadata = m => EditToken(m, 3, _ => "<x"); break;   // id 3 is <0x00>, typed byte
            case "bos id outside the vocabulary": metadata = m => m["tokenizer.ggml.bos_token_id"] = 512u; break;
            case "eos id negative": metadata = m => m["tokenizer.ggml.eos_token_id"] = -7; break;
            case "padding id a string": metadata = m => m["tokenizer.ggml.padding_token_id"] = "0"; break;
            case "unknown architecture": metadata = m => m["general.architecture"] = "mamba"; break;
            case "architecture missing": metadata = m => m.Remove("general.architecture"); break;
            default: throw new ArgumentOutOfRangeException(nameof(attack), attack);
        }
        var path = CraftedModel.Write(TestModels.Stories260K, _temp.Combine("crafted.gguf"), metadata, tensors);

        var error = Assert.Throws<AgentHostException>(() => LlamaModel.Load("crafted", path, Settings));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Contains(named, error.Message);
        Assert.Contains(path, error.Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_token_that_is_not_valid_UTF8_is_refused_before_llama_cpp_sees_it(bool identical)
    {
        // Two 7-byte markers written as tokens 300 and 301, then overwritten in the file with invalid UTF-8 bytes:
        // identical ones are the duplicate that aborts llama.cpp; different ones read back equal (U+FFFD) in managed code.
        var path = CraftedModel.Write(TestModels.Stories260K, _temp.Combine("utf8.gguf"), m =>
        {
            EditToken(m, 300, _ => "@@MK1@@");
            EditToken(m, 301, _ => "@@MK2@@");
        });
        var bytes = File.ReadAllBytes(path);
        Patch(bytes, "@@MK1@@"u8, 0xFF);
        Patch(bytes, "@@MK2@@"u8, identical ? (byte)0xFF : (byte)0xFE);
        File.WriteAllBytes(path, bytes);

        var error = Assert.Throws<AgentHostException>(() => LlamaModel.Load("crafted", path, Settings));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Contains("'tokenizer.ggml.tokens'", error.Message);
        Assert.Contains("token 300, which is not valid UTF-8", error.Message);
        Assert.Throws<AgentHostException>(() => LlamaModel.Check("crafted", path, Settings));

        static void Patch(byte[] file, ReadOnlySpan<byte> marker, byte value)
        {
            var at = file.AsSpan().IndexOf(marker);
            Assert.True(at > 0);
            file.AsSpan(at, marker.Length).Fill(value);
        }
    }

    [Fact]
    public void Valid_vocabularies_of_both_test_models_pass_the_vocabulary_checks()
    {
        Assert.Equal(512, ModelShape.Read(GgufFile.Read(TestModels.Stories260K)).VocabularySize);
        Assert.Equal(2048, ModelShape.Read(GgufFile.Read(TestModels.TinyStories656K)).VocabularySize);
        Assert.Null(GgufFile.Read(TestModels.Stories260K).FirstInvalidUtf8("tokenizer.ggml.tokens"));
    }

    [Fact]
    public async Task An_unpatched_rewrite_loads_and_generates_as_the_original()
    {
        var path = CraftedModel.Write(TestModels.Stories260K, _temp.Combine("same.gguf"));
        using var copy = LlamaModel.Load("copy", path, Settings);
        using var original = LlamaModel.Load("original", TestModels.Stories260K, Settings);
        using var copySession = await copy.CreateSessionAsync();
        using var originalSession = await original.CreateSessionAsync();
        var request = new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 12 };

        var fromCopy = await copySession.GenerateAsync(new GreedyStrategy(), request);
        var fromOriginal = await originalSession.GenerateAsync(new GreedyStrategy(), request);

        Assert.Equal(fromOriginal.Tokens, fromCopy.Tokens);
    }

    [Fact]
    public void The_test_models_read_their_real_shape()
    {
        var shape = ModelShape.Read(GgufFile.Read(TestModels.Stories260K));
        Assert.Equal(("llama", 2048, 5, 64, 512), (shape.Architecture, shape.TrainedContext, shape.BlockCount, shape.EmbeddingLength, shape.VocabularySize));
        Assert.Equal(5 * 4 * (8 + 8) * 2, shape.KvBytesPerToken);   // layers × KV heads × (K + V head width) × 2 bytes

        var tiny = ModelShape.Read(GgufFile.Read(TestModels.TinyStories656K));
        Assert.Equal(("llama", 2, 128, 2048), (tiny.Architecture, tiny.BlockCount, tiny.EmbeddingLength, tiny.VocabularySize));
    }

    [Theory]
    [InlineData(0, 20000, "ContextSize (20000) exceeds 8 times the 2048 tokens")]
    [InlineData(0, -1, "ContextSize must be 0")]
    [InlineData(0, 100_000_000, "ContextSize must be 0")]
    [InlineData(0, 8, "ContextSize (8) must be at least Sequences (16)")]
    [InlineData(1, 0, "BatchSize must be between 1 and 65536")]
    [InlineData(2, 0, "GpuLayers must be -1")]
    [InlineData(3, 0, "FlashAttention must be Auto, On or Off, not 9")]
    [InlineData(4, 0, "Threads must be 0 (all cores) or between 1 and 1024")]
    public void Settings_out_of_range_are_refused_naming_the_configuration_key(int which, int contextSize, string expected)
    {
        var settings = new ModelSettings { ContextSize = contextSize, Sequences = 16 };
        switch (which)
        {
            case 1: settings.BatchSize = 1 << 20; break;
            case 2: settings.GpuLayers = -2; break;
            case 3: settings.FlashAttention = (FlashAttentionMode)9; break;
            case 4: settings.Threads = 1_000_000; break;
        }

        var error = Assert.Throws<AgentHostException>(() => LlamaModel.Load("stories260k", TestModels.Stories260K, settings));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.StartsWith("AgentHost:Models:stories260k:", error.Message);
        Assert.Contains(expected, error.Message);
    }
}
