namespace AgentHost.Llama.Analysis;

/// <summary>Progress of a long analysis.</summary>
/// <param name="Phase">What runs: <c>trajectory</c>, <c>rollouts</c>, <c>alternatives</c> or <c>scoring</c>.</param>
/// <param name="Done">Units done in this phase.</param>
/// <param name="Total">Units in this phase.</param>
public readonly record struct AnalysisProgress(string Phase, int Done, int Total);
