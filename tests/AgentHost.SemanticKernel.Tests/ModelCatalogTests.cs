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

    [Fact]
    public void The_catalog_ships_real_instruct_models_of_each_chat_family()
    {
        var families = _catalog.Values.Where(s => s.Url is not null).Select(s => s.ChatFormat).ToHashSet(StringComparer.Ordinal);

        Assert.Superset(new HashSet<string?>(["chatml", "llama3", "mistral", "gemma", "phi3"], StringComparer.Ordinal), families);
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
        Assert.Contains(settings.ChatFormat, ChatFormatCatalog.KnownNames);
        Assert.NotNull(ChatFormatCatalog.Default.Get(settings.ChatFormat!).ToolCalls);
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
        var toolCalls = ChatFormatCatalog.Default.Get(settings.ChatFormat!).ToolCalls.Name;
        Assert.Contains($"| `{settings.ChatFormat}` | `{toolCalls}` |", row, StringComparison.Ordinal);
        Assert.Contains($"| {settings.License} |", row, StringComparison.Ordinal);
        Assert.Contains(settings.File!, row, StringComparison.Ordinal);
    }

    private static bool ModelDigestFormat(string value) => value.Length == 64 && value.All(char.IsAsciiHexDigit);
}
