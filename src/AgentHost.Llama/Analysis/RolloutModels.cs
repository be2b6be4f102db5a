using AgentHost.Llama.Decoding;

namespace AgentHost.Llama.Analysis;

/// <summary>What the verifier of a rollout analysis judges.</summary>
public enum JudgeScope
{
    /// <summary>The completion only, cut at the stop strings (the paper's code; the default).</summary>
    Completion,

    /// <summary>The trajectory's prefix followed by the completion (suits a "contains" verifier on a partial answer).</summary>
    Full,
}

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

/// <summary>What to analyse: a prompt, a (wrong) trajectory or none (then the model writes one), and a verifier.</summary>
public sealed record RolloutRequest
{
    /// <summary>The prompt.</summary>
    public required string Prompt { get; init; }

    /// <summary>The trajectory as text (tokenized together with the prompt); null with no tokens: the model generates one.</summary>
    public string? Trajectory { get; init; }

    /// <summary>The trajectory as token ids (wins over <see cref="Trajectory"/>).</summary>
    public IReadOnlyList<int>? TrajectoryTokens { get; init; }

    /// <summary>Judges responses.</summary>
    public required ITrajectoryVerifier Verifier { get; init; }

    /// <summary>Settings.</summary>
    public RolloutOptions Options { get; init; } = new();
}

/// <summary>Progress of a long analysis.</summary>
/// <param name="Phase">What runs: <c>trajectory</c>, <c>rollouts</c>, <c>alternatives</c> or <c>scoring</c>.</param>
/// <param name="Done">Units done in this phase.</param>
/// <param name="Total">Units in this phase.</param>
public readonly record struct AnalysisProgress(string Phase, int Done, int Total);

/// <summary>One sampled completion and the verifier's verdict on it.</summary>
public sealed record RolloutCompletion
{
    /// <summary>The completion's tokens (an end-of-generation token is not included; the token that completed a stop string is).</summary>
    public required int[] Tokens { get; init; }

    /// <summary>The completion's text, cut before a stop string.</summary>
    public required string Text { get; init; }

    /// <summary>The verdict on <see cref="Text"/> (with <see cref="JudgeScope.Full"/>: on the prefix text followed by it).</summary>
    public required bool Passed { get; init; }

    /// <summary>Why it ended: end of generation, a stop string or max tokens.</summary>
    public required StopReason Stop { get; init; }
}

/// <summary>The rollouts from one prefix <c>prompt + y_1..y_i</c>.</summary>
public sealed record PrefixRollouts
{
    /// <summary>i: how many trajectory tokens the prefix holds (it includes y_i).</summary>
    public required int Length { get; init; }

    /// <summary>The trajectory's first i tokens as text (the verifier sees it only with <see cref="JudgeScope.Full"/>).</summary>
    public required string PrefixText { get; init; }

    /// <summary>c_i: completions the verifier accepted.</summary>
    public required int Correct { get; init; }

    /// <summary>The completions.</summary>
    public required IReadOnlyList<RolloutCompletion> Rollouts { get; init; }
}

/// <summary>The critical token the rule found.</summary>
public sealed record CriticalToken
{
    /// <summary>i (1-based position in the trajectory).</summary>
    public required int Length { get; init; }

    /// <summary>Index of its prefix in <see cref="RolloutReport.Prefixes"/>.</summary>
    public required int PrefixIndex { get; init; }

    /// <summary>The token id y_i.</summary>
    public required int Token { get; init; }

    /// <summary>The token's text.</summary>
    public required string Text { get; init; }
}

/// <summary>The "without" check: alternatives drawn at the critical position with the original token excluded.</summary>
public sealed record CriticalAlternatives
{
    /// <summary>i: the alternatives replace y_i (drawn from the raw softmax at temperature 1, no top-p, of p(. | prompt, y_1..y_{i-1}) with p[y_i] = 0).</summary>
    public required int Length { get; init; }

    /// <summary>The excluded original token y_i.</summary>
    public required int Excluded { get; init; }

    /// <summary>The trajectory's first i - 1 tokens as text (the verifier sees it only with <see cref="JudgeScope.Full"/>).</summary>
    public required string PrefixText { get; init; }

    /// <summary>Completions; each starts with its alternative token.</summary>
    public required IReadOnlyList<RolloutCompletion> Completions { get; init; }

    /// <summary>Completions the verifier accepted.</summary>
    public required int Correct { get; init; }

    /// <summary>pass@k for k = 1..n (unbiased estimator); entry k-1 is pass@k.</summary>
    public required IReadOnlyList<double> PassAtK { get; init; }
}

/// <summary>Settings as run (resolved defaults and seed included).</summary>
public sealed record RolloutSettings
{
    /// <summary>Rollouts per prefix (n).</summary>
    public required int Rollouts { get; init; }

    /// <summary>Prefix stride k: prefixes of k, 2k, ... tokens were analysed.</summary>
    public required int Stride { get; init; }

    /// <summary>Temperature.</summary>
    public required float Temperature { get; init; }

    /// <summary>Top-p.</summary>
    public required float TopP { get; init; }

    /// <summary>Most new tokens per rollout.</summary>
    public required int MaxTokens { get; init; }

    /// <summary>The seed used.</summary>
    public required ulong Seed { get; init; }

    /// <summary>Recovery threshold of the rule.</summary>
    public required int RecoverThreshold { get; init; }

    /// <summary>Stop strings of the rollouts.</summary>
    public required IReadOnlyList<string> StopStrings { get; init; }

    /// <summary>What the verifier judged.</summary>
    public required JudgeScope Judge { get; init; }

    /// <summary>Rollouts decoded in parallel per round (limited by the model's sequences and the context).</summary>
    public required int ParallelSequences { get; init; }
}

/// <summary>Cost of an analysis.</summary>
public sealed record AnalysisStats
{
    /// <summary>Completions sampled (rollouts and alternatives).</summary>
    public required int Completions { get; init; }

    /// <summary>Tokens sampled over all completions.</summary>
    public required long TokensSampled { get; init; }

    /// <summary>llama_decode calls.</summary>
    public required int DecodeCalls { get; init; }

    /// <summary>Wall time in milliseconds.</summary>
    public required double ElapsedMs { get; init; }
}

/// <summary>The result of a rollout analysis: everything needed to recount it.</summary>
public sealed record RolloutReport
{
    /// <summary>Kind tag of the JSON document.</summary>
    public string Kind => "rollouts";

    /// <summary>Model name.</summary>
    public required string Model { get; init; }

    /// <summary>The prompt.</summary>
    public required string Prompt { get; init; }

    /// <summary>The prompt's tokens (BOS included when the model adds one).</summary>
    public required int[] PromptTokens { get; init; }

    /// <summary>The trajectory's tokens y_1..y_T.</summary>
    public required int[] TrajectoryTokens { get; init; }

    /// <summary>Each trajectory token's text.</summary>
    public required string[] TokenTexts { get; init; }

    /// <summary>The trajectory's text.</summary>
    public required string TrajectoryText { get; init; }

    /// <summary>Whether the model generated the trajectory.</summary>
    public required bool TrajectoryGenerated { get; init; }

    /// <summary>The verifier's verdict on the whole trajectory (the rule expects a wrong one).</summary>
    public required bool TrajectoryPasses { get; init; }

    /// <summary>The verifier's description.</summary>
    public required string Verifier { get; init; }

    /// <summary>Settings as run.</summary>
    public required RolloutSettings Settings { get; init; }

    /// <summary>Rollouts per analysed prefix, in prefix order.</summary>
    public required IReadOnlyList<PrefixRollouts> Prefixes { get; init; }

    /// <summary>The critical token, or null when no prefix had zero correct rollouts.</summary>
    public CriticalToken? Critical { get; init; }

    /// <summary>The alternatives at the critical token, or null without one.</summary>
    public CriticalAlternatives? Alternatives { get; init; }

    /// <summary>Cost.</summary>
    public required AnalysisStats Stats { get; init; }
}
