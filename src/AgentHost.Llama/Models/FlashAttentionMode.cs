namespace AgentHost.Llama.Models;

/// <summary>Flash attention mode of a context.</summary>
public enum FlashAttentionMode
{
    /// <summary>Let llama.cpp decide (on for CPU in this build).</summary>
    Auto,
    /// <summary>Always on.</summary>
    On,
    /// <summary>Always off.</summary>
    Off,
}
