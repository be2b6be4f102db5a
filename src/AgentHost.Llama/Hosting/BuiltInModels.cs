using System.Text.Json;
using System.Text.Json.Serialization;
using AgentHost.Llama.Models;
using Microsoft.Extensions.Options;

namespace AgentHost.Llama.Hosting;

/// <summary>
/// The catalog entries every container gets without configuration: those of the product's appsettings.json,
/// embedded in this assembly (one catalog, not a copy), so that <c>AddLlamaChatCompletion("stories260k")</c> works
/// with nothing but <c>AGENTHOST_MODELS_DIR</c> or the user cache. A configured entry of the same name replaces a built-in one.
/// </summary>
public static class BuiltInModels
{
    private const string ResourceName = "AgentHost.Llama.appsettings.json";

    private static readonly JsonSerializerOptions _json = new()
    {
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>A fresh copy of the built-in entries, by name (any case).</summary>
    public static IReadOnlyDictionary<string, ModelSettings> Create()
    {
        using var stream = typeof(BuiltInModels).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The built-in catalog resource '{ResourceName}' is missing from {typeof(BuiltInModels).Assembly.GetName().Name}.");
        var settings = JsonSerializer.Deserialize<BuiltInSettings>(stream, _json);
        return new Dictionary<string, ModelSettings>(settings?.AgentHost?.Models ?? [], StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Adds the built-in entries whose names <paramref name="options"/> does not configure.</summary>
    public static void AddTo(AgentHostOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        foreach (var (name, settings) in Create())
            options.Models.TryAdd(name, settings);
    }

    private sealed record BuiltInSettings(AgentHostSection? AgentHost);

    private sealed record AgentHostSection(Dictionary<string, ModelSettings>? Models);

    /// <summary>Runs <see cref="AddTo"/> after configuration binding.</summary>
    internal sealed class FillIn : IPostConfigureOptions<AgentHostOptions>
    {
        public void PostConfigure(string? name, AgentHostOptions options) => AddTo(options);
    }
}
