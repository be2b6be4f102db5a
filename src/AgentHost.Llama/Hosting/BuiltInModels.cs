using AgentHost.Llama.Models;
using Microsoft.Extensions.Options;

namespace AgentHost.Llama.Hosting;

/// <summary>
/// The catalog entries every container gets without configuration (the same as appsettings.json ships), so that
/// <c>AddLlamaChatCompletion("stories260k")</c> works with nothing but <c>AGENTHOST_MODELS_DIR</c> or the user cache.
/// A configured entry of the same name replaces a built-in one.
/// </summary>
public static class BuiltInModels
{
    /// <summary>A fresh copy of the built-in entries, by name.</summary>
    public static IReadOnlyDictionary<string, ModelSettings> Create() => new Dictionary<string, ModelSettings>(StringComparer.OrdinalIgnoreCase)
    {
        ["stories260k"] = new()
        {
            File = "stories260K.gguf",
            Url = "https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf",
            Sha256 = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d",
            ContextSize = 2048,
            Threads = 2,
            BatchThreads = 2,
        },
        ["tinystories656k"] = new()
        {
            File = "TinyStories-656K-Q8_0.gguf",
            Sha256 = "c773a9eb8883751131f30e0c1965c56b1102a4972fdac6a6f71fe156ba6d8cb7",
            ContextSize = 512,
            Threads = 2,
            BatchThreads = 2,
        },
    };

    /// <summary>Adds the built-in entries whose names <paramref name="options"/> does not configure.</summary>
    public static void AddTo(AgentHostOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        foreach (var (name, settings) in Create())
            options.Models.TryAdd(name, settings);
    }

    /// <summary>Runs <see cref="AddTo"/> after configuration binding.</summary>
    internal sealed class FillIn : IPostConfigureOptions<AgentHostOptions>
    {
        public void PostConfigure(string? name, AgentHostOptions options) => AddTo(options);
    }
}
