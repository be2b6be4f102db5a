using System.Buffers.Binary;
using System.Text;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Tests.Models;

public sealed class GgufFileTests : IDisposable
{
    private const int ByteTokenType = 6; // llama_token_type LLAMA_TOKEN_TYPE_BYTE

    private readonly string _tempDirectory =
        Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "agenthost-gguf-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_tempDirectory, recursive: true);

    [Fact]
    public void Stories260K_reads_architecture_vocabulary_with_byte_tokens_and_tensors()
    {
        var gguf = GgufFile.Read(TestModels.Stories260K);

        Assert.Equal(3u, gguf.Version);
        Assert.Equal("llama", gguf.Architecture);
        Assert.Equal("llama", gguf.GetString("tokenizer.ggml.model"));
        Assert.Equal(2048, gguf.GetInteger("llama.context_length"));
        Assert.Equal(512, gguf.GetStringArray("tokenizer.ggml.tokens")!.Length);
        Assert.Equal("<0x00>", gguf.GetStringArray("tokenizer.ggml.tokens")![3]);
        Assert.Equal(512, gguf.GetInt32Array("tokenizer.ggml.token_type")!.Length);
        Assert.Equal(256, gguf.GetInt32Array("tokenizer.ggml.token_type")!.Count(t => t == ByteTokenType));
        Assert.Equal(48, gguf.Tensors.Count);
        Assert.All(gguf.Tensors, t => Assert.Equal(GgmlType.F32, t.Type));
        AssertAllTensorsInside(gguf);
    }

    [Fact]
    public void TinyStories656K_reads_a_q8_0_model_without_byte_tokens()
    {
        var gguf = GgufFile.Read(TestModels.TinyStories656K);

        Assert.Equal("llama", gguf.Architecture);
        Assert.Equal(512, gguf.GetInteger("llama.context_length"));
        Assert.Equal(2048, gguf.GetStringArray("tokenizer.ggml.tokens")!.Length);
        Assert.Equal("<|start_story|>", gguf.GetStringArray("tokenizer.ggml.tokens")![1]);
        Assert.DoesNotContain(ByteTokenType, gguf.GetInt32Array("tokenizer.ggml.token_type")!);
        Assert.Equal(true, gguf.Metadata["tokenizer.ggml.add_bos_token"]);
        Assert.Equal(new[] { "en" }, gguf.GetStringArray("general.languages"));
        Assert.NotEmpty(gguf.Tensors);

        var embedding = Assert.Single(gguf.Tensors, t => t.Name == "token_embd.weight");
        Assert.Equal(GgmlType.Q8_0, embedding.Type);
        Assert.Equal(new ulong[] { 128, 2048 }, embedding.Dimensions);
        Assert.Equal(128L * 2048 / 32 * 34, embedding.ByteSize);
        AssertAllTensorsInside(gguf);
    }

    [Fact]
    public void Missing_path_is_model_not_found()
    {
        var path = Path.Combine(_tempDirectory, "nothing-here.gguf");

        var error = Assert.Throws<AgentHostException>(() => GgufFile.Read(path));

        Assert.Equal(ErrorKind.ModelNotFound, error.Kind);
        Assert.Equal($"Model file '{path}' does not exist.", error.Message);
    }

    [Fact]
    public void Directory_is_an_invalid_model_file()
    {
        var error = Assert.Throws<AgentHostException>(() => GgufFile.Read(_tempDirectory));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Contains($"'{_tempDirectory}' is a directory", error.Message);
    }

    [Fact]
    public void Text_file_is_not_a_gguf_file()
    {
        var path = Write("notes.gguf", Encoding.UTF8.GetBytes("Once upon a time there was a text file.\n"));

        var error = Assert.Throws<AgentHostException>(() => GgufFile.Read(path));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Contains($"'{path}' is not a GGUF file", error.Message);
    }

    [Fact]
    public void Empty_file_is_not_a_gguf_file()
    {
        var path = Write("empty.gguf", []);

        var error = Assert.Throws<AgentHostException>(() => GgufFile.Read(path));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Contains($"'{path}' is not a GGUF file: it is empty", error.Message);
    }

    [Fact]
    public void Copy_cut_inside_the_header_is_truncated()
    {
        var path = Write("header-cut.gguf", File.ReadAllBytes(TestModels.Stories260K)[..12]);

        var error = Assert.Throws<AgentHostException>(() => GgufFile.Read(path));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Contains("is truncated", error.Message);
        Assert.Contains("the header", error.Message);
    }

    [Fact]
    public void Copy_cut_in_the_middle_of_the_metadata_is_truncated()
    {
        // The first key, tokenizer.ggml.tokens (512 strings), spans bytes 24 to about 7,700.
        var path = Write("metadata-cut.gguf", File.ReadAllBytes(TestModels.Stories260K)[..6000]);

        var error = Assert.Throws<AgentHostException>(() => GgufFile.Read(path));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.StartsWith($"Model file '{path}' is truncated", error.Message);
        Assert.Contains("metadata (key 'tokenizer.ggml.tokens')", error.Message);
        Assert.Contains("6000 bytes", error.Message);
    }

    [Fact]
    public void Copy_cut_in_the_tensor_descriptions_is_truncated()
    {
        // Tensor descriptions of stories260K end at byte 14,152; its metadata ends well before 13,000.
        var path = Write("tensor-info-cut.gguf", File.ReadAllBytes(TestModels.Stories260K)[..13000]);

        var error = Assert.Throws<AgentHostException>(() => GgufFile.Read(path));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Contains("is truncated", error.Message);
        Assert.Contains("tensor descriptions", error.Message);
    }

    [Fact]
    public void Copy_cut_in_the_tensor_data_is_truncated()
    {
        var bytes = File.ReadAllBytes(TestModels.Stories260K);
        var path = Write("half-downloaded.gguf", bytes[..(bytes.Length * 9 / 10)]);

        var error = Assert.Throws<AgentHostException>(() => GgufFile.Read(path));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Equal(
            $"Model file '{path}' is truncated: tensor data ends at {bytes.Length} but the file has {bytes.Length * 9 / 10} bytes.",
            error.Message);
    }

    [Theory]
    [InlineData(1u)]
    [InlineData(4u)]
    [InlineData(99u)]
    public void Unsupported_version_is_named(uint version)
    {
        var bytes = File.ReadAllBytes(TestModels.Stories260K);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), version);
        var path = Write($"version-{version}.gguf", bytes);

        var error = Assert.Throws<AgentHostException>(() => GgufFile.Read(path));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Contains($"'{path}' uses GGUF version {version}", error.Message);
    }

    [Fact]
    public void Absurd_metadata_count_is_rejected_without_allocating()
    {
        var bytes = File.ReadAllBytes(TestModels.Stories260K);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(16), 1UL << 60);
        var path = Write("absurd-count.gguf", bytes);

        var error = Assert.Throws<AgentHostException>(() => GgufFile.Read(path));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Contains($"is truncated or corrupt: its header declares {1UL << 60} metadata entries", error.Message);
    }

    [Fact]
    public void String_longer_than_the_file_is_rejected_without_allocating()
    {
        var bytes = File.ReadAllBytes(TestModels.Stories260K);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(24), long.MaxValue); // length of the first key
        var path = Write("absurd-string.gguf", bytes);

        var error = Assert.Throws<AgentHostException>(() => GgufFile.Read(path));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Contains($"is truncated or corrupt: a string in the metadata declares {long.MaxValue} bytes", error.Message);
    }

    [Fact]
    public void Array_longer_than_the_file_is_rejected_without_allocating()
    {
        // Key "tokenizer.ggml.tokens" (8 + 21 bytes) at 24, value type at 53, element type at 57, count at 61.
        var bytes = File.ReadAllBytes(TestModels.Stories260K);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(61), 1UL << 40);
        var path = Write("absurd-array.gguf", bytes);

        var error = Assert.Throws<AgentHostException>(() => GgufFile.Read(path));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Contains($"metadata key 'tokenizer.ggml.tokens' declares an array of {1UL << 40} elements", error.Message);
    }

    [Fact]
    public void Synthetic_version_2_file_maps_every_value_type_and_computes_tensor_sizes()
    {
        var writer = new GgufWriter(version: 2);
        writer.Add("u8", 0, w => w.Write((byte)200));
        writer.Add("i8", 1, w => w.Write((sbyte)-5));
        writer.Add("u16", 2, w => w.Write((ushort)60000));
        writer.Add("i16", 3, w => w.Write((short)-300));
        writer.Add("u32", 4, w => w.Write(4000000000u));
        writer.Add("i32", 5, w => w.Write(-70000));
        writer.Add("f32", 6, w => w.Write(1.5f));
        writer.Add("bool", 7, w => w.Write((byte)1));
        writer.Add("general.architecture", 8, w => WriteString(w, "test-arch"));
        writer.Add("u64", 10, w => w.Write(ulong.MaxValue));
        writer.Add("i64", 11, w => w.Write(-9000000000L));
        writer.Add("f64", 12, w => w.Write(2.25));
        writer.Add("general.alignment", 4, w => w.Write(64u));
        writer.Add("ints", 9, w => { w.Write(5u); w.Write(3UL); w.Write(1); w.Write(-2); w.Write(3); });
        writer.Add("strings", 9, w => { w.Write(8u); w.Write(2UL); WriteString(w, "a"); WriteString(w, "héllo"); });
        writer.Add("bools", 9, w => { w.Write(7u); w.Write(2UL); w.Write((byte)0); w.Write((byte)1); });
        writer.AddTensor("q4k", [512, 2], GgmlType.Q4_K, 0);          // 4 blocks x 144 = 576 bytes
        writer.AddTensor("iq4nl", [64], GgmlType.IQ4_NL, 576);        // 2 blocks x 18 = 36 bytes
        writer.AddTensor("mystery", [8], (GgmlType)31, 640);           // a removed type: size unknown
        var path = Write("synthetic.gguf", writer.ToBytes(dataBytes: 640 + 64));

        var gguf = GgufFile.Read(path);

        Assert.Equal(2u, gguf.Version);
        Assert.Equal("test-arch", gguf.Architecture);
        Assert.Equal((byte)200, gguf.Metadata["u8"]);
        Assert.Equal((sbyte)-5, gguf.Metadata["i8"]);
        Assert.Equal((ushort)60000, gguf.Metadata["u16"]);
        Assert.Equal((short)-300, gguf.Metadata["i16"]);
        Assert.Equal(4000000000u, gguf.Metadata["u32"]);
        Assert.Equal(-70000, gguf.Metadata["i32"]);
        Assert.Equal(1.5f, gguf.Metadata["f32"]);
        Assert.Equal(true, gguf.Metadata["bool"]);
        Assert.Equal(ulong.MaxValue, gguf.Metadata["u64"]);
        Assert.Equal(-9000000000L, gguf.Metadata["i64"]);
        Assert.Equal(2.25, gguf.Metadata["f64"]);
        Assert.Equal(new[] { 1, -2, 3 }, gguf.GetInt32Array("ints"));
        Assert.Equal(new[] { "a", "héllo" }, gguf.GetStringArray("strings"));
        Assert.Equal(new[] { false, true }, gguf.Metadata["bools"]);
        Assert.Equal(200, gguf.GetInteger("u8"));
        Assert.Equal(-300, gguf.GetInteger("i16"));
        Assert.Equal(4000000000L, gguf.GetInteger("u32"));
        Assert.Null(gguf.GetInteger("u64")); // above long.MaxValue
        Assert.Null(gguf.GetInteger("f32"));
        Assert.Null(gguf.GetString("u8"));
        Assert.Null(gguf.GetStringArray("missing"));
        Assert.Equal(0, gguf.DataOffset % 64);
        Assert.Equal(576, gguf.Tensors[0].ByteSize);
        Assert.Equal(36, gguf.Tensors[1].ByteSize);
        Assert.Null(gguf.Tensors[2].ByteSize);
    }

    [Fact]
    public void Nested_array_is_rejected()
    {
        var writer = new GgufWriter(version: 3);
        writer.Add("nested", 9, w => { w.Write(9u); w.Write(1UL); w.Write(4u); w.Write(0UL); });
        var path = Write("nested.gguf", writer.ToBytes(dataBytes: 0));

        var error = Assert.Throws<AgentHostException>(() => GgufFile.Read(path));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Contains("metadata key 'nested' holds an array of arrays", error.Message);
    }

    [Fact]
    public void Row_not_a_multiple_of_the_block_size_is_rejected()
    {
        var writer = new GgufWriter(version: 3);
        writer.AddTensor("odd", [100], GgmlType.Q8_0, 0);
        var path = Write("odd-row.gguf", writer.ToBytes(dataBytes: 128));

        var error = Assert.Throws<AgentHostException>(() => GgufFile.Read(path));

        Assert.Equal(ErrorKind.InvalidModelFile, error.Kind);
        Assert.Contains("tensor 'odd' has 100 elements per row, not a multiple of the block size 32 of type Q8_0", error.Message);
    }

    private static void AssertAllTensorsInside(GgufFile gguf)
    {
        var length = new FileInfo(gguf.Path).Length;
        Assert.Equal(0, gguf.DataOffset % 32);
        Assert.All(gguf.Tensors, t =>
        {
            Assert.NotNull(t.ByteSize);
            Assert.True(gguf.DataOffset + (long)t.Offset + t.ByteSize <= length, $"{t.Name} ends beyond the file");
        });
        // These files are written without trailing padding: the last tensor ends exactly at the end of the file.
        Assert.Equal(length, gguf.Tensors.Max(t => gguf.DataOffset + (long)t.Offset + t.ByteSize!.Value));
    }

    private static void WriteString(BinaryWriter writer, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_tempDirectory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Writes small GGUF files (little-endian, as on every test machine) for cases the real models do not cover.</summary>
    private sealed class GgufWriter(uint version)
    {
        private readonly List<(string Key, uint Type, Action<BinaryWriter> WriteValue)> _metadata = [];
        private readonly List<(string Name, ulong[] Dimensions, GgmlType Type, ulong Offset)> _tensors = [];

        public void Add(string key, uint type, Action<BinaryWriter> writeValue) => _metadata.Add((key, type, writeValue));

        public void AddTensor(string name, ulong[] dimensions, GgmlType type, ulong offset) => _tensors.Add((name, dimensions, type, offset));

        public byte[] ToBytes(int dataBytes)
        {
            using var stream = new MemoryStream();
            using var writer = new BinaryWriter(stream);
            writer.Write("GGUF"u8);
            writer.Write(version);
            writer.Write((ulong)_tensors.Count);
            writer.Write((ulong)_metadata.Count);
            uint alignment = 32;
            foreach (var (key, type, writeValue) in _metadata)
            {
                WriteString(writer, key);
                writer.Write(type);
                writeValue(writer);
                if (key == "general.alignment")
                    alignment = 64;
            }
            foreach (var (name, dimensions, type, offset) in _tensors)
            {
                WriteString(writer, name);
                writer.Write((uint)dimensions.Length);
                foreach (var dimension in dimensions)
                    writer.Write(dimension);
                writer.Write((uint)type);
                writer.Write(offset);
            }
            while (stream.Length % alignment != 0)
                writer.Write((byte)0);
            writer.Write(new byte[dataBytes]);
            writer.Flush();
            return stream.ToArray();
        }
    }
}
