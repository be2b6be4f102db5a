using System.Globalization;
using System.Text;
using System.Text.Json;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.ToolTokens;

/// <summary>
/// ToolkenGPT's argument mode (<c>inference_llama.py</c>): nothing is masked; the model writes freely after the tool's
/// demonstrations and the call start until a token that holds <c>)</c> (the paper's stop tokens <c>)</c> and <c>)=</c>),
/// or end of text. The text is cleaned as the paper's code cleans it (drops <c>=</c>, <c>&gt;</c>, <c>$</c>, thousands
/// commas, spaces; <c>50%</c> becomes 0.5) and its comma-separated values fill the schema's properties in order
/// (numbers as numbers, anything else as strings). Arguments that do not parse, or a call that never closes, fail
/// the call, and the strategy backs off as the paper's code does.
/// </summary>
public sealed class PaperArgumentConstraints : IArgumentConstraintFactory
{
    /// <summary>The shared instance.</summary>
    public static PaperArgumentConstraints Instance { get; } = new();

    /// <inheritdoc />
    public IArgumentConstraint Create(ToolDefinition tool, LlamaModel model)
    {
        ArgumentNullException.ThrowIfNull(tool);
        ArgumentNullException.ThrowIfNull(model);
        return new Constraint(PropertyNames(tool), model.Vocabulary);
    }

    /// <summary>
    /// The arguments text between <c>(</c> and <c>)</c> cleaned as the paper's code does and mapped onto
    /// <paramref name="parameters"/> in order; throws <see cref="FormatException"/> when the count differs.
    /// </summary>
    public static string ToJson(string text, IReadOnlyList<string> parameters)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(parameters);
        var args = text.Replace("=", "", StringComparison.Ordinal).Replace(">", "", StringComparison.Ordinal).Replace("$", "", StringComparison.Ordinal);
        // "1,000, 2" -> "1000, 2": ", " separates arguments, a bare comma is a thousands separator.
        if (args.Contains(", ", StringComparison.Ordinal))
            args = args.Replace(", ", ";", StringComparison.Ordinal).Replace(",", "", StringComparison.Ordinal).Replace(";", ",", StringComparison.Ordinal);
        var values = args.Replace(" ", "", StringComparison.Ordinal).Split(',');
        if (values.Length == 1 && values[0].Length == 0)
            values = [];
        if (values.Length != parameters.Count)
            throw new FormatException($"{values.Length} argument(s) for {parameters.Count} parameter(s): '{text}'");
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            for (var i = 0; i < values.Length; i++)
            {
                var value = values[i];
                var percent = value.EndsWith('%');
                if (double.TryParse(percent ? value[..^1] : value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number))
                    writer.WriteNumber(parameters[i], percent ? number / 100 : number);
                else
                    writer.WriteString(parameters[i], value.Trim('"', '\''));
            }
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static string[] PropertyNames(ToolDefinition tool)
    {
        try
        {
            var schema = JsonDocument.Parse(tool.ParametersSchema).RootElement;
            return schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object
                ? [.. properties.EnumerateObject().Select(p => p.Name)]
                : [];
        }
        catch (JsonException e)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"The arguments schema of tool '{tool.Name}' is not valid JSON: {e.Message}", e);
        }
    }

    private sealed class Constraint(string[] parameters, TokenVocabulary vocabulary) : IArgumentConstraint
    {
        private readonly List<byte> _text = [];
        private bool _ended;

        public bool IsComplete { get; private set; }

        public string ArgumentsJson
        {
            get
            {
                if (!IsComplete)
                    throw new InvalidOperationException("The call is not complete.");
                if (_ended)
                    throw new FormatException("the text ended before the call closed");
                var text = Encoding.UTF8.GetString([.. _text]);
                return ToJson(text[..text.IndexOf(')', StringComparison.Ordinal)], parameters);
            }
        }

        // Free text: the paper masks nothing in argument mode.
        public void Mask(Span<float> logits)
        {
        }

        public void Accept(int token)
        {
            if (token == vocabulary.Eos)
            {
                (_ended, IsComplete) = (true, true);
                return;
            }
            _text.AddRange(vocabulary.GetBytes(token));
            IsComplete = _text.Contains((byte)')');
        }
    }
}
