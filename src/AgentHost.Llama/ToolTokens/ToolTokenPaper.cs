namespace AgentHost.Llama.ToolTokens;

/// <summary>
/// ToolkenGPT's settings as its released code runs them (github.com/Ber666/ToolkenGPT: <c>train_llama.py</c>,
/// <c>inference_llama.py</c>), for the <c>paper</c> preset: the training options (<see cref="ToolTokenTrainingOptions.Paper"/>),
/// a random start, the head on h alone, the best epoch on the corpus's last lines, the bias of the task, and argument
/// mode with the tool's demonstrations, unconstrained until <c>)</c> (<see cref="ToolTokenOptions.Paper"/>).
/// docs/paper-presets.md lists where AgentHost's defaults differ and why.
/// </summary>
public static class ToolTokenPaper
{
    /// <summary>The preset's name (<c>--preset paper</c>, <c>toolkens_preset=paper</c>).</summary>
    public const string PresetName = "paper";

    /// <summary>Prior: none, so W starts random (the paper's <c>nn.Linear</c>).</summary>
    public const ToolTokenPrior Prior = ToolTokenPrior.None;

    /// <summary>The paper's head reads h alone.</summary>
    public const int ContextWindow = 0;

    /// <summary>The paper's corpora have no model-written stories added.</summary>
    public const int Negatives = 0;

    /// <summary>
    /// Lines at the end of the training corpus held out to pick the best epoch (the paper holds out the corpus's last
    /// 39 FuncQA / 1,000 GSM8K-XL prompts and keeps every epoch's weights; the demo corpus of 1,200 lines keeps 100).
    /// </summary>
    public const int HeldOutLines = 100;

    /// <summary>
    /// The bias the paper's runs add to tool scores, per task (<c>inference_llama.py --logits_bias</c>, the papers' tables):
    /// GSM8K-XL 3.0, FuncQA one-hop 2.7 and multi-hop 4.0, KAMEL and VirtualHome 10.
    /// </summary>
    public static IReadOnlyDictionary<string, float> TaskBiases { get; } = new Dictionary<string, float>(StringComparer.OrdinalIgnoreCase)
    {
        ["gsm8k-xl"] = 3.0f,
        ["funcqa-oh"] = 2.7f,
        ["funcqa-mh"] = 4.0f,
        ["kamel"] = 10f,
        ["virtualhome"] = 10f,
    };

    /// <summary>The task whose bias the demo corpus takes: arithmetic in text, as GSM8K-XL.</summary>
    public const string DefaultTask = "gsm8k-xl";

    /// <summary>The paper's bias for <paramref name="task"/>; an unknown task is a clear error naming the known ones.</summary>
    public static float BiasOf(string task)
        => TaskBiases.TryGetValue(task ?? "", out var bias)
            ? bias
            : throw new AgentHostException(ErrorKind.InvalidArgument, $"Unknown ToolkenGPT task '{task}'; the paper's biases are for {string.Join(", ", TaskBiases.Keys)}.");
}
