using AgentHost.Extensions.AI.Templates;
using AgentHost.Llama;
using AgentHost.SemanticKernel.Templates;
using Scriban;
using Scriban.Runtime;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace AgentHost.SemanticKernel.Agents;

/// <summary>
/// An agent as declared in <c>prompts/agents/NAME.yaml</c>: who it is (name, description, Scriban
/// instructions), what it runs on (model, decoding strategy, max tokens) and what it may call (plugins,
/// other agents, tool rounds, tool choice).
/// </summary>
public sealed class AgentDefinition
{
    /// <summary>Name (also the function name other agents call it by): letters, digits, '_' and '-'.</summary>
    public string Name { get; set; } = "";

    /// <summary>What the agent does; other agents read it as the function's description.</summary>
    public string Description { get; set; } = "";

    /// <summary>Catalog model name; null for the default model.</summary>
    public string? Model { get; set; }

    /// <summary>Scriban template of the system message; sees <c>name</c>, <c>description</c>, <c>date</c> and <c>input</c>.</summary>
    public string Instructions { get; set; } = "";

    /// <summary>Plugins (<c>Math</c>) or single functions (<c>Math.Add</c>) the agent may call.</summary>
    public List<string> Plugins { get; set; } = [];

    /// <summary>Other agents it may call as functions (each takes one <c>input</c> text).</summary>
    public List<string> Agents { get; set; } = [];

    /// <summary>Decoding strategy of its replies (default greedy).</summary>
    public string? DecodingStrategy { get; set; }

    /// <summary>Most rounds of tool calls per request (default 4).</summary>
    public int MaxToolRounds { get; set; } = 4;

    /// <summary>Most tokens per reply (default 256).</summary>
    public int MaxTokens { get; set; } = 256;

    /// <summary>auto (default), required (the first reply must call a tool) or none.</summary>
    public string ToolChoice { get; set; } = "auto";

    /// <summary>The file it was read from.</summary>
    [YamlIgnore]
    public string? Source { get; set; }

    [YamlIgnore]
    internal Template? ParsedInstructions { get; private set; }

    private static readonly IDeserializer _yaml = new DeserializerBuilder()
        .WithNamingConvention(UnderscoredNamingConvention.Instance)
        .Build();

    /// <summary>Reads and validates one definition; every problem is an error naming the file.</summary>
    public static AgentDefinition Parse(string yaml, string source)
    {
        AgentDefinition definition;
        try
        {
            definition = _yaml.Deserialize<AgentDefinition>(yaml) ?? throw Invalid(source, "the file is empty");
        }
        catch (YamlException e)
        {
            throw Invalid(source, $"line {e.Start.Line}: {(e.InnerException ?? e).Message}");
        }
        definition.Source = source;
        definition.Validate();
        return definition;
    }

    /// <summary>Checks every field; throws <see cref="AgentHostException"/> naming the file and the field.</summary>
    public void Validate()
    {
        var source = Source ?? Name;
        if (string.IsNullOrWhiteSpace(Name) || !Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
            throw Invalid(source, $"'name' must be letters, digits, '_' or '-' (got '{Name}')");
        if (string.IsNullOrWhiteSpace(Description))
            throw Invalid(source, "'description' is required (other agents and tools read it)");
        if (MaxToolRounds is < 1 or > 32)
            throw Invalid(source, $"'max_tool_rounds' must be 1 to 32, not {MaxToolRounds}");
        if (MaxTokens < 1)
            throw Invalid(source, $"'max_tokens' must be at least 1, not {MaxTokens}");
        if (ToolChoice is not ("auto" or "required" or "none"))
            throw Invalid(source, $"'tool_choice' must be auto, required or none, not '{ToolChoice}'");
        if (DecodingStrategy is not null)
            Llama.Decoding.DecodingStrategies.Find(DecodingStrategy);
        if (Agents.Contains(Name, StringComparer.Ordinal))
            throw Invalid(source, "an agent cannot list itself in 'agents'");
        var template = BoundedScriban.Parse(Instructions, source, ScribanLimits.Default);
        if (template.HasErrors)
            throw Invalid(source, $"'instructions' has a template error: {string.Join("; ", template.Messages)}");
        ParsedInstructions = template;
    }

    /// <summary>The system message for a request.</summary>
    public string RenderInstructions(string input)
    {
        ParsedInstructions ??= BoundedScriban.Parse(Instructions, Source ?? Name, ScribanLimits.Default);
        var globals = new ScriptObject
        {
            ["name"] = Name,
            ["description"] = Description,
            ["input"] = input,
            ["date"] = DateTime.Now.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
        };
        return BoundedScriban.Render(ParsedInstructions, $"Agent definition '{Source ?? Name}': 'instructions'", globals, ScribanLimits.Default).Trim();
    }

    private static AgentHostException Invalid(string source, string problem)
        => new(ErrorKind.InvalidArgument, $"Agent definition '{source}': {problem}.");
}
