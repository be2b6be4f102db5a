namespace AgentHost.Llama.Models;

/// <summary>
/// The element type of a tensor in a GGUF file, numbered exactly as <c>enum ggml_type</c> in llama.cpp's
/// <c>ggml/include/ggml.h</c>. Numbers that ggml removed (4, 5, 31-33, 36-38) have no member; a file can
/// still hold any number, which then reads as an unnamed <see cref="GgmlType"/> value.
/// </summary>
public enum GgmlType
{
    /// <summary>32-bit IEEE float.</summary>
    F32 = 0,
    /// <summary>16-bit IEEE half float.</summary>
    F16 = 1,
    /// <summary>4-bit quantization, blocks of 32 with an f16 scale.</summary>
    Q4_0 = 2,
    /// <summary>4-bit quantization, blocks of 32 with an f16 scale and minimum.</summary>
    Q4_1 = 3,
    /// <summary>5-bit quantization, blocks of 32 with an f16 scale.</summary>
    Q5_0 = 6,
    /// <summary>5-bit quantization, blocks of 32 with an f16 scale and minimum.</summary>
    Q5_1 = 7,
    /// <summary>8-bit quantization, blocks of 32 with an f16 scale.</summary>
    Q8_0 = 8,
    /// <summary>8-bit quantization, blocks of 32 with an f16 scale and sum (intermediate type).</summary>
    Q8_1 = 9,
    /// <summary>2-bit K-quant, super-blocks of 256.</summary>
    Q2_K = 10,
    /// <summary>3-bit K-quant, super-blocks of 256.</summary>
    Q3_K = 11,
    /// <summary>4-bit K-quant, super-blocks of 256.</summary>
    Q4_K = 12,
    /// <summary>5-bit K-quant, super-blocks of 256.</summary>
    Q5_K = 13,
    /// <summary>6-bit K-quant, super-blocks of 256.</summary>
    Q6_K = 14,
    /// <summary>8-bit K-quant, super-blocks of 256 (intermediate type).</summary>
    Q8_K = 15,
    /// <summary>Importance-matrix 2-bit quant (2.06 bits per weight).</summary>
    IQ2_XXS = 16,
    /// <summary>Importance-matrix 2-bit quant (2.31 bits per weight).</summary>
    IQ2_XS = 17,
    /// <summary>Importance-matrix 3-bit quant (3.06 bits per weight).</summary>
    IQ3_XXS = 18,
    /// <summary>Importance-matrix 1-bit quant (1.56 bits per weight).</summary>
    IQ1_S = 19,
    /// <summary>Non-linear 4-bit quant, blocks of 32.</summary>
    IQ4_NL = 20,
    /// <summary>Importance-matrix 3-bit quant (3.44 bits per weight).</summary>
    IQ3_S = 21,
    /// <summary>Importance-matrix 2-bit quant (2.56 bits per weight).</summary>
    IQ2_S = 22,
    /// <summary>Non-linear 4-bit quant, super-blocks of 256.</summary>
    IQ4_XS = 23,
    /// <summary>8-bit signed integer.</summary>
    I8 = 24,
    /// <summary>16-bit signed integer.</summary>
    I16 = 25,
    /// <summary>32-bit signed integer.</summary>
    I32 = 26,
    /// <summary>64-bit signed integer.</summary>
    I64 = 27,
    /// <summary>64-bit IEEE double.</summary>
    F64 = 28,
    /// <summary>Importance-matrix 1-bit quant (1.75 bits per weight).</summary>
    IQ1_M = 29,
    /// <summary>16-bit brain float.</summary>
    BF16 = 30,
    /// <summary>Ternary quant (1.69 bits per weight).</summary>
    TQ1_0 = 34,
    /// <summary>Ternary quant (2.06 bits per weight).</summary>
    TQ2_0 = 35,
    /// <summary>Microscaling FP4, blocks of 32 with an E8M0 scale.</summary>
    MXFP4 = 39,
    /// <summary>NVIDIA FP4, blocks of 64 with four E4M3 scales (newer than LLamaSharp 0.30's llama.cpp).</summary>
    NVFP4 = 40,
    /// <summary>1-bit quant, blocks of 128 with an f16 scale (newer than LLamaSharp 0.30's llama.cpp).</summary>
    Q1_0 = 41,
    /// <summary>2-bit quant, blocks of 64 with an f16 scale (newer than LLamaSharp 0.30's llama.cpp).</summary>
    Q2_0 = 42,
}
