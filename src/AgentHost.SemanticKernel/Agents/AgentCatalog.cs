using AgentHost.Llama;

namespace AgentHost.SemanticKernel.Agents;

/// <summary>The agents of a folder (<c>prompts/agents/*.yaml</c>), checked as a whole: names unique, every listed agent known.</summary>
public sealed class AgentCatalog
{
    private readonly Dictionary<string, AgentDefinition> _agents;

    /// <summary>Creates a catalog from definitions (checked like a folder).</summary>
    public AgentCatalog(IEnumerable<AgentDefinition> agents)
    {
        _agents = new Dictionary<string, AgentDefinition>(StringComparer.OrdinalIgnoreCase);
        foreach (var agent in agents)
        {
            if (!_agents.TryAdd(agent.Name, agent))
                throw new AgentHostException(ErrorKind.InvalidArgument, $"Two agents are named '{agent.Name}' ({_agents[agent.Name].Source} and {agent.Source}).");
        }
        foreach (var agent in _agents.Values)
        {
            foreach (var other in agent.Agents)
            {
                if (!_agents.ContainsKey(other))
                    throw new AgentHostException(ErrorKind.InvalidArgument, $"Agent definition '{agent.Source ?? agent.Name}': 'agents' lists '{other}', which is not defined. Known agents: {string.Join(", ", Names)}.");
            }
        }
    }

    /// <summary>Agent names, sorted.</summary>
    public IReadOnlyList<string> Names => _agents.Keys.Order(StringComparer.Ordinal).ToList();

    /// <summary>Reads every <c>*.yaml</c> / <c>*.yml</c> in <paramref name="directory"/>.</summary>
    public static AgentCatalog Load(string directory)
    {
        if (!Directory.Exists(directory))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Agent folder '{directory}' does not exist.");
        var files = Directory.EnumerateFiles(directory, "*.yaml").Concat(Directory.EnumerateFiles(directory, "*.yml")).Order(StringComparer.Ordinal);
        return new AgentCatalog(files.Select(f => AgentDefinition.Parse(AgentHost.Llama.BoundedFile.ReadAllText(f, "agent definition", AgentHost.Llama.BoundedFile.MaxTemplateBytes), f)));
    }

    /// <summary>
    /// The plugins <paramref name="agent"/> and every agent it may call (and they, recursively) list, by plugin name
    /// (<c>Math</c> for <c>Math.Add</c>): what a kernel must hold to run it.
    /// </summary>
    /// <exception cref="AgentHostException">No agent has that name.</exception>
    public IReadOnlySet<string> PluginsUsedBy(string agent)
    {
        var plugins = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var pending = new Stack<AgentDefinition>([Get(agent)]);
        while (pending.TryPop(out var next))
        {
            if (!seen.Add(next.Name))
                continue;   // agents may call each other in a cycle
            foreach (var entry in next.Plugins)
                plugins.Add(entry.Split('.', 2)[0]);
            foreach (var callee in next.Agents)
                pending.Push(Get(callee));
        }
        return plugins;
    }

    /// <summary>The agent <paramref name="name"/>, or an error listing the known ones.</summary>
    public AgentDefinition Get(string name)
        => _agents.TryGetValue(name, out var agent) ? agent
            : throw new AgentHostException(ErrorKind.InvalidArgument, $"Unknown agent '{name}'. Known agents: {(_agents.Count == 0 ? "none" : string.Join(", ", Names))}.");
}
