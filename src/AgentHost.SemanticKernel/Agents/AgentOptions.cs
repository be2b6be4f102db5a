namespace AgentHost.SemanticKernel.Agents;

/// <summary>The <c>Agents</c> configuration section.</summary>
public sealed class AgentOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Agents";

    /// <summary>Folder of agent definitions (<c>*.yaml</c>); relative to the folder of appsettings.json.</summary>
    public string Directory { get; set; } = "prompts/agents";

    /// <summary>How deep agents may call agents.</summary>
    public int MaxDepth { get; set; } = 3;
}
