namespace AgentHost.Llama.Decoding;

/// <summary>An option a strategy accepts: its key (as in <c>ChatOptions.AdditionalProperties</c>) and help. Hosts name it their own way (the CLI as <c>--key-with-dashes</c>).</summary>
/// <param name="Key">Key in <see cref="StrategyOptions"/>, e.g. <c>cautious_max_trials</c>.</param>
/// <param name="Help">One line of help, with the default.</param>
/// <param name="NamesFile">Whether the value is a file path: hosts that serve untrusted requests refuse it there (the operator configures such files).</param>
/// <param name="Required">Whether the strategy cannot run without it.</param>
public sealed record StrategyOption(string Key, string Help, bool NamesFile = false, bool Required = false);
