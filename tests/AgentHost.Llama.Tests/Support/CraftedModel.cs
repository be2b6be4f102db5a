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
            {
                WriteString(writer, key);
                WriteValue(writer, value);
            }
            foreach (var tensor in tensors)
            {
                WriteString(writer, tensor.Name);
                writer.Write((uint)tensor.Dimensions.Length);
                foreach (var dimension in tensor.Dimensions)
                    writer.Write(dimension);
                writer.Write((uint)tensor.Type);
                writer.Write(tensor.Offset);
            }
            var alignment = metadata.TryGetValue("general.alignment", out var a) ? (uint)a : 32u;
            while (stream.Length % alignment != 0)
                writer.Write((byte)0);
            writer.Write(original, (int)gguf.DataOffset, original.Length - (int)gguf.DataOffset);
        }
        File.WriteAllBytes(target, stream.ToArray());
        return target;
    }

    private static void WriteValue(BinaryWriter writer, object value)
    {
        writer.Write(TypeOf(value));
        switch (value)
        {
            case Array array:
                var element = array.GetType().GetElementType()!;
                writer.Write(TypeOf(element));
                writer.Write((ulong)array.Length);
                foreach (var item in array)
                    WriteScalar(writer, item!);
                break;
            default:
                WriteScalar(writer, value);
                break;
        }
    }

    private static uint TypeOf(object value) => value is Array ? 9 : TypeOf(value.GetType());

    private static uint TypeOf(Type type) => Type.GetTypeCode(type) switch
    {
        TypeCode.Byte => 0, TypeCode.SByte => 1, TypeCode.UInt16 => 2, TypeCode.Int16 => 3, TypeCode.UInt32 => 4,
        TypeCode.Int32 => 5, TypeCode.Single => 6, TypeCode.Boolean => 7, TypeCode.String => 8, TypeCode.UInt64 => 10,
        TypeCode.Int64 => 11, TypeCode.Double => 12,
        _ => throw new NotSupportedException(type.Name),
    };

    private static void WriteScalar(BinaryWriter writer, object value)
    {
        switch (value)
        {
            case string s: WriteString(writer, s); break;
            case bool b: writer.Write((byte)(b ? 1 : 0)); break;
            case byte v: writer.Write(v); break;
            case sbyte v: writer.Write(v); break;
            case ushort v: writer.Write(v); break;
            case short v: writer.Write(v); break;
            case uint v: writer.Write(v); break;
            case int v: writer.Write(v); break;
            case ulong v: writer.Write(v); break;
            case long v: writer.Write(v); break;
            case float v: writer.Write(v); break;
            case double v: writer.Write(v); break;
            default: throw new NotSupportedException(value.GetType().Name);
        }
    }

    private static void WriteString(BinaryWriter writer, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }
}
