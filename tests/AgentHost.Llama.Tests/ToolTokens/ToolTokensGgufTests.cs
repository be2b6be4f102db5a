using System.Buffers.Binary;
using AgentHost.Llama.Models;
using AgentHost.Llama.ToolTokens;

namespace AgentHost.Llama.Tests.ToolTokens;

/// <summary>The managed GGUF tensor reader: dequantized output-embedding rows reproduce llama.cpp's logits from its hidden state.</summary>
public sealed class ToolTokensGgufTests
{
    [Theory]
    [InlineData("stories260K.gguf", GgmlType.F32)]
    [InlineData("TinyStories-656K-Q8_0.gguf", GgmlType.Q8_0)]
    public async Task Output_embedding_rows_times_the_hidden_state_are_the_logits(string file, GgmlType expectedType)
    {
        var settings = new ModelSettings { ContextSize = 128, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 2, HiddenStates = true };
        using var model = LlamaModel.Load(file, Path.Combine(TestModels.Directory, file), settings);
        using var session = await model.CreateSessionAsync();
        var (logits, hidden) = await session.RunAsync(s =>
        {
            s.Reset();
            var index = s.Prefill(s.Model.Tokenize("Once upon a time there was a little dog", addBos: true), 0);
            return (s.GetLogits(index).ToArray(), s.GetHiddenState(index).ToArray());
        });

        var tensor = model.File.FindTensor("output.weight") ?? model.File.FindTensor("token_embd.weight");
        Assert.NotNull(tensor);
        Assert.Equal(expectedType, tensor.Type);
        Assert.Equal(model.Vocabulary.Count, GgufFile.RowCount(tensor));
        var rows = model.File.ReadRows(tensor, 0, model.Vocabulary.Count);

        var scale = logits.Max(Math.Abs);
        var computed = new float[logits.Length];
        for (var t = 0; t < logits.Length; t++)
        {
            for (var k = 0; k < hidden.Length; k++)
                computed[t] += rows[t * hidden.Length + k] * hidden[k];
        }
        // F32 is exact up to summation order; Q8_0 matmuls also quantize the activations to 8 bits.
        var tolerance = expectedType == GgmlType.F32 ? 1e-4f : 0.03f;
        for (var t = 0; t < logits.Length; t++)
            Assert.True(Math.Abs(computed[t] - logits[t]) <= tolerance * scale, $"token {t}: {computed[t]} vs {logits[t]}");
        Assert.Equal(Llama.Decoding.TokenSampler.ArgMax(logits), Llama.Decoding.TokenSampler.ArgMax(computed));

        // A single row read on its own equals the same row of the bulk read.
        Assert.Equal(rows.AsSpan(300 * hidden.Length, hidden.Length).ToArray(), model.File.ReadRows(tensor, 300, 1));
    }

    [Fact]
    public void F16_BF16_Q8_0_and_Q4_0_blocks_dequantize_by_the_ggml_layout()
    {
        var f16 = new byte[4];
        BinaryPrimitives.WriteHalfLittleEndian(f16, (Half)1.5f);
        BinaryPrimitives.WriteHalfLittleEndian(f16.AsSpan(2), (Half)(-0.25f));
        var values = new float[2];
        GgmlDequantizer.Dequantize(GgmlType.F16, f16, values);
        Assert.Equal([1.5f, -0.25f], values);

        var bf16 = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(bf16, (ushort)(BitConverter.SingleToInt32Bits(-3.0f) >> 16));
        GgmlDequantizer.Dequantize(GgmlType.BF16, bf16, values.AsSpan(0, 1));
        Assert.Equal(-3.0f, values[0]);

        var q8 = new byte[34];
        BinaryPrimitives.WriteHalfLittleEndian(q8, (Half)0.5f);
        for (var j = 0; j < 32; j++)
            q8[2 + j] = unchecked((byte)(sbyte)(j - 16));
        var block = new float[32];
        GgmlDequantizer.Dequantize(GgmlType.Q8_0, q8, block);
        for (var j = 0; j < 32; j++)
            Assert.Equal(0.5f * (j - 16), block[j]);

        var q4 = new byte[18];
        BinaryPrimitives.WriteHalfLittleEndian(q4, (Half)2f);
        for (var j = 0; j < 16; j++)
            q4[2 + j] = (byte)(j | ((15 - j) << 4));
        GgmlDequantizer.Dequantize(GgmlType.Q4_0, q4, block);
        for (var j = 0; j < 16; j++)
        {
            Assert.Equal(2f * (j - 8), block[j]);
            Assert.Equal(2f * (15 - j - 8), block[j + 16]);
        }

        var error = Assert.Throws<AgentHostException>(() => GgmlDequantizer.Dequantize(GgmlType.Q6_K, new byte[210], new float[256]));
        Assert.Contains("Q6_K", error.Message);
    }

    [Fact]
    public async Task The_paper_prior_is_the_mean_output_embedding_row_of_the_name_tokens()
    {
        var settings = new ModelSettings { ContextSize = 128, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 2, HiddenStates = true };
        using var model = LlamaModel.Load("stories260k", TestModels.Stories260K, settings);
        using var session = await model.CreateSessionAsync();

        var prior = await ToolTokenPriors.BuildAsync(ToolTokenPrior.OutputEmbeddings, session, ["add", "multiply"], ToolTokenPriors.DefaultScale);
        var code = await ToolTokenPriors.BuildAsync(ToolTokenPrior.HiddenStates, session, ["add", "multiply"], 0.5f);

        var tensor = model.File.FindTensor("output.weight") ?? model.File.FindTensor("token_embd.weight");
        var d = (int)tensor!.Dimensions[0];
        var tokens = model.Tokenize("multiply", addBos: false);
        var expected = new float[d];
        foreach (var token in tokens)
        {
            var row = model.File.ReadRows(tensor, token, 1);
            for (var k = 0; k < d; k++)
                expected[k] += row[k] / tokens.Length;
        }
        Assert.Equal(2 * d, prior.Length);
        for (var k = 0; k < d; k++)
            Assert.Equal(expected[k], prior[d + k], 1e-6f);
        // The code variant is normalised to the requested scale, row by row.
        Assert.Equal(0.5, Math.Sqrt(code.Take(d).Sum(v => (double)v * v)), 1e-5);
        Assert.Equal(0.5, Math.Sqrt(code.Skip(d).Sum(v => (double)v * v)), 1e-5);
        Assert.NotEqual(code.Take(d), code.Skip(d));
    }

    [Fact]
    public async Task A_vocabulary_that_ends_words_with_the_space_labels_every_call_and_the_head_reads_its_hidden_size()
    {
        // TinyStories-656K writes "had 7" as "had " + "7": the text before a call tokenizes to a prefix only with its space.
        var settings = new ModelSettings { ContextSize = 256, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 2, HiddenStates = true };
        using var model = LlamaModel.Load("tinystories656k", TestModels.TinyStories656K, settings);
        using var session = await model.CreateSessionAsync();
        var lines = DemoCorpus.Generate(40, seed: 3);

        var data = await ToolTokenDataset.BuildAsync(session, AnnotatedCorpus.Parse(string.Join('\n', lines)), DemoCorpus.ToolNames, contextWindow: 4);

        Assert.Equal(0, data.SkippedCalls);
        Assert.Equal(AnnotatedCorpus.Parse(string.Join('\n', lines)).Sum(e => e.Calls.Count), data.CallPositions);
        Assert.Equal(2 * model.EmbeddingSize, data.Dimension);
        var head = ToolTokenHead.Create(model, data, [.. DemoCorpus.ToolNames.Select(n => new ToolTokenSlot(n, ""))], new float[3 * data.Dimension]);
        Assert.Equal(model.EmbeddingSize, head.HiddenSize);
        head.EnsureMatches(model);
        var wrongSize = new ToolTokenHead(model.Name, head.ModelHash, data.Dimension, head.Tools, new float[3 * data.Dimension]);   // no window: reads 2d
        Assert.Contains("hidden states of", Assert.Throws<AgentHostException>(() => wrongSize.EnsureMatches(model)).Message);
    }
}
