namespace AgentHost.Llama.ToolTokens;

/// <summary>Settings of <see cref="ToolTokenTrainer"/>.</summary>
public sealed record ToolTokenTrainingOptions
{
    /// <summary>Adam learning rate (with <see cref="Epochs"/>, measured best of 0.01 / 0.003 and 20 / 40 on three demo corpora).</summary>
    public double LearningRate { get; init; } = 3e-3;

    /// <summary>Passes over the data.</summary>
    public int Epochs { get; init; } = 40;

    /// <summary>Positions per Adam step.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>
    /// Weight of the penalty towards W0: none, as ToolkenGPT (TokenLearning uses 0.01). A penalty towards the name's
    /// prior kept the head from learning the context part and lowered both F1 figures on the demo corpus.
    /// </summary>
    public double Lambda { get; init; }

    /// <summary>Form of the penalty.</summary>
    public ToolTokenRegularizer Regularizer { get; init; } = ToolTokenRegularizer.Frobenius;

    /// <summary>
    /// Train on call-start positions only (TokenLearning's default); otherwise every position keeps its
    /// next-token label and teaches the head where not to fire (ToolkenGPT's default, and this host's).
    /// </summary>
    public bool OnlyToolTokens { get; init; }

    /// <summary>Seed of the batch order (and of the random start of <see cref="ToolTokenPrior.None"/>): the same seed and data give the same W.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>
    /// One Adam step per corpus line (ToolkenGPT's trainer: one sequence per step) instead of <see cref="BatchSize"/>
    /// positions drawn across lines.
    /// </summary>
    public bool PerSequence { get; init; }

    /// <summary>
    /// ToolkenGPT's code as released (<c>train_llama.py</c>): 20 epochs of Adam at 1e-3, one sequence per step, every
    /// position labelled, no penalty, seed 1. The paper's other settings (a random start, the best epoch on held-out
    /// lines, the head on h alone, the task's bias) are in <see cref="ToolTokenPaper"/>.
    /// </summary>
    public static ToolTokenTrainingOptions Paper { get; } = new()
    {
        Epochs = 20,
        LearningRate = 1e-3,
        PerSequence = true,
        Lambda = 0,
        OnlyToolTokens = false,
        Seed = 1,
    };

    /// <summary>Throws an <see cref="AgentHostException"/> naming the first invalid value.</summary>
    public void Validate()
    {
        Guard.Require(LearningRate > 0 && double.IsFinite(LearningRate), $"The learning rate must be positive, not {LearningRate}.");
        Guard.Require(Epochs >= 1, $"Epochs must be at least 1, not {Epochs}.");
        Guard.Require(BatchSize >= 1, $"The batch size must be at least 1, not {BatchSize}.");
        Guard.Require(Lambda >= 0 && double.IsFinite(Lambda), $"Lambda must be 0 or more, not {Lambda}.");
    }
}
