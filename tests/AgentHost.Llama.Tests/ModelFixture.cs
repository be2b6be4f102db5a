using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Tests;

/// <summary>stories260K loaded once for every test in the "stories260K" collection, with one shared session.</summary>
public sealed class Stories260KFixture : IAsyncLifetime
{
    public LlamaModel Model { get; private set; } = null!;

    public InferenceSession Session { get; private set; } = null!;

    public static ModelSettings Settings => new() { ContextSize = 512, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 4 };

    public async Task InitializeAsync()
    {
        Model = LlamaModel.Load("stories260k", TestModels.Stories260K, Settings);
        Session = await Model.CreateSessionAsync();
    }

    public Task DisposeAsync()
    {
        Session.Dispose();
        Model.Dispose();
        return Task.CompletedTask;
    }
}

[CollectionDefinition(Name)]
public sealed class Stories260KCollection : ICollectionFixture<Stories260KFixture>
{
    public const string Name = "stories260K";
}
