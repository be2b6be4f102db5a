namespace AgentHost.Llama.Models;

/// <summary>Storage layout of the <see cref="GgmlType"/> values.</summary>
public static class GgmlTypeExtensions
{
    /// <summary>
    /// Gets how a type is stored: <paramref name="blockSize"/> elements take <paramref name="typeSize"/> bytes
    /// (ggml's <c>blck_size</c> and <c>type_size</c>, from <c>type_traits</c> in <c>ggml.c</c> and the block
    /// structs in <c>ggml-common.h</c>). Returns false for a number ggml does not define or has removed.
    /// </summary>
    /// <param name="type">The tensor element type.</param>
    /// <param name="blockSize">Elements per block (1 for plain types).</param>
    /// <param name="typeSize">Bytes per block.</param>
    public static bool TryGetBlockLayout(this GgmlType type, out int blockSize, out int typeSize)
    {
        (blockSize, typeSize) = type switch
        {
            GgmlType.F32 => (1, 4),
            GgmlType.F16 => (1, 2),
            GgmlType.Q4_0 => (32, 18),      // f16 d + 16 nibble bytes
            GgmlType.Q4_1 => (32, 20),      // f16 d, m + 16
            GgmlType.Q5_0 => (32, 22),      // f16 d + 4 qh + 16
            GgmlType.Q5_1 => (32, 24),      // f16 d, m + 4 qh + 16
            GgmlType.Q8_0 => (32, 34),      // f16 d + 32
            GgmlType.Q8_1 => (32, 36),      // f16 d, s + 32
            GgmlType.Q2_K => (256, 84),     // 16 scales + 64 qs + f16 d, dmin
            GgmlType.Q3_K => (256, 110),    // 32 hmask + 64 qs + 12 scales + f16 d
            GgmlType.Q4_K => (256, 144),    // f16 d, dmin + 12 scales + 128 qs
            GgmlType.Q5_K => (256, 176),    // f16 d, dmin + 12 scales + 32 qh + 128 qs
            GgmlType.Q6_K => (256, 210),    // 128 ql + 64 qh + 16 scales + f16 d
            GgmlType.Q8_K => (256, 292),    // f32 d + 256 qs + 16 int16 bsums
            GgmlType.IQ2_XXS => (256, 66),  // f16 d + 32 uint16
            GgmlType.IQ2_XS => (256, 74),   // f16 d + 32 uint16 + 8 scales
            GgmlType.IQ3_XXS => (256, 98),  // f16 d + 96
            GgmlType.IQ1_S => (256, 50),    // f16 d + 32 qs + 8 uint16 qh
            GgmlType.IQ4_NL => (32, 18),    // f16 d + 16
            GgmlType.IQ3_S => (256, 110),   // f16 d + 64 qs + 8 qh + 32 signs + 4 scales
            GgmlType.IQ2_S => (256, 82),    // f16 d + 64 qs + 8 qh + 8 scales
            GgmlType.IQ4_XS => (256, 136),  // f16 d + uint16 scales_h + 4 scales_l + 128 qs
            GgmlType.I8 => (1, 1),
            GgmlType.I16 => (1, 2),
            GgmlType.I32 => (1, 4),
            GgmlType.I64 => (1, 8),
            GgmlType.F64 => (1, 8),
            GgmlType.IQ1_M => (256, 56),    // 32 qs + 16 qh + 8 scales
            GgmlType.BF16 => (1, 2),
            GgmlType.TQ1_0 => (256, 54),    // 48 qs + 4 qh + f16 d
            GgmlType.TQ2_0 => (256, 66),    // 64 qs + f16 d
            GgmlType.MXFP4 => (32, 17),     // E8M0 e + 16
            GgmlType.NVFP4 => (64, 36),     // 4 E4M3 scales + 32
            GgmlType.Q1_0 => (128, 18),     // f16 d + 16
            GgmlType.Q2_0 => (64, 18),      // f16 d + 16
            _ => (0, 0),
        };
        return blockSize != 0;
    }
}
