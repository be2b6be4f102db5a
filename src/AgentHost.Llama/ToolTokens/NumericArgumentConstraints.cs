using System.Globalization;
using System.Text;
using System.Text.Json;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.ToolTokens;

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
