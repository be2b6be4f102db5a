using System.Buffers.Binary;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Tests.Support;

/// <summary>
/// Test fixture generator: a copy of a GGUF model whose F32 tensor <c>output.weight</c> has deterministic noise
/// added, so it has the same tokenizer (and vocabulary) but different logits. The tensor is located through the
/// managed <see cref="GgufFile"/> reader (data offset + tensor offset).
/// </summary>
internal static class PerturbedModel
{
    public const string Tensor = "output.weight";

    /// <summary>Writes the perturbed copy of <paramref name="source"/> to <paramref name="target"/> and returns how many floats changed.</summary>
    public static int Write(string source, string target, float scale = 0.5f, ulong seed = 7)
    {
        var gguf = GgufFile.Read(source);
        var tensor = gguf.Tensors.Single(t => t.Name == Tensor);
        if (tensor.Type != GgmlType.F32)
            throw new InvalidOperationException($"{Tensor} of {source} is {tensor.Type}, not F32.");
        var bytes = File.ReadAllBytes(source);
        var start = checked((int)(gguf.DataOffset + (long)tensor.Offset));
        var count = checked((int)(tensor.ByteSize!.Value / 4));
        var state = seed;
        for (var i = 0; i < count; i++)
        {
            var at = bytes.AsSpan(start + 4 * i, 4);
            var value = BinaryPrimitives.ReadSingleLittleEndian(at);
            // SplitMix64 noise, uniform in [-scale, scale].
            var z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            var noise = (float)((z >> 11) * (1.0 / (1UL << 53)) * 2 - 1) * scale;
            BinaryPrimitives.WriteSingleLittleEndian(at, value + noise);
        }
        File.WriteAllBytes(target, bytes);
        return count;
    }
}
