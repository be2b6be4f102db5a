namespace AgentHost.Llama.Decoding;

/// <summary>How a strategy uses <see cref="GenerationRequest.Sampling"/>.</summary>
public enum SamplingUse
{
    /// <summary>Never samples (greedy): sampling settings are an error.</summary>
    Never,
    /// <summary>Greedy without sampling settings, sampling with them.</summary>
    Optional,
    /// <summary>Always samples (defaults when none are given).</summary>
    Always,
}
