using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Tests.Support;

/// <summary>
/// Writes a family test model: a Hugging Face tokenizer.json turned into GGUF vocabulary metadata as llama.cpp's
/// <c>convert_hf_to_gguf.py</c> writes it, the family's chat template and hyperparameters, and tiny random weights in
/// the tensor layout llama.cpp's loader expects for the architecture.
/// </summary>
/// <remarks>
/// Byte-level BPE families (Llama 3, Qwen, Phi-4-mini's o200k) keep tokenizer.json's tokens and merges as they are
/// (<c>tokenizer.ggml.model = gpt2</c>, <c>tokenizer.ggml.pre</c> naming llama.cpp's pre-tokenizer regex). Gemma 3's
/// tokenizer.json is a SentencePiece BPE with byte fallback; llama.cpp runs such a vocabulary with its SentencePiece
/// tokenizer (<c>llama</c>, as the converter writes Gemma from tokenizer.model), which merges the adjacent pair whose
/// concatenation has the highest score: each token's score is minus the rank of the first merge producing it, so the
/// SentencePiece merge order is the BPE merge order.
/// </remarks>
internal static class FamilyModelBuilder
{
    private const int BuilderVersion = 2; // bump when the written file changes
    private const int Layers = 2, Embedding = 64, Heads = 4, KvHeads = 2, HeadDim = 16, FeedForward = 128;

    // llama.cpp's llama_token_type.
    private const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, ByteToken = 6;

    /// <summary>What a family's model is built from: its entry in families.json and the package's tokenizer files.</summary>
    internal sealed record Spec(string Family, JsonElement Entry, string TokenizerFolder_)
    {
        public string TokenizerJsonPath => Path.Combine(TokenizerFolder_, "tokenizer.json");

        public string TokenizerConfigPath => Path.Combine(TokenizerFolder_, "tokenizer_config.json");

        public static string TokenizerFolder(string packageDirectory, string family)
        {
            var entry = Entry_(packageDirectory, family);
            var package = entry.GetProperty("package").GetString()!;
            return Path.Combine(packageDirectory, "node_modules", package, "models");
        }

        public static Spec Read(string packageDirectory, string family) =>
            new(family, Entry_(packageDirectory, family), TokenizerFolder(packageDirectory, family));

        /// <summary>A hash of everything the file depends on: the builder, the family's entry and its tokenizer files.</summary>
        public string Hash() => FamilyModels.Sha256(
        [
            FamilyModels.Utf8($"{BuilderVersion}|{Family}|{Entry.GetRawText()}|"),
            File.ReadAllBytes(TokenizerJsonPath),
            File.ReadAllBytes(TokenizerConfigPath),
        ]);

        private static JsonElement Entry_(string packageDirectory, string family)
        {
            using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(packageDirectory, "families.json")));
            return document.RootElement.GetProperty(family).Clone();
        }
    }

    /// <summary>Writes the family's model to <paramref name="path"/>.</summary>
    public static void Build(Spec spec, string path)
    {
        using var tokenizer = JsonDocument.Parse(File.ReadAllBytes(spec.TokenizerJsonPath));
        using var config = JsonDocument.Parse(File.ReadAllBytes(spec.TokenizerConfigPath));
        var family = spec.Family;
        var arch = family;
        var spm = family == "gemma3";
        var vocabularySize = family switch
        {
            "llama" => 128256,   // Llama 3.1: config.json vocab_size
            "qwen2" or "qwen3" => 151936,
            "gemma3" => 262144,
            "phi3" => 200064,    // Phi-4-mini
            _ => throw new ArgumentException($"Unknown family '{family}'."),
        };

        var (tokens, types, scores) = Vocabulary(tokenizer.RootElement, spec.Entry, vocabularySize, spm);
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = tokens.Length - 1; i >= 0; i--)
            ids[tokens[i]] = i;

        using var stream = File.Create(path);
        var writer = new GgufWriter(stream);
        writer.AddMetadata("general.architecture", arch);
        // As the real files name them: llama.cpp sets per-token attributes by this name (one holding "phi3" expects "</s>").
        writer.AddMetadata("general.name", family switch
        {
            "llama" => "Llama 3.1 (AgentHost tiny test model)",
            "qwen2" => "Qwen2.5 (AgentHost tiny test model)",
            "qwen3" => "Qwen3 (AgentHost tiny test model)",
            "gemma3" => "Gemma 3 (AgentHost tiny test model)",
            _ => "Phi 4 Mini (AgentHost tiny test model)",
        });
        writer.AddMetadata("general.file_type", 1u); // mostly F16 (the token embeddings)
        Hyperparameters(writer, arch, vocabularySize);

        writer.AddMetadata("tokenizer.ggml.model", spm ? "llama" : "gpt2");
        writer.AddMetadata("tokenizer.ggml.pre", family switch
        {
            "llama" => "llama-bpe",
            "qwen2" or "qwen3" => "qwen2",
            "phi3" => "gpt-4o",
            _ => "default",
        });
        writer.AddMetadata("tokenizer.ggml.tokens", tokens);
        if (spm)
            writer.AddMetadata("tokenizer.ggml.scores", scores!);
        writer.AddMetadata("tokenizer.ggml.token_type", types);
        if (!spm)
            writer.AddMetadata("tokenizer.ggml.merges", Merges(tokenizer.RootElement));
        foreach (var (key, text) in SpecialTokens(family))
            writer.AddMetadata($"tokenizer.ggml.{key}_token_id", (uint)ids[text]);
        writer.AddMetadata("tokenizer.ggml.add_bos_token", family is "llama" or "gemma3");
        writer.AddMetadata("tokenizer.ggml.add_eos_token", false);
        if (spm)
            writer.AddMetadata("tokenizer.ggml.add_space_prefix", false);
        var template = spec.Entry.TryGetProperty("chatTemplate", out var own) ? own.GetString()! : config.RootElement.GetProperty("chat_template").GetString()!;
        writer.AddMetadata("tokenizer.chat_template", template);

        var tensors = Tensors(arch, vocabularySize);
        foreach (var (name, type, shape) in tensors)
            writer.AddTensor(name, type, shape);
        writer.WriteHeader();
        var random = new Random(20260101 + family.Length);
        foreach (var (name, type, shape) in tensors)
            WriteTensor(writer, random, name, type, shape);
        writer.Complete();
    }

    // The special tokens as the converter records them for each family's instruct model (from tokenizer_config.json
    // and config.json); eot too, which llama.cpp would otherwise guess from the token's text.
    private static (string Key, string Text)[] SpecialTokens(string family) => family switch
    {
        "llama" => [("bos", "<|begin_of_text|>"), ("eos", "<|eot_id|>"), ("eot", "<|eot_id|>")],
        "qwen2" or "qwen3" => [("bos", "<|endoftext|>"), ("eos", "<|im_end|>"), ("eot", "<|im_end|>"), ("padding", "<|endoftext|>")],
        "gemma3" => [("bos", "<bos>"), ("eos", "<end_of_turn>"), ("eot", "<end_of_turn>"), ("unknown", "<unk>"), ("padding", "<pad>")],
        "phi3" => [("bos", "<|endoftext|>"), ("eos", "<|endoftext|>"), ("eot", "<|end|>"), ("unknown", "<|endoftext|>"), ("padding", "<|endoftext|>")],
        _ => [],
    };

    private static (string[] Tokens, int[] Types, float[]? Scores) Vocabulary(JsonElement tokenizer, JsonElement entry, int size, bool spm)
    {
        var tokens = new string?[size];
        var types = new int[size];
        foreach (var piece in tokenizer.GetProperty("model").GetProperty("vocab").EnumerateObject())
        {
            var id = piece.Value.GetInt32();
            if (id >= size)
                continue;
            tokens[id] = piece.Name;
            types[id] = !spm ? Normal : IsByteToken(piece.Name) ? ByteToken : piece.Name == "<unk>" ? Unknown : Normal;
        }

        // Added tokens: control when special (or looking special, as the converter's does_token_look_special says),
        // else user-defined (matched as a whole before tokenization, as transformers does).
        var added = new List<(int Id, string Content, bool Special)>();
        foreach (var token in tokenizer.GetProperty("added_tokens").EnumerateArray())
            added.Add((token.GetProperty("id").GetInt32(), token.GetProperty("content").GetString()!, token.GetProperty("special").GetBoolean()));
        if (entry.TryGetProperty("extraSpecialTokens", out var extra)) // added last, so they rename a token of the same id
        {
            foreach (var token in extra.EnumerateObject())
                added.Add((token.Value.GetInt32(), token.Name, true));
        }
        foreach (var (id, content, special) in added)
        {
            if (id >= size)
                continue;
            var control = special || LooksSpecial(content);
            tokens[id] = control || !spm ? content : content.Replace('\u2581', ' ');
            types[id] = control ? Control : UserDefined;
            if (spm && content == "<unk>")
                types[id] = Unknown;
        }
        for (var id = 0; id < size; id++)
        {
            if (tokens[id] is null)
            {
                tokens[id] = $"[PAD{id}]";
                types[id] = Unused;
            }
        }

        float[]? scores = null;
        if (spm)
        {
            var ids = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var piece in tokenizer.GetProperty("model").GetProperty("vocab").EnumerateObject())
                ids[piece.Name] = piece.Value.GetInt32();
            scores = new float[size];
            var scored = new bool[size];
            var rank = 0;
            foreach (var merge in MergePairs(tokenizer))
            {
                if (ids.TryGetValue(merge.Left + merge.Right, out var id) && id < size && !scored[id])
                {
                    scores[id] = -rank;
                    scored[id] = true;
                }
                rank++;
            }
            // A multi-character piece no merge produces is never produced by the BPE model: rank it last.
            for (var id = 0; id < size; id++)
            {
                if (!scored[id] && types[id] == Normal && tokens[id]!.EnumerateRunes().Count() > 1)
                    scores[id] = -1e9f;
            }
        }
        return (tokens.Select(t => t!).ToArray(), types, scores);
    }

    private static bool IsByteToken(string token) => token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>';

    private static bool LooksSpecial(string token) =>
        token is "<pad>" or "<mask>" or "<2mass>" or "[@BOS@]"
        || (token.StartsWith("<|", StringComparison.Ordinal) && token.EndsWith("|>", StringComparison.Ordinal))
        || (token.StartsWith("<unused", StringComparison.Ordinal) && token.EndsWith('>'));

    private static IEnumerable<(string Left, string Right)> MergePairs(JsonElement tokenizer)
    {
        foreach (var merge in tokenizer.GetProperty("model").GetProperty("merges").EnumerateArray())
        {
            if (merge.ValueKind == JsonValueKind.Array)
            {
                yield return (merge[0].GetString()!, merge[1].GetString()!);
            }
            else
            {
                var text = merge.GetString()!;
                var space = text.IndexOf(' ', 1);
                yield return (text[..space], text[(space + 1)..]);
            }
        }
    }

    private static string[] Merges(JsonElement tokenizer)
    {
        var merges = new List<string>();
        foreach (var (left, right) in MergePairs(tokenizer))
            merges.Add(left + " " + right);
        return [.. merges];
    }

    private static void Hyperparameters(GgufWriter writer, string arch, int vocabularySize)
    {
        void Add(string key, object value) => writer.AddMetadata($"{arch}.{key}", value);
        Add("vocab_size", (uint)vocabularySize);
        Add("block_count", (uint)Layers);
        Add("embedding_length", (uint)Embedding);
        Add("feed_forward_length", (uint)FeedForward);
        Add("attention.head_count", (uint)Heads);
        Add("attention.head_count_kv", (uint)KvHeads);
        switch (arch)
        {
            case "llama":
                Add("context_length", 131072u);
                Add("rope.freq_base", 500000f);
                Add("rope.dimension_count", (uint)HeadDim);
                Add("attention.layer_norm_rms_epsilon", 1e-5f);
                break;
            case "qwen2":
            case "qwen3":
                Add("context_length", 40960u);
                Add("rope.freq_base", 1000000f);
                Add("attention.layer_norm_rms_epsilon", 1e-6f);
                if (arch == "qwen3")
                {
                    Add("attention.key_length", (uint)HeadDim);
                    Add("attention.value_length", (uint)HeadDim);
                }
                break;
            case "gemma3":
                Add("context_length", 32768u);
                Add("attention.key_length", (uint)HeadDim);
                Add("attention.value_length", (uint)HeadDim);
                Add("attention.layer_norm_rms_epsilon", 1e-6f);
                Add("attention.sliding_window", 512u);
                Add("rope.freq_base", 1000000f);
                break;
            case "phi3":
                // Phi-4-mini: LongRoPE (rope_factors_long/short tensors), partial rotary factor 0.75, 4k original context.
                Add("context_length", 131072u);
                Add("rope.dimension_count", (uint)RopeDimensionsPhi3);
                Add("rope.freq_base", 10000f);
                Add("rope.scaling.original_context_length", 4096u);
                Add("rope.scaling.attn_factor", (float)Math.Sqrt(1 + Math.Log(131072.0 / 4096) / Math.Log(4096)));
                Add("attention.layer_norm_rms_epsilon", 1e-5f);
                break;
        }
    }

    private const int RopeDimensionsPhi3 = HeadDim * 3 / 4;

    private static List<(string Name, GgmlType Type, ulong[] Shape)> Tensors(string arch, int vocabularySize)
    {
        const ulong n = Embedding, q = Heads * HeadDim, kv = KvHeads * HeadDim, ff = FeedForward, hd = HeadDim;
        var list = new List<(string, GgmlType, ulong[])>
        {
            ("token_embd.weight", GgmlType.F16, [n, (ulong)vocabularySize]),
            ("output_norm.weight", GgmlType.F32, [n]),
        };
        if (arch == "phi3")
        {
            list.Add(("rope_factors_long.weight", GgmlType.F32, [RopeDimensionsPhi3 / 2]));
            list.Add(("rope_factors_short.weight", GgmlType.F32, [RopeDimensionsPhi3 / 2]));
        }
        for (var layer = 0; layer < Layers; layer++)
        {
            var blk = $"blk.{layer}.";
            void Add(string name, params ulong[] shape) => list.Add((blk + name, GgmlType.F32, shape));
            Add("attn_norm.weight", n);
            if (arch == "phi3")
            {
                Add("attn_qkv.weight", n, q + 2 * kv);
            }
            else
            {
                Add("attn_q.weight", n, q);
                Add("attn_k.weight", n, kv);
                Add("attn_v.weight", n, kv);
            }
            if (arch == "qwen2")
            {
                Add("attn_q.bias", q);
                Add("attn_k.bias", kv);
                Add("attn_v.bias", kv);
            }
            if (arch is "qwen3" or "gemma3")
            {
                Add("attn_q_norm.weight", hd);
                Add("attn_k_norm.weight", hd);
            }
            Add("attn_output.weight", q, n);
            if (arch == "gemma3")
                Add("post_attention_norm.weight", n);
            Add("ffn_norm.weight", n);
            if (arch == "phi3")
            {
                Add("ffn_up.weight", n, 2 * ff); // gate and up fused
            }
            else
            {
                Add("ffn_gate.weight", n, ff);
                Add("ffn_up.weight", n, ff);
            }
            Add("ffn_down.weight", ff, n);
            if (arch == "gemma3")
                Add("post_ffw_norm.weight", n);
        }
        return list;
    }

    // Norms near 1, rope factors at 1 (no rescaling), everything else small uniform noise.
    private static void WriteTensor(GgufWriter writer, Random random, string name, GgmlType type, ulong[] shape)
    {
        var count = 1;
        foreach (var dimension in shape)
            count = checked(count * (int)dimension);
        var values = new float[count];
        var isNorm = Regex.IsMatch(name, @"norm\.weight$");
        var scale = name.StartsWith("token_embd", StringComparison.Ordinal) ? 1.0f : 0.2f;
        for (var i = 0; i < count; i++)
        {
            var noise = (float)(random.NextDouble() * 2 - 1);
            values[i] = name.StartsWith("rope_factors", StringComparison.Ordinal) ? 1f : isNorm ? 1f + 0.1f * noise : scale * noise;
        }
        if (type == GgmlType.F32)
        {
            writer.WriteTensorData(values);
            return;
        }
        var halves = new Half[count];
        for (var i = 0; i < count; i++)
            halves[i] = (Half)values[i];
        writer.WriteTensorData(MemoryMarshal.AsBytes(halves.AsSpan()));
    }
}
