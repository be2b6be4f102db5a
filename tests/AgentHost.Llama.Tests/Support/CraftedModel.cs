using System.Text;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Tests.Support;

/// <summary>
/// Writes an attacker's copy of a real GGUF model: the same tensor data, with metadata and tensor descriptions
/// patched by the test. The header is re-serialized from what <see cref="GgufFile"/> read (value types kept), so
/// only what the test changes differs from the original.
/// </summary>
internal static class CraftedModel
{
    /// <summary>Writes the patched copy of <paramref name="source"/> to <paramref name="target"/>.</summary>
    /// <param name="editMetadata">Changes the metadata (set, replace or remove keys; values as <see cref="GgufFile.Metadata"/> types them).</param>
    /// <param name="editTensors">Changes the tensor descriptions (keep the data offsets inside the file).</param>
    public static string Write(string source, string target, Action<Dictionary<string, object>>? editMetadata = null,
        Action<List<GgufTensorInfo>>? editTensors = null)
    {
        var gguf = GgufFile.Read(source);
        var metadata = new Dictionary<string, object>(gguf.Metadata, StringComparer.Ordinal);
        editMetadata?.Invoke(metadata);
        var tensors = gguf.Tensors.ToList();
        editTensors?.Invoke(tensors);

        var original = File.ReadAllBytes(source);
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write("GGUF"u8);
            writer.Write(gguf.Version);
            writer.Write((ulong)tensors.Count);
            writer.Write((ulong)metadata.Count);
            foreach (var (key, value) in metadata)
                GgufWriter.WriteMetadata(writer, key, value);
            foreach (var tensor in tensors)
                GgufWriter.WriteTensorInfo(writer, tensor.Name, tensor.Dimensions, tensor.Type, tensor.Offset);
            var alignment = metadata.TryGetValue("general.alignment", out var a) ? (uint)a : 32u;
            while (stream.Length % alignment != 0)
                writer.Write((byte)0);
            writer.Write(original, (int)gguf.DataOffset, original.Length - (int)gguf.DataOffset);
        }
        File.WriteAllBytes(target, stream.ToArray());
        return target;
    }
}
