using AgentHost.Llama;
using AgentHost.Llama.Models;

namespace AgentHost.Samples;

/// <summary>
/// The samples' model: the first argument, else stories260K.gguf in AGENTHOST_MODELS_DIR. A missing or
/// invalid file is one line on stderr (the caller exits 1), never a stack trace.
/// </summary>
internal static class SampleModel
{
    /// <summary>The loaded model, or null after printing why there is none.</summary>
    public static LlamaModel? Load(string[] args, ModelSettings settings)
    {
        var modelsDir = Environment.GetEnvironmentVariable("AGENTHOST_MODELS_DIR");
        var path = args.Length > 0 ? args[0]
            : string.IsNullOrEmpty(modelsDir) ? null
            : Path.Combine(modelsDir, "stories260K.gguf");
        if (path is null)
        {
            Console.Error.WriteLine("usage: dotnet run -- <model.gguf>   (or set AGENTHOST_MODELS_DIR to a folder holding stories260K.gguf)");
            return null;
        }
        try
        {
            return LlamaModel.Load(Path.GetFileNameWithoutExtension(path), Path.GetFullPath(path), settings);
        }
        catch (AgentHostException ex)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return null;
        }
    }
}
