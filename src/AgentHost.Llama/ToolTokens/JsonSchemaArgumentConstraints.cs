using System.Text;
using System.Text.Json;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.ToolTokens;

/// <summary>
/// Arguments as a JSON object constrained by a grammar generated from the tool's JSON schema, closed by
/// <c>)</c>: e.g. <c>{"a":3,"b":4})</c>. Handles every schema the converter handles (strings, nested objects,
/// enums ...). <see cref="Default"/> keeps the short positional form for all-number tools and uses this for
/// the rest.
/// </summary>
public sealed class JsonSchemaArgumentConstraints : IArgumentConstraintFactory
{
    // Compact JSON with bounded strings: a small model must still close its call.
    private static readonly Grammar.JsonGrammarOptions _options = new() { MaxWhitespace = 0, MaxStringLength = 64, MaxArrayItems = 8 };

    /// <summary>The shared instance.</summary>
    public static JsonSchemaArgumentConstraints Instance { get; } = new();

    /// <summary>Positional numbers for all-number tools (what the demo corpus teaches), the JSON-schema grammar otherwise.</summary>
    public static IArgumentConstraintFactory Default { get; } = new NumbersOrJson();

    /// <inheritdoc />
    public IArgumentConstraint Create(ToolDefinition tool, LlamaModel model)
    {
        ArgumentNullException.ThrowIfNull(tool);
        ArgumentNullException.ThrowIfNull(model);
        JsonElement schema;
        try
        {
            schema = JsonDocument.Parse(tool.ParametersSchema).RootElement;
        }
        catch (JsonException e)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"The arguments schema of tool '{tool.Name}' is not valid JSON: {e.Message}", e);
        }
        var builder = new Grammar.GbnfBuilder(_options);
        var arguments = builder.AddJsonSchema(schema);
        return new Constraint(Grammar.GrammarSampler.Create(model, builder.ToConstraint($"{arguments} {Grammar.GbnfBuilder.Literal(")")}")), model.Vocabulary);
    }

    private sealed class Constraint(Grammar.GrammarSampler grammar, TokenVocabulary vocabulary) : IArgumentConstraint
    {
        private readonly List<byte> _text = [];

        public bool IsComplete { get; private set; }

        public string ArgumentsJson => IsComplete
            ? Encoding.UTF8.GetString([.. _text])[..^1]   // without the closing ')'
            : throw new InvalidOperationException("The call is not complete.");

        public void Mask(Span<float> logits)
        {
            grammar.MaskInPlace(logits);
            // The call ends with ')', not with end-of-generation.
            if (vocabulary.Eos >= 0)
                logits[vocabulary.Eos] = float.NegativeInfinity;
        }

        public void Accept(int token)
        {
            grammar.Accept(token);
            _text.AddRange(vocabulary.GetBytes(token));
            if (grammar.IsComplete)
            {
                IsComplete = true;
                grammar.Dispose();
            }
        }
    }

    private sealed class NumbersOrJson : IArgumentConstraintFactory
    {
        public IArgumentConstraint Create(ToolDefinition tool, LlamaModel model)
            => NumericArgumentConstraints.TakesOnlyNumbers(tool) ? NumericArgumentConstraints.Instance.Create(tool, model) : Instance.Create(tool, model);
    }
}
