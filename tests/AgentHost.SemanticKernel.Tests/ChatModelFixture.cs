using AgentHost.Llama.Models;
using AgentHost.Llama.Tests;

namespace AgentHost.SemanticKernel.Tests;

/// <summary>stories260K loaded once for every chat test (one compute thread, see TestModels.Threads).</summary>
public sealed class ChatModelFixture : IDisposable
{
    public ChatModelFixture()
        => Model = LlamaModel.Load("stories260K", TestModels.Stories260K, Settings);

    public static ModelSettings Settings => new() { ContextSize = 1024, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 16 };

    public LlamaModel Model { get; }

    public void Dispose() => Model.Dispose();
}

[CollectionDefinition(Name)]
public sealed class ChatModelCollection : ICollectionFixture<ChatModelFixture>
{
    public const string Name = "chat-stories260K";
}
