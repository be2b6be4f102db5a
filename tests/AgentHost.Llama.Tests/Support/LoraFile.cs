using System.Text;

namespace AgentHost.Llama.Tests.Support;

/// <summary>
/// Test fixture generator: writes a minimal GGUF v3 LoRA adapter (general.type "adapter", adapter.type "lora")
/// with one F32 pair <c>NAME.lora_a</c> (ne = [in, rank]) and <c>NAME.lora_b</c> (ne = [rank, out]), the layout
/// llama.cpp's adapter loader expects. Values are deterministic noise times <c>scale</c> (0: an adapter that adds nothing).
/// </summary>
internal static class LoraFile
{
    private const int Alignment = 32;

    public static void Write(string path, string architecture, string tensor, int inputs, int outputs, int rank, float scale, ulong seed)
    {
        var a = Noise(inputs * rank, scale, seed);
        var b = Noise(rank * outputs, scale, seed + 1);
        using var stream = File.Create(path);
        using var writer = new BinaryWriter(stream, Encoding.UTF8);
        writer.Write(0x46554747u);   // "GGUF"
        writer.Write(3u);
        writer.Write(2UL);           // tensors
        writer.Write(4UL);           // metadata entries
        String(writer, "general.architecture"); writer.Write(8u); String(writer, architecture);
        String(writer, "general.type"); writer.Write(8u); String(writer, "adapter");
        String(writer, "adapter.type"); writer.Write(8u); String(writer, "lora");
        String(writer, "adapter.lora.alpha"); writer.Write(6u); writer.Write((float)rank);   // alpha = rank: effective scale 1
        var bOffset = Align(a.Length * 4L);
        TensorInfo(writer, tensor + ".lora_a", inputs, rank, 0);
        TensorInfo(writer, tensor + ".lora_b", rank, outputs, bOffset);
        Pad(writer);
        foreach (var value in a)
            writer.Write(value);
        Pad(writer);
        foreach (var value in b)
            writer.Write(value);
    }

    private static void TensorInfo(BinaryWriter writer, string name, long ne0, long ne1, long offset)
    {
        String(writer, name);
        writer.Write(2u);
        writer.Write((ulong)ne0);
        writer.Write((ulong)ne1);
        writer.Write(0u);            // GGML_TYPE_F32
        writer.Write((ulong)offset);
    }

    private static void String(BinaryWriter writer, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }

    private static void Pad(BinaryWriter writer)
    {
        writer.Flush();
        while (writer.BaseStream.Position % Alignment != 0)
            writer.Write((byte)0);
    }

    private static long Align(long value) => (value + Alignment - 1) / Alignment * Alignment;

    private static float[] Noise(int count, float scale, ulong state)
    {
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            var z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            values[i] = (float)((z >> 11) * (1.0 / (1UL << 53)) * 2 - 1) * scale;
        }
        return values;
    }
}
