namespace AgentHost.Llama.Models;

/// <summary>Where a <see cref="ModelResolver"/> found a model file.</summary>
public enum ModelSource
{
    /// <summary>The user named the file itself.</summary>
    ExplicitPath,
    /// <summary>The models folder (<c>AGENTHOST_MODELS_DIR</c> or <see cref="AgentHostOptions.ModelsDir"/>).</summary>
    ModelsDir,
    /// <summary>The user cache, from an earlier download or placed there by hand.</summary>
    Cache,
    /// <summary>Downloaded into the user cache by this resolution.</summary>
    Downloaded,
    /// <summary>Built into the user cache by this resolution (a stand-in, see <see cref="StandInSettings"/>).</summary>
    Built,
}
