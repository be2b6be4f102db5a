namespace AgentHost.Llama.Models;

/// <summary>One tensor described in a GGUF file's header (its data is not read).</summary>
/// <param name="Name">The tensor name, e.g. <c>blk.0.attn_q.weight</c>.</param>
/// <param name="Dimensions">The shape, innermost (row) dimension first, as ggml stores it; 0 to 4 entries.</param>
/// <param name="Type">The element type; a number ggml does not define reads as an unnamed value.</param>
/// <param name="Offset">Where the data starts, relative to <see cref="GgufFile.DataOffset"/>.</param>
/// <param name="ByteSize">Size of the data in bytes; null for a type whose size is unknown.</param>
public sealed record GgufTensorInfo(string Name, ulong[] Dimensions, GgmlType Type, ulong Offset, long? ByteSize);
