namespace AgentHost.Llama.Analysis;

/// <summary>Sampling and search settings of a rollout analysis (the paper's defaults where they fit a CPU).</summary>
public sealed record RolloutOptions
{
    /// <summary>Most <see cref="Rollouts"/> (the paper uses 64); every rollout is a completion per prefix.</summary>
    public const int MaxRollouts = 1024;

    /// <summary>Most completions one analysis may run (prefixes x rollouts); beyond it, analyse every k-th prefix (<see cref="Stride"/>).</summary>
    public const int MaxCompletions = 1_000_000;

    /// <summary>Most <see cref="TrajectoryAttempts"/>.</summary>
    public const int MaxTrajectoryAttempts = 1000;

    /// <summary>Most <see cref="StopStrings"/>.</summary>
    public const int MaxStopStrings = 16;

    /// <summary>Longest stop string, in characters.</summary>
    public const int MaxStopLength = 256;

    /// <summary>Rollouts per prefix, and alternatives at the critical token (the paper: 64).</summary>
    public int Rollouts { get; init; } = 16;

    /// <summary>Analyse every k-th prefix (lengths k, 2k, ...); 1 analyses every token as the paper does.</summary>
    public int Stride { get; init; } = 1;

    /// <summary>Sampling temperature of rollouts and of a generated trajectory (must be positive).</summary>
    public float Temperature { get; init; } = 1.0f;

    /// <summary>Top-p of rollouts (the paper: 0.95). No top-k or min-p cut is applied.</summary>
    public float TopP { get; init; } = 0.95f;

    /// <summary>Most new tokens per rollout (the paper: 1024).</summary>
    public int MaxTokens { get; init; } = 64;

    /// <summary>A rollout ends at the first of these strings; its text (what the verifier judges) ends before it.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>What the verifier judges: the completion only (default) or the prefix followed by the completion.</summary>
    public JudgeScope Judge { get; init; } = JudgeScope.Completion;

    /// <summary>Seed of every draw; null picks one (reported so the run can be repeated).</summary>
    public ulong? Seed { get; init; }

    /// <summary>
    /// A later prefix with more correct rollouts than this resets the critical candidate; null scales the
    /// paper's 3 of 64 to <see cref="Rollouts"/> (<see cref="CriticalTokenRule.DefaultRecoverThreshold"/>).
    /// </summary>
    public int? RecoverThreshold { get; init; }

    /// <summary>Most tokens of a trajectory the model generates (when none is given).</summary>
    public int TrajectoryMaxTokens { get; init; } = 64;

    /// <summary>How many trajectories to generate, looking for one the verifier rejects (when none is given).</summary>
    public int TrajectoryAttempts { get; init; } = 8;

    /// <summary>The datasets of the paper's sampling configuration (<c>TEMPERATURE_BY_DATASET_AND_MODEL</c>).</summary>
    public static IReadOnlyList<string> PaperDatasets { get; } = ["GSM8K", "MATH"];

    /// <summary>
    /// The paper's rollout temperature by dataset and model (Critical-Tokens-Matter <c>src/configs/data_config.py</c>,
    /// chosen there so that each question gets about 10 wrong answers of 64).
    /// </summary>
    public static IReadOnlyDictionary<string, IReadOnlyDictionary<string, float>> PaperTemperatures { get; } = new Dictionary<string, IReadOnlyDictionary<string, float>>
    {
        ["GSM8K"] = new Dictionary<string, float> { ["Meta-Llama-3-8B"] = 0.5f, ["Meta-Llama-3-70B"] = 0.85f, ["deepseek-math-7b-base"] = 1.0f, ["Qwen2.5-7B"] = 0.9f, ["Qwen2.5-32B"] = 1.1f },
        ["MATH"] = new Dictionary<string, float> { ["Meta-Llama-3-8B"] = 0.1f, ["Meta-Llama-3-70B"] = 0.15f, ["deepseek-math-7b-base"] = 0.3f, ["Qwen2.5-7B"] = 0.5f, ["Qwen2.5-32B"] = 0.7f },
    };

    /// <summary>The paper's rollout stop strings (<c>get_model_sampling_config</c>: the few-shot prompt's next question).</summary>
    public static IReadOnlyList<string> PaperStopStrings { get; } = ["\n\nQuestion:", ".\n\nQuestion:", "\n\nProblem:", ".\n\nProblem:"];

    /// <summary>
    /// The paper's rollout sampling (<c>vllm_model_sampling</c> with <c>get_model_sampling_config</c>): 64 rollouts,
    /// top-p 0.95, 1,024 new tokens, its stop strings, and the temperature of <paramref name="paperModel"/> on
    /// <paramref name="dataset"/>; the rest (judge, recover threshold) are already the paper's by default.
    /// </summary>
    /// <param name="dataset">GSM8K or MATH (case-insensitive).</param>
    /// <param name="paperModel">One of the paper's models (case-insensitive), for its temperature.</param>
    public static RolloutOptions Paper(string dataset, string paperModel)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(paperModel);
        var data = PaperTemperatures.FirstOrDefault(d => string.Equals(d.Key, dataset, StringComparison.OrdinalIgnoreCase));
        Guard.Require(data.Value is not null, $"The paper's configuration has no dataset '{dataset}'; use one of {string.Join(", ", PaperDatasets)}.");
        var model = data.Value!.FirstOrDefault(m => string.Equals(m.Key, paperModel, StringComparison.OrdinalIgnoreCase));
        Guard.Require(model.Key is not null,
            $"The paper's configuration has no temperature for model '{paperModel}'; use one of {string.Join(", ", data.Value!.Keys)} (or give the temperature yourself).");
        return new RolloutOptions { Rollouts = 64, TopP = 0.95f, MaxTokens = 1024, StopStrings = PaperStopStrings, Temperature = model.Value };
    }

    /// <summary>Throws an <see cref="AgentHostException"/> naming the first invalid value.</summary>
    public void Validate()
    {
        Guard.Require(Rollouts is >= 1 and <= MaxRollouts, $"rollouts must be from 1 to {MaxRollouts}, not {Rollouts}.");
        Guard.Require(Stride >= 1, $"stride must be at least 1, not {Stride}.");
        Guard.Require(float.IsFinite(Temperature) && Temperature > 0, $"rollout temperature must be positive, not {Temperature}.");
        Guard.Require(TopP is > 0 and <= 1, $"top-p must be in (0, 1], not {TopP}.");
        Guard.Require(MaxTokens >= 1, $"max tokens must be at least 1, not {MaxTokens}.");
        Guard.Require(RecoverThreshold is null or >= 0, $"recover threshold must be 0 or more, not {RecoverThreshold}.");
        Guard.Require(TrajectoryMaxTokens >= 1, $"trajectory tokens must be at least 1, not {TrajectoryMaxTokens}.");
        Guard.Require(TrajectoryAttempts is >= 1 and <= MaxTrajectoryAttempts, $"trajectory attempts must be from 1 to {MaxTrajectoryAttempts}, not {TrajectoryAttempts}.");
        Guard.Require(StopStrings is not null && StopStrings.Count <= MaxStopStrings, $"at most {MaxStopStrings} stop strings, not {StopStrings?.Count}.");
        foreach (var stop in StopStrings!)
            Guard.Require(stop is { Length: > 0 and <= MaxStopLength }, $"a stop string must have 1 to {MaxStopLength} characters.");
        Guard.Require(Enum.IsDefined(Judge), $"judge must be 'completion' or 'full', not {Judge}.");
    }
}
