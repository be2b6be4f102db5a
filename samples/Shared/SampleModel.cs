namespace AgentHost.Samples;

/// <summary>Where the samples find their GGUF model: the first argument, else stories260K.gguf in AGENTHOST_MODELS_DIR.</summary>
internal static class SampleModel
{
    /// <summary>The model's full path, or null after printing why there is none.</summary>
    public static string? Resolve(string[] args)
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
        if (!File.Exists(path))
        {
            Console.Error.WriteLine($"error: model file '{Path.GetFullPath(path)}' not found.");
            return null;
        }
        return Path.GetFullPath(path);
    }
}
