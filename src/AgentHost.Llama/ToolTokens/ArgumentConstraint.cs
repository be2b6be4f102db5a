using System.Globalization;
using System.Text;
using System.Text.Json;
using AgentHost.Llama.Models;

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

/// <summary>Creates an <see cref="IArgumentConstraint"/> per call.</summary>
public interface IArgumentConstraintFactory
{
    /// <summary>
    /// A fresh constraint for one call of <paramref name="tool"/>; throws an <see cref="AgentHostException"/>
    /// when it cannot constrain that tool's arguments (so a strategy can refuse it up front).
    /// </summary>
    IArgumentConstraint Create(ToolDefinition tool, LlamaModel model);
}

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

/// <summary>
/// The simple constraint for tools whose arguments are all numbers (<c>integer</c> or <c>number</c>):
/// positional numbers separated by commas, closed by <c>)</c>, e.g. <c>3, 4)</c>; allowed bytes are digits,
/// '-', '.', ',', ' ' (one, before a number) and ')'. Arguments map to the schema's properties in order.
/// </summary>
public sealed class NumericArgumentConstraints : IArgumentConstraintFactory
{
    /// <summary>The shared instance.</summary>
    public static NumericArgumentConstraints Instance { get; } = new();

    /// <inheritdoc />
    public IArgumentConstraint Create(ToolDefinition tool, LlamaModel model)
    {
        ArgumentNullException.ThrowIfNull(tool);
        ArgumentNullException.ThrowIfNull(model);
        return new Constraint(ReadParameters(tool), model.Vocabulary);
    }

    /// <summary>Whether every argument of <paramref name="tool"/> is a number (what this constraint handles).</summary>
    public static bool TakesOnlyNumbers(ToolDefinition tool)
    {
        try
        {
            ReadParameters(tool);
            return true;
        }
        catch (AgentHostException)
        {
            return false;
        }
    }

    private static (string Name, bool Integer)[] ReadParameters(ToolDefinition tool)
    {
        JsonElement schema;
        try
        {
            schema = JsonDocument.Parse(tool.ParametersSchema).RootElement;
        }
        catch (JsonException e)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"The arguments schema of tool '{tool.Name}' is not valid JSON: {e.Message}", e);
        }
        var parameters = new List<(string, bool)>();
        if (schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in properties.EnumerateObject())
            {
                var type = property.Value.ValueKind == JsonValueKind.Object && property.Value.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
                if (type is not ("integer" or "number"))
                {
                    throw new AgentHostException(ErrorKind.InvalidArgument,
                        $"Argument '{property.Name}' of tool '{tool.Name}' is not a number; the numeric argument constraint only handles numbers (a JSON-schema grammar is needed for it).");
                }
                parameters.Add((property.Name, type == "integer"));
            }
        }
        return [.. parameters];
    }

    private enum Phase { BeforeNumber, AfterSpace, AfterMinus, Integer, AfterDot, Fraction, AfterNumber, Done }

    private sealed class Constraint((string Name, bool Integer)[] parameters, TokenVocabulary vocabulary) : IArgumentConstraint
    {
        private const int MaxDigits = 9;
        private readonly StringBuilder _text = new();
        private Phase _phase = parameters.Length == 0 ? Phase.AfterNumber : Phase.BeforeNumber;
        private int _argument;
        private int _digits;

        public bool IsComplete => _phase == Phase.Done;

        public string ArgumentsJson
        {
            get
            {
                if (!IsComplete)
                    throw new InvalidOperationException("The call is not complete.");
                var values = _text.ToString().Split(',');
                using var stream = new MemoryStream();
                using (var writer = new Utf8JsonWriter(stream))
                {
                    writer.WriteStartObject();
                    for (var i = 0; i < parameters.Length; i++)
                    {
                        var text = values[i].Trim();
                        if (parameters[i].Integer)
                            writer.WriteNumber(parameters[i].Name, long.Parse(text, CultureInfo.InvariantCulture));
                        else
                            writer.WriteNumber(parameters[i].Name, double.Parse(text, CultureInfo.InvariantCulture));
                    }
                    writer.WriteEndObject();
                }
                return Encoding.UTF8.GetString(stream.ToArray());
            }
        }

        public void Mask(Span<float> logits)
        {
            for (var token = 0; token < logits.Length; token++)
            {
                if (!Fits(vocabulary.GetBytes(token)))
                    logits[token] = float.NegativeInfinity;
            }
        }

        public void Accept(int token)
        {
            foreach (var b in vocabulary.GetBytes(token))
            {
                if (!Step(ref _phase, ref _argument, ref _digits, b))
                    throw new InvalidOperationException($"Token {token} does not fit the arguments.");
                if (b != ')')
                    _text.Append((char)b);
            }
        }

        private bool Fits(ReadOnlySpan<byte> bytes)
        {
            if (bytes.IsEmpty)
                return false;
            var phase = _phase;
            var argument = _argument;
            var digits = _digits;
            foreach (var b in bytes)
            {
                if (!Step(ref phase, ref argument, ref digits, b))
                    return false;
            }
            return true;
        }

        private bool Step(ref Phase phase, ref int argument, ref int digits, byte c)
        {
            var isDigit = c is >= (byte)'0' and <= (byte)'9';
            var last = argument >= parameters.Length - 1;
            switch (phase)
            {
                case Phase.BeforeNumber:
                case Phase.AfterSpace:
                    if (c == ' ' && phase == Phase.BeforeNumber)
                    {
                        phase = Phase.AfterSpace; // at most one space before a number
                        return true;
                    }
                    if (c == '-')
                    {
                        phase = Phase.AfterMinus;
                        return true;
                    }
                    if (!isDigit)
                        return false;
                    phase = Phase.Integer;
                    digits = 1;
                    return true;
                case Phase.AfterMinus:
                    if (!isDigit)
                        return false;
                    phase = Phase.Integer;
                    digits = 1;
                    return true;
                case Phase.Integer:
                case Phase.Fraction:
                    if (isDigit)
                        return ++digits <= MaxDigits;
                    if (c == '.' && phase == Phase.Integer && !parameters[argument].Integer)
                    {
                        phase = Phase.AfterDot;
                        return true;
                    }
                    return EndOfNumber(ref phase, ref argument, c, last);
                case Phase.AfterDot:
                    if (!isDigit)
                        return false;
                    phase = Phase.Fraction;
                    return true;
                case Phase.AfterNumber:
                    return EndOfNumber(ref phase, ref argument, c, last);
                default:
                    return false;
            }
        }

        private static bool EndOfNumber(ref Phase phase, ref int argument, byte c, bool last)
        {
            if (c == ',' && !last)
            {
                argument++;
                phase = Phase.BeforeNumber;
                return true;
            }
            if (c == ')' && last)
            {
                phase = Phase.Done;
                return true;
            }
            return false;
        }
    }
}
