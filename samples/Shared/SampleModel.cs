namespace AgentHost.Samples;

/// <summary>
/// The samples' model file: the first argument, else stories260K.gguf in AGENTHOST_MODELS_DIR. A missing file is
/// one line on stderr (the caller exits 1); an invalid one is reported by AgentHost at first use.
/// </summary>
internal static class SampleModel
{
    /// <summary>The model's full path, or null after printing why there is none.</summary>
    public static string? PathFrom(string[] args)
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
            Console.Error.WriteLine($"error: model file '{path}' does not exist.");
            return null;
        }
        return Path.GetFullPath(path);
    }
}
