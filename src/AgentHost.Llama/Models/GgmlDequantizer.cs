using System.Buffers.Binary;

namespace AgentHost.Llama.Models;

/// <summary>
/// Converts tensor data of the common GGUF element types to 32-bit floats in managed code (for the few
/// rows a feature needs, e.g. output-embedding rows as tool-token priors). Block layouts follow ggml's
/// <c>ggml-common.h</c>: Q8_0 is an f16 scale followed by 32 signed bytes, Q4_0 an f16 scale followed by
/// 16 bytes of nibbles (low nibbles are elements 0-15, high nibbles 16-31), both with value = d * (q - offset).
/// </summary>
public static class GgmlDequantizer
{
    /// <summary>Whether <see cref="Dequantize"/> handles <paramref name="type"/>.</summary>
    public static bool Supports(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q8_0 or GgmlType.Q4_0;

    /// <summary>
    /// Dequantizes <paramref name="destination"/>.Length elements of <paramref name="type"/> from
    /// <paramref name="source"/> (which must hold whole blocks).
    /// </summary>
    /// <exception cref="AgentHostException">The type is not one of <see cref="Supports"/>.</exception>
    public static void Dequantize(GgmlType type, ReadOnlySpan<byte> source, Span<float> destination)
    {
        switch (type)
        {
            case GgmlType.F32:
                for (var i = 0; i < destination.Length; i++)
                    destination[i] = BinaryPrimitives.ReadSingleLittleEndian(source[(4 * i)..]);
                break;
            case GgmlType.F16:
                for (var i = 0; i < destination.Length; i++)
                    destination[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(source[(2 * i)..]);
                break;
            case GgmlType.BF16:
                // bfloat16 is the upper half of a float32.
                for (var i = 0; i < destination.Length; i++)
                    destination[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source[(2 * i)..]) << 16);
                break;
            case GgmlType.Q8_0:
                for (var block = 0; block * 32 < destination.Length; block++)
                {
                    var bytes = source.Slice(block * 34, 34);
                    var d = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes);
                    var output = destination.Slice(block * 32, 32);
                    for (var j = 0; j < 32; j++)
                        output[j] = d * (sbyte)bytes[2 + j];
                }
                break;
            case GgmlType.Q4_0:
                for (var block = 0; block * 32 < destination.Length; block++)
                {
                    var bytes = source.Slice(block * 18, 18);
                    var d = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes);
                    var output = destination.Slice(block * 32, 32);
                    for (var j = 0; j < 16; j++)
                    {
                        output[j] = d * ((bytes[2 + j] & 0x0F) - 8);
                        output[j + 16] = d * ((bytes[2 + j] >> 4) - 8);
                    }
                }
                break;
            default:
                throw new AgentHostException(ErrorKind.InvalidModelFile,
                    $"Tensor type {type} cannot be read in managed code; supported are F32, F16, BF16, Q8_0 and Q4_0.");
        }
    }
}
