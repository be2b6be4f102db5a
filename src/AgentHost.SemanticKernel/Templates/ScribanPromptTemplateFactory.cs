using System.Diagnostics.CodeAnalysis;
using AgentHost.Extensions.AI.Templates;
using Microsoft.SemanticKernel;

namespace AgentHost.SemanticKernel.Templates;

/// <summary>
/// Creates <see cref="ScribanPromptTemplate"/> instances for prompt configs whose
/// <see cref="PromptTemplateConfig.TemplateFormat"/> is <see cref="ScribanTemplateFormat"/>.
/// Composes with <see cref="AggregatorPromptTemplateFactory"/>.
/// </summary>
public sealed class ScribanPromptTemplateFactory : IPromptTemplateFactory
{
    /// <summary>The template format name this factory handles.</summary>
    public const string ScribanTemplateFormat = "scriban";

    private readonly ScribanLimits _options;

    /// <summary>Creates a factory whose templates use <paramref name="options"/> (defaults when null).</summary>
    /// <param name="options">Safety limits for rendering.</param>
    public ScribanPromptTemplateFactory(ScribanLimits? options = null)
    {
        _options = options ?? new ScribanLimits();
    }

    /// <inheritdoc />
    public bool TryCreate(PromptTemplateConfig templateConfig, [NotNullWhen(true)] out IPromptTemplate? result)
    {
        ArgumentNullException.ThrowIfNull(templateConfig);
        if (string.Equals(templateConfig.TemplateFormat, ScribanTemplateFormat, StringComparison.Ordinal))
        {
            result = new ScribanPromptTemplate(templateConfig, _options);
            return true;
        }

        result = null;
        return false;
    }
}
