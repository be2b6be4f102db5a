using System.Security.Cryptography;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests.Support;

namespace AgentHost.Llama.Tests.Models;

public sealed class GgufWriterTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Every_metadata_type_and_the_tensors_round_trip_through_the_reader()
    {
        var metadata = new Dictionary<string, object>
        {
            ["u8"] = (byte)200, ["i8"] = (sbyte)-100, ["u16"] = (ushort)60000, ["i16"] = (short)-30000,
            ["u32"] = 4_000_000_000u, ["i32"] = -2_000_000_000, ["u64"] = ulong.MaxValue, ["i64"] = long.MinValue,
            ["f32"] = 1.5e-5f, ["f64"] = Math.PI, ["yes"] = true, ["no"] = false, ["text"] = "héllo ☕", ["empty"] = "",
            ["general.alignment"] = 64u,
            ["a.u8"] = new byte[] { 1, 255 }, ["a.i8"] = new sbyte[] { -1, 7 }, ["a.u16"] = new ushort[] { 9, 65535 },
            ["a.i16"] = new short[] { -5, 5 }, ["a.u32"] = new uint[] { 1, 2, 3 }, ["a.i32"] = new[] { -1, 0, 1 },
            ["a.u64"] = new ulong[] { 1UL << 40 }, ["a.i64"] = new long[] { -(1L << 40) }, ["a.f32"] = new[] { 0.25f, -2f },
            ["a.f64"] = new[] { 1e300, -0.5 }, ["a.bool"] = new[] { true, false, true }, ["a.str"] = new[] { "<s>", "", "▁the" },
            ["a.none"] = Array.Empty<int>(),
        };
        float[] matrix = [.. Enumerable.Range(0, 3 * 5).Select(i => i * 0.5f - 3)];
        float[] vector = [1, 2, 3];
        var path = _temp.Combine("all.gguf");
        long length;
        using (var stream = File.Create(path))
        {
            var writer = new GgufWriter(stream);
            foreach (var (key, value) in metadata)
                writer.AddMetadata(key, value);
            writer.AddTensor("matrix", GgmlType.F32, 3, 5);
            writer.AddTensor("vector", GgmlType.F32, 3);
            writer.WriteHeader();
            writer.WriteTensorData(matrix.AsSpan(0, 4)); // data may arrive in any pieces, even across tensors
            writer.WriteTensorData([.. matrix.AsSpan(4), .. vector.AsSpan(0, 1)]);
            writer.WriteTensorData(vector.AsSpan(1));
            writer.Complete();
            length = writer.Length;
            Assert.Equal(length, writer.BytesWritten);
        }

        var file = GgufFile.Read(path);

        Assert.Equal(length, new FileInfo(path).Length);
        Assert.Equal(3u, file.Version);
        Assert.Equal(metadata.Keys, file.Metadata.Keys); // in the order written
        foreach (var (key, value) in metadata)
            Assert.Equal(value, file.Metadata[key]);
        Assert.Equal(["matrix", "vector"], file.Tensors.Select(t => t.Name));
        Assert.Equal([3UL, 5UL], file.Tensors[0].Dimensions);
        Assert.All(file.Tensors, t => Assert.Equal(0UL, t.Offset % 64));
        Assert.Equal(0, file.DataOffset % 64);
        Assert.Equal(matrix, file.ReadRows(file.Tensors[0], 0, 5));
        Assert.Equal(vector, file.ReadRows(file.Tensors[1], 0, 1));
    }

    [Fact]
    public void Copying_stories260K_through_the_writer_reproduces_the_file_byte_for_byte()
    {
        var source = GgufFile.Read(TestModels.Stories260K);
        var path = _temp.Combine("copy.gguf");
        using (var stream = File.Create(path))
        {
            var writer = new GgufWriter(stream);
            foreach (var (key, value) in source.Metadata)
                writer.AddMetadata(key, value);
            foreach (var tensor in source.Tensors)
                writer.AddTensor(tensor.Name, tensor.Type, tensor.Dimensions);
            writer.WriteHeader();
            foreach (var tensor in source.Tensors)
                writer.WriteTensorData((ReadOnlySpan<float>)source.ReadRows(tensor, 0, (int)GgufFile.RowCount(tensor)));
            writer.Complete();
        }

        Assert.Equal(SHA256.HashData(File.ReadAllBytes(TestModels.Stories260K)), SHA256.HashData(File.ReadAllBytes(path)));
    }

    [Fact]
    public void Invalid_declarations_and_data_of_the_wrong_size_are_refused()
    {
        using var stream = new MemoryStream();
        var writer = new GgufWriter(stream);
        writer.AddMetadata("k", 1u);

        Assert.Throws<ArgumentException>(() => writer.AddMetadata("k", 2u));
        Assert.Throws<ArgumentException>(() => writer.AddMetadata("decimal", 1.5m));
        Assert.Throws<ArgumentException>(() => writer.AddMetadata("enum", GgmlType.F32));
        Assert.Throws<ArgumentException>(() => writer.AddMetadata("nested", new[] { new[] { 1 } }));
        Assert.Throws<ArgumentException>(() => writer.AddMetadata("null string", new string[] { "a", null! }));
        Assert.Throws<ArgumentException>(() => writer.AddMetadata("general.alignment", 48u));
        Assert.Throws<ArgumentException>(() => writer.AddMetadata("general.alignment", 64));
        Assert.Throws<ArgumentException>(() => writer.AddTensor("t", GgmlType.F32));
        Assert.Throws<ArgumentException>(() => writer.AddTensor("t", GgmlType.F32, 1, 1, 1, 1, 1));
        Assert.Throws<ArgumentException>(() => writer.AddTensor("t", GgmlType.F32, 4, 0));
        Assert.Throws<ArgumentException>(() => writer.AddTensor("t", GgmlType.Q8_0, 31));
        Assert.Throws<ArgumentException>(() => writer.AddTensor(new string('n', 64), GgmlType.F32, 1));
        writer.AddTensor("t", GgmlType.F32, 2);
        Assert.Throws<ArgumentException>(() => writer.AddTensor("t", GgmlType.F32, 2));
        Assert.Throws<InvalidOperationException>(() => writer.WriteTensorData([1f]));

        writer.WriteHeader();
        Assert.Throws<InvalidOperationException>(() => writer.AddMetadata("late", 1));
        writer.WriteTensorData([1f]);
        Assert.Throws<InvalidOperationException>(() => writer.Complete()); // one float short
        Assert.Throws<InvalidOperationException>(() => writer.WriteTensorData([2f, 3f]));
    }
}
