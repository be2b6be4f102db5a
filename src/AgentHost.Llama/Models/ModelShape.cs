using System.Globalization;

namespace AgentHost.Llama.Models;

/// <summary>
/// The hyperparameters of a transformer model, read from its GGUF metadata and checked against its tensors before
/// llama.cpp sees the file. llama.cpp trusts these numbers: a zero head count divides by zero, a head count that
/// does not divide the embedding or a tensor of the wrong type trips a <c>GGML_ASSERT</c> (SIGABRT), a token score
/// array shorter than the vocabulary is read past its end. <see cref="Read"/> range-checks every key llama.cpp reads
/// for the architectures AgentHost loads and refuses anything else with one error naming the key.
/// </summary>
public sealed class ModelShape
{
    /// <summary>Architectures whose hyperparameters and tensor layout (token_embd, blk.N.attn_*, blk.N.ffn_*) these checks cover.</summary>
    public static IReadOnlyList<string> SupportedArchitectures { get; } = ["llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3"];

    private const int MaxLayers = 512;                 // LLAMA_MAX_LAYERS
    private const int MaxExperts = 256;                // LLAMA_MAX_EXPERTS of this build
    private const long MaxContextLength = 1L << 24;    // 16M tokens: above any released model
    private const long MaxWidth = 1L << 20;            // embedding, feed-forward and head widths
    private const long MaxVocabulary = 1L << 22;

    // Types ggml's CPU backend multiplies as weights; integer types and intermediate dot-product types (Q8_1, Q8_K) are not.
    private static readonly HashSet<GgmlType> _weightTypes =
    [
        GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0,
        GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.IQ2_XXS, GgmlType.IQ2_XS,
        GgmlType.IQ3_XXS, GgmlType.IQ1_S, GgmlType.IQ4_NL, GgmlType.IQ3_S, GgmlType.IQ2_S, GgmlType.IQ4_XS, GgmlType.IQ1_M,
        GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.MXFP4,
    ];

    private const int ByteTokenType = 6;               // LLAMA_TOKEN_TYPE_BYTE

    // The tokenizers the decoder architectures above are converted with: SentencePiece (llama, gemma, phi3) and
    // byte-level BPE (llama 3, qwen2/3, phi4).
    private static readonly string[] _tokenizerModels = ["llama", "gpt2"];

    // The special-token keys llama.cpp reads (tokenizer.ggml.<name>_token_id), deprecated spellings included.
    private static readonly string[] _specialTokenKeys =
    [
        "bos", "eos", "eot", "eom", "unknown", "seperator", "padding", "mask", "cls",
        "fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep", "prefix", "suffix", "middle",
    ];

    private readonly GgufFile _file;
    private readonly string _arch;

    private ModelShape(GgufFile file, string arch)
    {
        _file = file;
        _arch = arch;
        Architecture = arch;
    }

    /// <summary>The architecture (<c>general.architecture</c>).</summary>
    public string Architecture { get; }

    /// <summary>Context length the model was trained with (<c>ARCH.context_length</c>).</summary>
    public int TrainedContext { get; private set; }

    /// <summary>Number of transformer blocks (<c>ARCH.block_count</c>).</summary>
    public int BlockCount { get; private set; }

    /// <summary>Embedding width (<c>ARCH.embedding_length</c>).</summary>
    public int EmbeddingLength { get; private set; }

    /// <summary>Number of tokens (<c>tokenizer.ggml.tokens</c>).</summary>
    public int VocabularySize { get; private set; }

    /// <summary>Bytes one token takes in the KV cache of all layers at 16-bit precision (llama.cpp's default cache type).</summary>
    public long KvBytesPerToken { get; private set; }

    /// <summary>Reads and checks the hyperparameters of <paramref name="file"/>.</summary>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidModelFile"/> naming the first key or tensor that is missing, out of range or inconsistent.</exception>
    public static ModelShape Read(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var arch = file.Architecture;
        if (arch is null || !SupportedArchitectures.Contains(arch))
        {
            throw new AgentHostException(ErrorKind.InvalidModelFile,
                $"Model file '{file.Path}' has the architecture '{arch ?? "(general.architecture missing)"}', which AgentHost does not load (supported: {string.Join(", ", SupportedArchitectures)}).");
        }
        var shape = new ModelShape(file, arch);
        shape.Check();
        return shape;
    }

    private void Check()
    {
        TrainedContext = (int)Integer(Key("context_length"), 1, MaxContextLength);
        BlockCount = (int)Integer(Key("block_count"), 1, MaxLayers);
        EmbeddingLength = (int)Integer(Key("embedding_length"), 1, MaxWidth);
        var heads = PerLayer(Key("attention.head_count"), 1, EmbeddingLength, null);
        var kvHeads = PerLayer(Key("attention.head_count_kv"), 1, MaxWidth, heads);
        var feedForward = PerLayer(Key("feed_forward_length"), 1, MaxWidth, null);

        // The head widths default to embedding / heads, which llama.cpp asserts to divide evenly.
        var keyLength = OptionalInteger(Key("attention.key_length"), 1, MaxWidth);
        var valueLength = OptionalInteger(Key("attention.value_length"), 1, MaxWidth);
        if ((keyLength is null || valueLength is null) && EmbeddingLength % heads[0] != 0)
            throw Invalid(Key("attention.head_count"), $"is {heads[0]}, which does not divide {Key("embedding_length")} {EmbeddingLength}");
        var headK = keyLength ?? EmbeddingLength / heads[0];
        var headV = valueLength ?? EmbeddingLength / heads[0];
        for (var layer = 0; layer < BlockCount; layer++)
        {
            if (kvHeads[layer] > heads[layer] || heads[layer] % kvHeads[layer] != 0)
                throw Invalid(Key("attention.head_count_kv"), $"is {kvHeads[layer]} in layer {layer}, which does not divide the {heads[layer]} attention heads");
        }

        var rope = OptionalInteger(Key("rope.dimension_count"), 1, headK);
        if (rope is { } dims && dims % 2 != 0)
            throw Invalid(Key("rope.dimension_count"), $"is {dims}, not even");
        PositiveFloat(Key("attention.layer_norm_rms_epsilon"), max: 1);
        PositiveFloat(Key("attention.layer_norm_epsilon"), max: 1);
        PositiveFloat(Key("rope.freq_base"), max: double.MaxValue);
        PositiveFloat(Key("rope.scale_linear"), max: double.MaxValue, zeroAllowed: true);
        PositiveFloat(Key("rope.scaling.factor"), max: double.MaxValue, zeroAllowed: true);
        if (_file.Metadata.ContainsKey(Key("rope.scaling.type"))
            && _file.GetString(Key("rope.scaling.type")) is not ("none" or "linear" or "yarn" or "longrope"))
            throw Invalid(Key("rope.scaling.type"), "must be one of none, linear, yarn, longrope");
        var experts = OptionalInteger(Key("expert_count"), 0, MaxExperts) ?? 0;
        var expertsUsed = OptionalInteger(Key("expert_used_count"), 0, experts) ?? 0;
        if ((experts > 0) != (expertsUsed > 0))
            throw Invalid(Key("expert_used_count"), $"is {expertsUsed} with {experts} experts");

        CheckVocabulary();

        long kvWidth = 0;
        for (var layer = 0; layer < BlockCount; layer++)
            kvWidth += kvHeads[layer] * (headK + headV);
        KvBytesPerToken = kvWidth * sizeof(short);

        CheckTensors(heads, kvHeads, feedForward, headK, headV, experts);
    }

    private void CheckVocabulary()
    {
        const string tokensKey = "tokenizer.ggml.tokens";
        if (!_file.Metadata.TryGetValue(tokensKey, out var value) || value is not string[] tokens)
            throw Invalid(tokensKey, "must be an array of strings");
        if (tokens.Length < 3 || tokens.Length > MaxVocabulary)
            throw Invalid(tokensKey, $"holds {tokens.Length} tokens, not between 3 and {MaxVocabulary}");
        VocabularySize = tokens.Length;
        const string modelKey = "tokenizer.ggml.model";
        var tokenizer = _file.GetString(modelKey) ?? throw Invalid(modelKey, "must be a string");
        // llama.cpp builds any tokenizer it knows for any architecture; a WordPiece (bert), Unigram (t5), RWKV, PLaMo-2 or
        // vocabulary-less tokenizer on a decoder these checks cover aborts later (token_to_byte, the vocab-type asserts).
        if (Array.IndexOf(_tokenizerModels, tokenizer) < 0)
            throw Invalid(modelKey, $"is '{tokenizer}', a tokenizer llama.cpp cannot pair with the '{_arch}' architecture (supported: {string.Join(", ", _tokenizerModels)})");

        // llama.cpp indexes these arrays by token id without checking their length or type.
        SameLength<float[]>("tokenizer.ggml.scores", "float32");
        SameLength<int[]>("tokenizer.ggml.token_type", "int32");
        if (_file.Metadata.TryGetValue("tokenizer.ggml.merges", out var merges) && merges is not string[])
            throw Invalid("tokenizer.ggml.merges", "must be an array of strings");
        if (tokenizer == "gpt2" && merges is null)
            throw Invalid("tokenizer.ggml.merges", "is missing, and a gpt2 (BPE) tokenizer needs its merges");
        CheckTokenTexts(tokensKey, tokens);
        CheckSpecialTokenIds(tokenizer);
        OptionalInteger(Key("vocab_size"), VocabularySize, VocabularySize);
    }

    // llama.cpp maps each token's text (read as a C string, an empty one renamed "[EMPTY_<id>]") to its id and asserts that
    // no two ids share a text (GGML_ASSERT(id_to_token.size() == token_to_id.size()), an abort); a byte-typed token is
    // parsed as "<0xNN>" with substr(3, 2), which throws on a text of fewer than 3 bytes.
    private void CheckTokenTexts(string key, string[] tokens)
    {
        if (_file.FirstInvalidUtf8(key) is { } invalid)
            throw Invalid(key, $"holds token {invalid}, which is not valid UTF-8");
        var types = _file.GetInt32Array("tokenizer.ggml.token_type");
        var seen = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (var id = 0; id < tokens.Length; id++)
        {
            var text = tokens[id];
            var nul = text.IndexOf('\0', StringComparison.Ordinal);
            if (nul >= 0)
                throw Invalid(key, $"holds token {id} with a NUL character at offset {nul}, which llama.cpp would cut the token at");
            var name = text.Length == 0 ? $"[EMPTY_{id}]" : text;
            if (!seen.TryAdd(name, id))
                throw Invalid(key, $"holds the token text '{Printable(name)}' twice (ids {seen[name]} and {id}); every token needs its own text");
            if (types is not null && types[id] == ByteTokenType && System.Text.Encoding.UTF8.GetByteCount(text) < 3)
                throw Invalid("tokenizer.ggml.token_type", $"marks token {id} ('{Printable(text)}') as a byte token, which llama.cpp reads as <0xNN> and needs at least 3 bytes");
        }
    }

    // Special token ids llama.cpp reads; an id outside the vocabulary would index past the token table later. The
    // "none" sentinels (-1 as int32, 2^32-1 as uint32) are accepted.
    private void CheckSpecialTokenIds(string tokenizer)
    {
        foreach (var name in _specialTokenKeys)
        {
            var key = $"tokenizer.ggml.{name}_token_id";
            if (!_file.Metadata.TryGetValue(key, out var value))
                continue;
            var id = _file.GetInteger(key) ?? throw Invalid(key, "must be an integer token id");
            if (id is -1 or uint.MaxValue)
                continue;
            if (id < 0 || id >= VocabularySize)
                throw Invalid(key, $"is {id}, outside the {VocabularySize} tokens");
        }
        // Without the keys llama.cpp uses its defaults: BOS 1 and EOS 2 (SentencePiece), BOS and EOS 11 (gpt2).
        if (tokenizer == "gpt2" && VocabularySize <= 11)
        {
            foreach (var name in new[] { "bos", "eos" })
            {
                if (!_file.Metadata.ContainsKey($"tokenizer.ggml.{name}_token_id"))
                    throw Invalid($"tokenizer.ggml.{name}_token_id", $"is missing, and the gpt2 default id 11 is outside the {VocabularySize} tokens");
            }
        }
    }

    private static string Printable(string text)
    {
        var builder = new System.Text.StringBuilder(Math.Min(text.Length, 64));
        foreach (var c in text.Length > 64 ? text[..64] : text)
            builder.Append(char.IsControl(c) ? $"\\u{(int)c:X4}" : c.ToString());
        return text.Length > 64 ? builder.Append("...").ToString() : builder.ToString();
    }

    private void SameLength<T>(string key, string elementType) where T : class
    {
        if (!_file.Metadata.TryGetValue(key, out var value))
            return;
        if (value is not T || value is not Array array)
            throw Invalid(key, $"must be an array of {elementType}");
        if (array.Length != VocabularySize)
            throw Invalid(key, $"holds {array.Length} entries for {VocabularySize} tokens");
        if (array is float[] scores)
        {
            foreach (var score in scores)
            {
                if (!float.IsFinite(score))
                    throw Invalid(key, $"holds the non-finite score {score.ToString(CultureInfo.InvariantCulture)}");
            }
        }
    }

    private void CheckTensors(long[] heads, long[] kvHeads, long[] feedForward, long headK, long headV, long experts)
    {
        long n = EmbeddingLength;
        Tensor("token_embd.weight", required: true, n, VocabularySize);
        Tensor("output.weight", required: false, n, VocabularySize);
        Tensor("output_norm.weight", required: true, n);
        for (var layer = 0; layer < BlockCount; layer++)
        {
            var blk = $"blk.{layer}.";
            Tensor(blk + "attn_norm.weight", required: true, n);
            var fused = _file.FindTensor(blk + "attn_qkv.weight") is not null;
            Tensor(blk + "attn_qkv.weight", required: false, n, (heads[layer] + 2 * kvHeads[layer]) * headK);
            Tensor(blk + "attn_q.weight", required: !fused, n, heads[layer] * headK);
            Tensor(blk + "attn_k.weight", required: !fused, n, kvHeads[layer] * headK);
            Tensor(blk + "attn_v.weight", required: !fused, n, kvHeads[layer] * headV);
            Tensor(blk + "attn_output.weight", required: true, heads[layer] * headV, n);
            if (experts == 0)
            {
                Tensor(blk + "ffn_down.weight", required: true, feedForward[layer], n);
                Tensor(blk + "ffn_gate.weight", required: false, n, feedForward[layer]);
            }
        }
    }

    // A norm vector must be F32; a matrix a weight type; both exactly the shape the hyperparameters give.
    private void Tensor(string name, bool required, params long[] shape)
    {
        var tensor = _file.FindTensor(name);
        if (tensor is null)
        {
            if (required)
                throw new AgentHostException(ErrorKind.InvalidModelFile, $"Model file '{_file.Path}' lacks the tensor '{name}' that a {_arch} model needs.");
            return;
        }
        var matches = tensor.Dimensions.Length == shape.Length;
        for (var d = 0; matches && d < shape.Length; d++)
            matches = tensor.Dimensions[d] == (ulong)shape[d];
        if (!matches)
        {
            throw new AgentHostException(ErrorKind.InvalidModelFile,
                $"Model file '{_file.Path}' has the tensor '{name}' of shape [{string.Join(", ", tensor.Dimensions)}], but its hyperparameters give [{string.Join(", ", shape)}].");
        }
        var typeOk = shape.Length == 1 ? tensor.Type == GgmlType.F32 : _weightTypes.Contains(tensor.Type);
        if (!typeOk)
            throw new AgentHostException(ErrorKind.InvalidModelFile, $"Model file '{_file.Path}' has the tensor '{name}' of type {tensor.Type}, which llama.cpp cannot use there.");
    }

    private string Key(string suffix) => $"{_arch}.{suffix}";

    private long Integer(string key, long min, long max) =>
        OptionalInteger(key, min, max) ?? throw Invalid(key, "is missing");

    private long? OptionalInteger(string key, long min, long max)
    {
        if (!_file.Metadata.ContainsKey(key))
            return null;
        var value = _file.GetInteger(key) ?? throw Invalid(key, "must be an integer");
        if (value < min || value > max)
            throw Invalid(key, $"is {value}, not between {min} and {max}");
        return value;
    }

    // A key llama.cpp reads either as one number for every layer or as an array with one per layer.
    private long[] PerLayer(string key, long min, long max, long[]? fallback)
    {
        var values = new long[BlockCount];
        if (_file.Metadata.TryGetValue(key, out var value) && value is Array array and not string[])
        {
            if (array.Length != BlockCount)
                throw Invalid(key, $"holds {array.Length} values for {BlockCount} layers");
            for (var layer = 0; layer < BlockCount; layer++)
            {
                values[layer] = array.GetValue(layer) switch
                {
                    int v => v,
                    uint v => v,
                    _ => throw Invalid(key, "must hold 32-bit integers"),
                };
                if (values[layer] < min || values[layer] > max)
                    throw Invalid(key, $"is {values[layer]} in layer {layer}, not between {min} and {max}");
            }
            return values;
        }
        if (fallback is not null && !_file.Metadata.ContainsKey(key))
            return fallback;
        Array.Fill(values, Integer(key, min, max));
        return values;
    }

    private void PositiveFloat(string key, double max, bool zeroAllowed = false)
    {
        if (!_file.Metadata.TryGetValue(key, out var value))
            return;
        var number = value switch
        {
            float f => f,
            double d => d,
            _ => throw Invalid(key, "must be a float"),
        };
        if (!double.IsFinite(number) || number < 0 || (number == 0 && !zeroAllowed) || number > max)
            throw Invalid(key, $"is {number.ToString(CultureInfo.InvariantCulture)}, not a finite number above 0{(max < double.MaxValue ? $" and at most {max}" : "")}");
    }

    private AgentHostException Invalid(string key, string problem) =>
        new(ErrorKind.InvalidModelFile, $"Model file '{_file.Path}' has an invalid '{key}': it {problem}.");
}
