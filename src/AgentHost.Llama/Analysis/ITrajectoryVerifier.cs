namespace AgentHost.Llama.Analysis;

/// <summary>
/// Judges whether a response (a trajectory prefix plus its completion) is correct. The engine knows no
/// Semantic Kernel: a plugin function becomes a verifier through an adapter in the SK layer.
/// </summary>
public interface ITrajectoryVerifier
{
    /// <summary>What the verifier checks, in a few words (shown in reports).</summary>
    string Description { get; }

    /// <summary>Whether <paramref name="response"/>, the model's answer to <paramref name="prompt"/>, is correct.</summary>
    ValueTask<bool> VerifyAsync(string prompt, string response, CancellationToken cancellationToken);
}
