using AgentHost.Extensions.AI.Chat;
using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests;

namespace AgentHost.SemanticKernel.Tests;

/// <summary>The shipped catalog's shape (nothing is downloaded: no test reaches the internet) and its table in the docs.</summary>
public sealed class ModelCatalogTests
{
    private static readonly IReadOnlyDictionary<string, ModelSettings> _catalog = BuiltInModels.Create();

    public static TheoryData<string> Downloadable => [.. _catalog.Where(e => e.Value.Url is not null).Select(e => e.Key).Order(StringComparer.Ordinal)];

    // Each shipped family and the golden copy of its own chat template (ChatTemplates/templates).
    private static readonly Dictionary<string, string> _familyTemplates = new(StringComparer.Ordinal)
    {
        ["qwen2.5-"] = "qwen2.5", ["llama3.2-"] = "llama3.2", ["phi4-mini"] = "phi-4-mini-hf", ["gemma3-"] = "gemma3", ["mistral-7b"] = "mistral-7b-v0.3",
    };

    [Fact]
    public void The_catalog_ships_real_instruct_models_of_each_chat_family()
    {
        var real = _catalog.Where(e => e.Value.Url is not null).Select(e => e.Key).Where(n => !n.StartsWith("stories", StringComparison.Ordinal)).ToList();
        Assert.All(_familyTemplates.Keys, prefix => Assert.Contains(real, n => n.StartsWith(prefix, StringComparison.Ordinal)));
        Assert.True(Downloadable.Count >= 9, $"only {Downloadable.Count} downloadable entries");
    }

    [Theory]
    [MemberData(nameof(Downloadable))]
    public void Every_downloadable_entry_has_every_field_and_known_formats(string name)
    {
        var settings = _catalog[name];

        settings.Validate(name);
        // Hub files are hf: references, so a configured mirror (AgentHost:HuggingFaceEndpoint) serves them too.
        var reference = HuggingFaceReference.Parse(settings.Url!);
        Assert.NotNull(reference.File);
        // The download is kept under File: the reference's file and the entry's must agree.
        Assert.Equal(settings.File, Path.GetFileName(reference.File));
        Assert.EndsWith(".gguf", settings.File, StringComparison.Ordinal);
        Assert.True(settings.Size > 0, $"{name}: no Size");
        Assert.True(settings.ContextSize > 0, $"{name}: no ContextSize");
        Assert.False(string.IsNullOrWhiteSpace(settings.License), $"{name}: no License");
        // Real models are written with their GGUF's own chat template: no entry pins a built-in format over it
        // (the story models have no template: plain).
        Assert.Equal(name.StartsWith("stories", StringComparison.Ordinal) ? "plain" : null, settings.ChatFormat);
        // A digest only where it is known (never a guessed one): 64 hex digits or none, and then trust on first use.
        Assert.True(settings.Sha256 is null || ModelDigestFormat(settings.Sha256), $"{name}: Sha256 '{settings.Sha256}'");
    }

    [Theory]
    [MemberData(nameof(Downloadable))]
    public void A_hugging_face_entry_is_what_an_hf_reference_to_its_quantisation_names(string name)
    {
        var settings = _catalog[name];
        var reference = HuggingFaceReference.Parse(settings.Url!);

        if (!name.StartsWith("stories", StringComparison.Ordinal))
            Assert.True(HuggingFaceReference.Parse($"hf:{reference.RepositoryId}:Q4_K_M").Matches(reference), $"{name} is not Q4_K_M");
    }

    [Theory]
    [MemberData(nameof(Downloadable))]
    public void The_configuration_docs_table_lists_each_entry_with_its_formats_and_licence(string name)
    {
        var settings = _catalog[name];
        var docs = File.ReadAllLines(Path.Combine(TestModels.RepositoryRoot()!, "docs", "configuration.md"));

        var row = Assert.Single(docs, l => l.StartsWith($"| `{name}` |", StringComparison.Ordinal));
        if (_familyTemplates.FirstOrDefault(f => name.StartsWith(f.Key, StringComparison.Ordinal)).Value is { } template)
        {
            // The tool-call syntax the family's own template teaches (the golden copy of it).
            var source = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "ChatTemplates", "templates", template + ".jinja"));
            Assert.Contains($"| `gguf` | `{ToolCallFormat.FromChatTemplate(source).Name}` |", row, StringComparison.Ordinal);
        }
        else
        {
            Assert.Contains("| `plain` | `generic` |", row, StringComparison.Ordinal);
        }
        Assert.Contains($"| {settings.License} |", row, StringComparison.Ordinal);
        Assert.Contains(settings.File!, row, StringComparison.Ordinal);
    }

    private static bool ModelDigestFormat(string value) => value.Length == 64 && value.All(char.IsAsciiHexDigit);
}
