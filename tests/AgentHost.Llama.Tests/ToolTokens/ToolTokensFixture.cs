using AgentHost.Llama.Models;
using AgentHost.Llama.ToolTokens;

namespace AgentHost.Llama.Tests.ToolTokens;

/// <summary>
/// stories260K with hidden states, and the demo corpus cached once as `toolkens corpus` writes it: a training set
/// (1,200 lines, plus the model's own stories as `toolkens train` adds them), a held-out set of the training templates
/// (100 other lines) and 100 lines of templates never used in training, run through the frozen model with the default
/// context window; and the head the CLI's defaults train.
/// </summary>
public sealed class ToolTokensFixture() : ModelFixture(TestModels.Stories260K, Settings), IAsyncLifetime
{
    public const int Seed = 7;

    private Task<ToolTokenHead>? _head;

    public static ModelSettings Settings => new() { ContextSize = 512, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 4, HiddenStates = true };

    /// <summary>The demo corpus's training lines.</summary>
    public IReadOnlyList<AnnotatedExample> DemoExamples { get; private set; } = null!;

    /// <summary>The demo lines and the model's own stories: what `toolkens train` reads by default.</summary>
    public IReadOnlyList<AnnotatedExample> TrainExamples { get; private set; } = null!;

    public ToolTokenDataset Train { get; private set; } = null!;

    public ToolTokenDataset HeldOut { get; private set; } = null!;

    public ToolTokenDataset Unseen { get; private set; } = null!;

    public IReadOnlyList<string> HeldOutLines { get; private set; } = null!;

    public IReadOnlyList<string> UnseenLines { get; private set; } = null!;

    async Task IAsyncLifetime.InitializeAsync()
    {
        await InitializeAsync();
        var lines = DemoCorpus.Generate(DemoCorpus.DefaultTrainLines + 100, Seed);
        HeldOutLines = lines.Skip(DemoCorpus.DefaultTrainLines).ToList();
        UnseenLines = DemoCorpus.Generate(100, Seed, DemoTemplates.Unseen);
        var stories = await ToolTokenNegatives.SampleAsync(Session, ToolTokenNegatives.DefaultStories, new ToolTokenTrainingOptions().Seed);
        DemoExamples = Parse(lines.Take(DemoCorpus.DefaultTrainLines).ToList());
        TrainExamples = [.. DemoExamples, .. stories];
        Train = await DatasetAsync(TrainExamples, ToolTokenContext.DefaultWindow);
        HeldOut = await DatasetAsync(Parse(HeldOutLines), ToolTokenContext.DefaultWindow);
        Unseen = await DatasetAsync(Parse(UnseenLines), ToolTokenContext.DefaultWindow);
    }

    public static IReadOnlyList<AnnotatedExample> Parse(IReadOnlyList<string> lines) => AnnotatedCorpus.Parse(string.Join('\n', lines));

    public Task<ToolTokenDataset> DatasetAsync(IReadOnlyList<AnnotatedExample> examples, int contextWindow)
        => ToolTokenDataset.BuildAsync(Session, examples, DemoCorpus.ToolNames, contextWindow);

    /// <summary>A head trained on <paramref name="data"/> with <paramref name="options"/> from the name prior (TokenLearning's hidden-state variant).</summary>
    public async Task<ToolTokenHead> TrainAsync(ToolTokenDataset data, ToolTokenTrainingOptions options)
    {
        var prior = await ToolTokenPriors.BuildAsync(ToolTokenPrior.HiddenStates, Session, DemoCorpus.ToolNames, ToolTokenPriors.DefaultScale);
        var trainer = new ToolTokenTrainer(data, prior, options);
        return ToolTokenHead.Create(Model, data, [.. TestTools.Arithmetic().Select(t => new ToolTokenSlot(t.Name, t.SchemaHash))], trainer.Train(), trainer.Prior);
    }

    /// <summary>The head `toolkens train` makes with its defaults on the training set (trained once).</summary>
    public Task<ToolTokenHead> DefaultHeadAsync() => _head ??= TrainAsync(Train, new ToolTokenTrainingOptions());
}

[CollectionDefinition(Name)]
public sealed class ToolTokensCollection : ICollectionFixture<ToolTokensFixture>
{
    public const string Name = "toolkens";
}
