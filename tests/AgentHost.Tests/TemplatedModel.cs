using AgentHost.Llama.Models;

namespace AgentHost.Tests;

/// <summary>A test model with a chat template of the test's choosing: a copy of a GGUF (same weights and vocabulary) with <c>tokenizer.chat_template</c> set.</summary>
internal static class TemplatedModel
{
    public static string Write(string sourcePath, string template, string folder)
    {
        var source = GgufFile.Read(sourcePath);
        var path = Path.Combine(folder, $"templated-{Guid.NewGuid():N}.gguf");
        using var stream = File.Create(path);
        var writer = new GgufWriter(stream);
        foreach (var (key, value) in source.Metadata)
        {
            if (key != "tokenizer.chat_template")
                writer.AddMetadata(key, value);
        }
        writer.AddMetadata("tokenizer.chat_template", template);
        foreach (var tensor in source.Tensors)
            writer.AddTensor(tensor.Name, tensor.Type, tensor.Dimensions);
        writer.WriteHeader();
        foreach (var tensor in source.Tensors)
            writer.WriteTensorData((ReadOnlySpan<float>)source.ReadRows(tensor, 0, (int)GgufFile.RowCount(tensor)));
        writer.Complete();
        return path;
    }
}
