using System.Text.Json;

namespace AgentHost.Llama.ToolTokens;

/// <summary>
/// Constrains the tokens of a tool call's arguments in argument mode (after the call start
/// <c>name(</c>): masks what may not come next, follows the chosen tokens, and turns the finished
/// text into the JSON arguments object. A grammar generated from the tool's JSON schema plugs in here.
/// </summary>
public interface IArgumentConstraint
{
    /// <summary>Sets the logits of tokens that may not come next to negative infinity.</summary>
    void Mask(Span<float> logits);

    /// <summary>Follows the chosen token (one that <see cref="Mask"/> allowed).</summary>
    void Accept(int token);

    /// <summary>Whether the call is closed (its arguments are complete).</summary>
    bool IsComplete { get; }

    /// <summary>The arguments as a JSON object, once <see cref="IsComplete"/>.</summary>
    string ArgumentsJson { get; }
}
