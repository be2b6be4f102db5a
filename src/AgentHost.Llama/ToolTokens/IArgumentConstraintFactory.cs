using AgentHost.Llama.Models;

namespace AgentHost.Llama.ToolTokens;

/// <summary>Creates an <see cref="IArgumentConstraint"/> per call.</summary>
public interface IArgumentConstraintFactory
{
    /// <summary>
    /// A fresh constraint for one call of <paramref name="tool"/>; throws an <see cref="AgentHostException"/>
    /// when it cannot constrain that tool's arguments (so a strategy can refuse it up front).
    /// </summary>
    IArgumentConstraint Create(ToolDefinition tool, LlamaModel model);
}
