using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Tests;

/// <summary>A model loaded once per fixture, with one shared session.</summary>
public abstract class ModelFixture(string path, ModelSettings settings) : IAsyncLifetime
{
    public LlamaModel Model { get; private set; } = null!;

    public InferenceSession Session { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Model = LlamaModel.Load(Path.GetFileNameWithoutExtension(path), path, settings);
        Session = await Model.CreateSessionAsync();
    }

    public Task DisposeAsync()
    {
        Session.Dispose();
        Model.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>stories260K for every test in the "stories260K" collection.</summary>
public sealed class Stories260KFixture() : ModelFixture(TestModels.Stories260K, Settings)
{
    public static ModelSettings Settings => new() { ContextSize = 512, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 4 };
}

[CollectionDefinition(Name)]
public sealed class Stories260KCollection : ICollectionFixture<Stories260KFixture>
{
    public const string Name = "stories260K";
}
