using AgentHost.Llama.Models;
using AgentHost.Llama.ToolTokens;

namespace AgentHost.Llama.Tests.ToolTokens;

/// <summary>
/// stories260K with hidden states, and the demo corpus cached once: a training set (300 lines) and a
/// held-out set (100 other lines) run through the frozen model.
/// </summary>
public sealed class ToolTokensFixture() : ModelFixture(TestModels.Stories260K, Settings), IAsyncLifetime
{
    public static ModelSettings Settings => new() { ContextSize = 512, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 4, HiddenStates = true };

    public ToolTokenDataset Train { get; private set; } = null!;

    public ToolTokenDataset HeldOut { get; private set; } = null!;

    public IReadOnlyList<string> HeldOutLines { get; private set; } = null!;

    async Task IAsyncLifetime.InitializeAsync()
    {
        await InitializeAsync();
        var lines = DemoCorpus.Generate(400, seed: 7);
        HeldOutLines = lines.Skip(300).ToList();
        Train = await ToolTokenDataset.BuildAsync(Session, AnnotatedCorpus.Parse(string.Join('\n', lines.Take(300))), DemoCorpus.ToolNames);
        HeldOut = await ToolTokenDataset.BuildAsync(Session, AnnotatedCorpus.Parse(string.Join('\n', HeldOutLines)), DemoCorpus.ToolNames);
    }
}

[CollectionDefinition(Name)]
public sealed class ToolTokensCollection : ICollectionFixture<ToolTokensFixture>
{
    public const string Name = "toolkens";
}
