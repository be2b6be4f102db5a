namespace AgentHost.Llama.Analysis;

/// <summary>A preference pair for cDPO: a prompt with a correct (chosen) and an incorrect (rejected) response.</summary>
/// <param name="Prompt">The prompt.</param>
/// <param name="Chosen">The correct response (the positive side).</param>
/// <param name="Rejected">The incorrect response (the negative side).</param>
public sealed record CdpoPair(string Prompt, string Chosen, string Rejected);
