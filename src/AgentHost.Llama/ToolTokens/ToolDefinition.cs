using System.Security.Cryptography;
using System.Text;

namespace AgentHost.Llama.ToolTokens;

/// <summary>Runs a tool: (tool name, arguments as a JSON object, cancellation) -> result text.</summary>
public delegate Task<string> ToolInvoker(string name, string argumentsJson, CancellationToken cancellationToken);

/// <summary>
/// A tool a tool-token head can call, independent of where it comes from (a Semantic Kernel function,
/// a built-in, a test): its name, the JSON schema of its arguments and how to invoke it.
/// </summary>
public sealed class ToolDefinition
{
    /// <summary>Creates a tool.</summary>
    /// <param name="name">Tool name (also the text the prior is built from).</param>
    /// <param name="parametersSchema">JSON schema of the arguments object (<c>{"type":"object","properties":{...}}</c>).</param>
    /// <param name="invoke">Runs the tool.</param>
    /// <param name="description">Optional description.</param>
    public ToolDefinition(string name, string parametersSchema, ToolInvoker invoke, string? description = null)
    {
        ArgumentNullException.ThrowIfNull(invoke);
        if (string.IsNullOrWhiteSpace(name))
            throw new AgentHostException(ErrorKind.InvalidArgument, "A tool needs a name.");
        if (string.IsNullOrWhiteSpace(parametersSchema))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Tool '{name}' needs a JSON schema for its arguments.");
        Name = name;
        ParametersSchema = parametersSchema;
        Invoke = invoke;
        Description = description;
        SchemaHash = HashSchema(parametersSchema);
    }

    /// <summary>Tool name.</summary>
    public string Name { get; }

    /// <summary>JSON schema of the arguments object.</summary>
    public string ParametersSchema { get; }

    /// <summary>Optional description.</summary>
    public string? Description { get; }

    /// <summary>Runs the tool.</summary>
    public ToolInvoker Invoke { get; }

    /// <summary>
    /// Demonstrations for argument mode (ToolkenGPT's tool-specific prompt), e.g. lines of text ending in calls
    /// <c>... Now he had add(3, 4)</c>. When set, a call's arguments are generated after this prompt followed by
    /// the text so far and the call start; when null, after the text so far alone.
    /// </summary>
    public string? ArgumentPrompt { get; init; }

    /// <summary>SHA-256 (hex) of the schema text: a head file records it so that a changed tool is noticed.</summary>
    public string SchemaHash { get; }

    private static string HashSchema(string schema) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(schema)));
}
