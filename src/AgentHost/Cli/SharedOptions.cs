using System.CommandLine;
using AgentHost.Llama.Decoding;

namespace AgentHost.Cli;

/// <summary>The options several verbs take, declared once (same name, help and default everywhere).</summary>
internal static class SharedOptions
{
    private static readonly SamplingOptions _sampling = new();

    /// <summary><c>--model</c>: what every verb that loads a model takes.</summary>
    public static Option<string?> Model { get; } = CliOption.Text("--model", "Catalog name, path to a .gguf file or Hugging Face reference hf:OWNER/REPO[/FILE.gguf|:QUANT] (default: AgentHost:DefaultModel).", "NAME|PATH");

    /// <summary><c>--json</c>: print the result as JSON instead of text.</summary>
    public static Option<bool> Json { get; } = CliOption.Flag("--json", "Print the result as one JSON document instead of text.");

    /// <summary><c>--prompt</c>: the text a verb starts from.</summary>
    public static Option<string?> Prompt { get; } = CliOption.Text("--prompt", "The prompt (required).", "TEXT");

    /// <summary><c>--stop</c>: stop strings.</summary>
    public static Option<string[]> Stop { get; } = CliOption.Repeated("--stop", "Stop string; the text ends before it.", "STR");

    /// <summary><c>--seed</c>: the random seed of sampling.</summary>
    public static Option<ulong?> Seed { get; } = CliOption.OptionalULong("--seed", "Random seed for sampling (default: random, reported).", "S");

    /// <summary><c>--temperature</c>.</summary>
    public static Option<float> Temperature { get; } = CliOption.Float("--temperature", "Sampling temperature.", "T", _sampling.Temperature);

    /// <summary><c>--top-k</c>.</summary>
    public static Option<int> TopK { get; } = CliOption.Int("--top-k", "Top-k, 0 = off.", "K", _sampling.TopK, min: 0);

    /// <summary><c>--top-p</c>.</summary>
    public static Option<float> TopP { get; } = CliOption.Float("--top-p", "Top-p in (0, 1].", "P", _sampling.TopP);

    /// <summary><c>--min-p</c>.</summary>
    public static Option<float> MinP { get; } = CliOption.Float("--min-p", "Min-p in [0, 1).", "P", _sampling.MinP);

    /// <summary><c>--repeat-penalty</c>.</summary>
    public static Option<float> RepeatPenalty { get; } = CliOption.Float("--repeat-penalty", "Repetition penalty, 1 = off.", "X", _sampling.RepeatPenalty);

    /// <summary><c>--frequency-penalty</c>.</summary>
    public static Option<float> FrequencyPenalty { get; } = CliOption.Float("--frequency-penalty", "Frequency penalty.", "X", _sampling.FrequencyPenalty);

    /// <summary><c>--presence-penalty</c>.</summary>
    public static Option<float> PresencePenalty { get; } = CliOption.Float("--presence-penalty", "Presence penalty.", "X", _sampling.PresencePenalty);

    /// <summary>Every sampling option, the seed included.</summary>
    public static IReadOnlyList<Option> Sampling { get; } = [Temperature, TopK, TopP, MinP, RepeatPenalty, FrequencyPenalty, PresencePenalty, Seed];

    /// <summary><c>--strategy</c> over <paramref name="extra"/> and the strategies of <see cref="DecodingStrategies"/>.</summary>
    public static Option<string> Strategy(params string[] extra)
        => CliOption.Text("--strategy", $"Decoding strategy: {string.Join(", ", DecodingStrategies.Names.Concat(extra))}.", "NAME", DecodingStrategies.Greedy.Name, [.. DecodingStrategies.Names, .. extra]);

    /// <summary><c>--max-tokens</c> with this verb's default.</summary>
    public static Option<int> MaxTokens(int defaultValue, string description = "Most tokens to generate.")
        => CliOption.Int("--max-tokens", description, "N", defaultValue, min: 1);

    /// <summary>The sampling settings the user gave, over the defaults; null when none was given.</summary>
    public static SamplingOptions? ReadSampling(ParseResult parse)
        => !Sampling.Any(parse.Has) ? null : new SamplingOptions
        {
            Temperature = parse.GetValue(Temperature),
            TopK = parse.GetValue(TopK),
            TopP = parse.GetValue(TopP),
            MinP = parse.GetValue(MinP),
            RepeatPenalty = parse.GetValue(RepeatPenalty),
            FrequencyPenalty = parse.GetValue(FrequencyPenalty),
            PresencePenalty = parse.GetValue(PresencePenalty),
            Seed = parse.GetValue(Seed),
        };
}
