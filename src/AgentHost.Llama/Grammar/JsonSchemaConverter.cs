using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace AgentHost.Llama.Grammar;

/// <summary>
/// Turns one JSON schema into GBNF rules of a <see cref="GbnfBuilder"/>. Supported: type (one or several),
/// object properties / required / additionalProperties (declared properties in schema order; without
/// additionalProperties only declared ones are written, unless there are none), arrays (items, minItems,
/// maxItems), strings (minLength, maxLength, format date / time / date-time / uuid), integer bounds
/// (minimum, maximum, exclusive ones), enum and const of any JSON value, numbers, integers, booleans,
/// null, anyOf / oneOf (as alternatives), allOf of one schema or of mergeable objects, and $ref to any JSON
/// pointer within the schema (recursion included). Annotations (title, description, default ...) and
/// keywords JSON Schema does not define (vendor extensions such as SK's <c>condition</c>) are ignored, as
/// validators ignore them; every other JSON Schema keyword is reported.
/// </summary>
internal sealed class JsonSchemaConverter(GbnfBuilder builder, JsonElement root, CancellationToken cancellationToken)
{
    // JSON Schema (draft 2020-12 and earlier) validation keywords; those not handled below are reported.
    private static readonly HashSet<string> _unexpressed =
    [
        "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "not", "if", "then", "else",
        "dependentRequired", "dependentSchemas", "dependencies", "patternProperties", "propertyNames", "unevaluatedProperties",
        "unevaluatedItems", "prefixItems", "contains", "minContains", "maxContains", "uniqueItems", "minProperties", "maxProperties",
        "additionalItems", "contentEncoding", "contentMediaType", "contentSchema", "$dynamicRef", "$dynamicAnchor", "$recursiveRef",
        "$recursiveAnchor", "$vocabulary",
    ];
    private static readonly HashSet<string> _handled =
        ["type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "minLength", "maxLength", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum", "const", "anyOf", "oneOf", "allOf", "$ref"];

    private static readonly string[] _bounds = ["minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"];

    private readonly Dictionary<string, string> _refs = [];   // JSON pointer -> rule name
    private readonly List<string> _unsupported = [];
    private int _depth;

    public string Convert(string name)
    {
        var rule = builder.Reserve(name);
        builder.Define(rule, Visit(root, "#", rule));
        if (_refs.Count > 0)
            RefuseEndlessReferences();
        if (_unsupported.Count > 0)
        {
            if (!builder.Options.IgnoreUnsupported)
            {
                throw new AgentHostException(ErrorKind.InvalidArgument,
                    $"The JSON schema uses what the grammar converter cannot express: {string.Join("; ", _unsupported)}. " +
                    "Remove it, or set IgnoreUnsupported to convert without it.");
            }
            builder.Ignore(_unsupported);
        }
        return rule;
    }

    // Returns a GBNF expression for values valid against the schema; bounded in depth and in sub-schemas visited.
    private string Visit(JsonElement schema, string path, string hint)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (++_depth > GrammarLimits.MaxSchemaDepth)
            throw GrammarLimits.Exceeded($"The JSON schema's nesting at {Short(path)}", nameof(GrammarLimits.MaxSchemaDepth), GrammarLimits.MaxSchemaDepth);
        builder.CountSchemaNodes(1);
        var expression = VisitSchema(schema, path, hint);
        _depth--;
        return expression;
    }

    private string VisitSchema(JsonElement schema, string path, string hint)
    {
        switch (schema.ValueKind)
        {
            case JsonValueKind.True:
                return builder.Primitive("value");
            case JsonValueKind.False:
                throw Unsatisfiable(path, "the schema is false (a schema no value matches)");
            case JsonValueKind.Object:
                break;
            default:
                throw new AgentHostException(ErrorKind.InvalidArgument, $"The JSON schema at {path} is a {schema.ValueKind.ToString().ToLowerInvariant()}, not an object or boolean.");
        }

        foreach (var property in schema.EnumerateObject())
        {
            if (_unexpressed.Contains(property.Name) && !_handled.Contains(property.Name))
                Unsupported(path, property.Name);
        }

        if (schema.TryGetProperty("$ref", out var reference))
        {
            foreach (var property in schema.EnumerateObject())
            {
                if (property.Name != "$ref" && _handled.Contains(property.Name))
                    Unsupported(path, property.Name + " beside $ref");
            }
            return Ref(reference, path, hint);
        }
        if (schema.TryGetProperty("const", out var constant))
        {
            if (!MatchesType(schema, constant, path))
                throw Unsatisfiable(path, "const is not of the schema's type");
            if (schema.TryGetProperty("enum", out var choices) && choices.ValueKind == JsonValueKind.Array && !Contains(choices, constant))
                throw Unsatisfiable(path, "const is not among the enum values");
            return GbnfBuilder.Literal(GbnfBuilder.CompactJson(constant));
        }
        if (schema.TryGetProperty("enum", out var values))
        {
            if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"enum at {path} must be a non-empty array.");
            builder.CountSchemaNodes(values.GetArrayLength());
            var literals = new List<string>();
            foreach (var value in values.EnumerateArray())
            {
                // A value of another type than the schema's can never be valid: leave it out.
                if (MatchesType(schema, value, path))
                    literals.Add(GbnfBuilder.Literal(GbnfBuilder.CompactJson(value)));
            }
            if (literals.Count == 0)
                throw Unsatisfiable(path, "no enum value is of the schema's type");
            return Alternatives(literals);
        }
        if (schema.TryGetProperty("allOf", out var all))
            return AllOf(schema, all, path, hint);

        var hasAnyOf = schema.TryGetProperty("anyOf", out var anyOf);
        var hasOneOf = schema.TryGetProperty("oneOf", out var oneOf);
        if (hasAnyOf || hasOneOf)
        {
            if (hasAnyOf && hasOneOf)
                Unsupported(path, "anyOf beside oneOf");
            var keyword = hasAnyOf ? "anyOf" : "oneOf";
            var options = hasAnyOf ? anyOf : oneOf;
            foreach (var property in schema.EnumerateObject())
            {
                if (property.Name is not ("anyOf" or "oneOf") && _handled.Contains(property.Name))
                    Unsupported(path, $"{property.Name} beside {keyword}");
            }
            if (options.ValueKind != JsonValueKind.Array || options.GetArrayLength() == 0)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"{keyword} at {path} must be a non-empty array.");
            var alternatives = new List<string>();
            var i = 0;
            foreach (var option in options.EnumerateArray())
            {
                if (option.ValueKind != JsonValueKind.False)   // an option no value matches adds nothing
                    alternatives.Add(Rule(option, $"{path}/{keyword}/{i}", $"{hint}-{i}"));
                i++;
            }
            if (alternatives.Count == 0)
                throw Unsatisfiable(path, $"every {keyword} option is false");
            return Alternatives(alternatives);
        }

        var types = TypesOrInferred(schema, path);
        if (types.Count == 0)
            return builder.Primitive("value");

        var expressions = new List<string>();
        foreach (var t in types)
            expressions.Add(Type(schema, t, path, hint));
        return Alternatives(expressions);
    }

    private string Type(JsonElement schema, string type, string path, string hint) => type switch
    {
        "string" => String(schema, path),
        "number" => Number(schema, path),
        "integer" => Integer(schema, path),
        "boolean" => builder.Primitive("boolean"),
        "null" => builder.Primitive("null"),
        "object" => Object(schema, path, hint),
        "array" => Array(schema, path, hint),
        _ => throw UnknownType(type, path),
    };

    private string Number(JsonElement schema, string path)
    {
        CheckBounds(schema, path);
        foreach (var keyword in _bounds)
        {
            if (schema.TryGetProperty(keyword, out _))
                Unsupported(path, keyword + " of a number (bounds are supported on integers)");
        }
        return builder.Primitive("number");
    }

    private string Integer(JsonElement schema, string path)
    {
        CheckBounds(schema, path);
        long? min = null, max = null;
        foreach (var keyword in _bounds)
        {
            if (!schema.TryGetProperty(keyword, out var value))
                continue;
            var bound = value.GetDouble();
            if (Math.Abs(bound) > 1e17)
            {
                Unsupported(path, $"{keyword} beyond 1e17");
                continue;
            }
            // As an inclusive integer bound; the tighter of minimum and exclusiveMinimum wins.
            switch (keyword)
            {
                case "minimum": min = Math.Max(min ?? long.MinValue, (long)Math.Ceiling(bound)); break;
                case "exclusiveMinimum": min = Math.Max(min ?? long.MinValue, (long)Math.Floor(bound) + 1); break;
                case "maximum": max = Math.Min(max ?? long.MaxValue, (long)Math.Floor(bound)); break;
                default: max = Math.Min(max ?? long.MaxValue, (long)Math.Ceiling(bound) - 1); break;
            }
        }
        if (min > max)
            throw Unsatisfiable(path, "no integer lies between the bounds");
        return builder.IntegerRule(min, max);
    }

    // Bounds that leave no number at all (minimum above maximum, or equal with one of them exclusive).
    private static void CheckBounds(JsonElement schema, string path)
    {
        double low = double.NegativeInfinity, high = double.PositiveInfinity;
        bool lowExclusive = false, highExclusive = false;
        foreach (var keyword in _bounds)
        {
            if (!schema.TryGetProperty(keyword, out var value))
                continue;
            if (value.ValueKind != JsonValueKind.Number)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"{keyword} at {path} must be a number.");
            var bound = value.GetDouble();
            var exclusive = keyword.StartsWith("exclusive", StringComparison.Ordinal);
            if (keyword.EndsWith("inimum", StringComparison.Ordinal))
            {
                if (bound > low || (bound == low && exclusive))
                    (low, lowExclusive) = (bound, exclusive);
            }
            else if (bound < high || (bound == high && exclusive))
            {
                (high, highExclusive) = (bound, exclusive);
            }
        }
        if (low > high || (low == high && (lowExclusive || highExclusive)))
            throw Unsatisfiable(path, "no number lies between the bounds");
    }

    private string String(JsonElement schema, string path)
    {
        var (minLength, maxLength) = GetCounts(schema, "minLength", "maxLength", path);
        if (!schema.TryGetProperty("format", out var format))
            return builder.StringRule(minLength ?? 0, maxLength);
        var name = format.ValueKind == JsonValueKind.String ? format.GetString()! : throw new AgentHostException(ErrorKind.InvalidArgument, $"format at {path} must be a string.");
        if (Has(schema, "minLength", "maxLength"))
            Unsupported(path, "minLength/maxLength beside format");
        var rule = builder.FormatRule(name);
        if (rule is null)
        {
            Unsupported(path, $"format '{name}' (supported: {string.Join(", ", GbnfBuilder.Formats)})");
            return builder.StringRule(0, null);
        }
        return rule;
    }

    private string Object(JsonElement schema, string path, string hint)
    {
        // Extra properties: none when the schema declares some (tool arguments), any when it declares none.
        var declared = schema.TryGetProperty("properties", out var properties);
        if (declared && properties.ValueKind != JsonValueKind.Object)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"properties at {path} must be an object.");
        string? extraValue = declared && properties.EnumerateObject().Any() ? null : builder.Primitive("value");
        var additional = default(JsonElement);
        if (schema.TryGetProperty("additionalProperties", out additional))
        {
            extraValue = additional.ValueKind switch
            {
                JsonValueKind.False => null,
                JsonValueKind.True => builder.Primitive("value"),
                _ => Rule(additional, path + "/additionalProperties", hint + "-additional"),
            };
        }

        var required = new HashSet<string>(StringComparer.Ordinal);
        if (schema.TryGetProperty("required", out var requiredNames))
        {
            if (requiredNames.ValueKind != JsonValueKind.Array)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"required at {path} must be an array of property names.");
            builder.CountSchemaNodes(requiredNames.GetArrayLength());
            foreach (var name in requiredNames.EnumerateArray())
                required.Add(name.ValueKind == JsonValueKind.String ? name.GetString()! : throw new AgentHostException(ErrorKind.InvalidArgument, $"required at {path} must hold property names."));
        }
        var (_, maxProperties) = GetCounts(schema, "minProperties", "maxProperties", path);
        if (required.Count > maxProperties)
            throw Unsatisfiable(path, $"{required.Count} properties are required but maxProperties is {maxProperties}");

        var names = new List<string>();
        var values = new List<string>();
        var known = new HashSet<string>(StringComparer.Ordinal);
        if (declared)
        {
            foreach (var property in properties.EnumerateObject())
            {
                known.Add(property.Name);
                if (property.Value.ValueKind == JsonValueKind.False)
                {
                    // No value is valid: the property may not appear at all.
                    if (required.Contains(property.Name))
                        throw Unsatisfiable(path, $"required property '{property.Name}' has the schema false");
                    continue;
                }
                names.Add(property.Name);
                values.Add(Rule(property.Value, $"{path}/properties/{Escape(property.Name)}", $"{hint}-{property.Name}"));
            }
        }
        foreach (var text in required)
        {
            if (!known.Add(text))
                continue;
            // Required without a schema of its own: an extra property, so additionalProperties decides.
            if (additional.ValueKind == JsonValueKind.False)
                throw Unsatisfiable(path, $"required property '{text}' is not allowed (additionalProperties is false and properties does not declare it)");
            names.Add(text);
            values.Add(extraValue ?? builder.Primitive("value"));
        }
        if (names.Count == 0 && extraValue == builder.Primitive("value"))
            return builder.Primitive("object");
        return ObjectBody(names, values, required, extraValue, hint);
    }

    // Members in schema order, each required one always and each optional one maybe, then extra ones. Linear
    // in the number of members: rest-j (what may follow once a member before j was written) is one rule per
    // member, shared by every way of getting there (as llama.cpp's json-schema-to-grammar does), where
    // spelling each way out would grow with the square of the members (1,000 optional ones took gigabytes).
    private string ObjectBody(List<string> names, List<string> values, HashSet<string> required, string? extraValue, string hint)
    {
        var ws = builder.Primitive("ws");
        var extraMax = builder.Options.MaxArrayItems;
        var extra = extraValue is null || extraMax == 0 ? null : $"{builder.Primitive("string")} {ws} \":\" {ws} {extraValue} {ws}";

        string Member(int i) => $"{GbnfBuilder.JsonLiteral(names[i])} {ws} \":\" {ws} {values[i]} {ws}";

        var rest = new string[names.Count + 1];   // rest[j]: the expression for members j.. after a comma ("" : nothing)
        rest[names.Count] = extra is null ? "" : GbnfBuilder.Repeat($"(\",\" {ws} {extra})", 0, extraMax);
        for (var j = names.Count - 1; j >= 1; j--)
        {
            var member = required.Contains(names[j]) ? $"\",\" {ws} {Member(j)}" : $"(\",\" {ws} {Member(j)})?";
            rest[j] = builder.AddRule($"{hint}-rest-{j}", Join(member, rest[j + 1]));
        }

        // The first member written: any optional one up to the first required one, which must come.
        var first = new List<string>();
        var anyRequired = false;
        for (var i = 0; i < names.Count && !anyRequired; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            first.Add(Join(Member(i), rest[i + 1]));
            anyRequired = required.Contains(names[i]);
        }
        if (!anyRequired && extra is not null)
            first.Add(Join(extra, GbnfBuilder.Repeat($"(\",\" {ws} {extra})", 0, extraMax is { } m ? m - 1 : null)));
        // Many alternatives go in a rule of their own: llama.cpp refuses a repeated (here optional) group
        // that introduces as many rules as its repetition threshold.
        var alternatives = string.Join(" | ", first);
        var body = first.Count == 0 ? ""
            : first.Count > 64 ? builder.AddRule(hint + "-first", alternatives) + (anyRequired ? "" : "?")
            : anyRequired ? Alternatives(first) : $"({alternatives})?";
        return $"\"{{\" {ws} {Join(body, "\"}\"")}";

        static string Join(string a, string b) => a.Length == 0 ? b : b.Length == 0 ? a : a + " " + b;
    }

    private string Array(JsonElement schema, string path, string hint)
    {
        var (minItems, max) = GetCounts(schema, "minItems", "maxItems", path);
        var min = minItems ?? 0;
        var hasItems = schema.TryGetProperty("items", out var items);
        if (hasItems && items.ValueKind == JsonValueKind.False)
        {
            // No item is valid: only the empty array.
            if (min > 0)
                throw Unsatisfiable(path, $"items is false but minItems is {min}");
            return builder.ArrayBody(builder.Primitive("value"), 0, 0);
        }
        var item = hasItems ? Rule(items, path + "/items", hint + "-item") : builder.Primitive("value");
        return builder.ArrayBody(item, min, max);
    }

    private string AllOf(JsonElement schema, JsonElement all, string path, string hint)
    {
        if (all.ValueKind != JsonValueKind.Array || all.GetArrayLength() == 0)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"allOf at {path} must be a non-empty array.");
        var parts = new List<JsonElement>();
        foreach (var part in all.EnumerateArray())
            parts.Add(Follow(part, path));
        var siblings = new JsonObject();
        foreach (var property in schema.EnumerateObject())
        {
            if (property.Name != "allOf" && _handled.Contains(property.Name))
                siblings[property.Name] = JsonNode.Parse(property.Value.GetRawText());
        }
        if (parts.Count == 1 && siblings.Count == 0)
            return Visit(all[0], path + "/allOf/0", hint);

        // Several object schemas merge into one: their properties and required lists joined.
        if (siblings.Count > 0)
            parts.Add(JsonSerializer.SerializeToElement(siblings));
        var properties = new JsonObject();
        var required = new JsonArray();
        var additional = (JsonNode?)null;
        foreach (var part in parts)
        {
            if (part.ValueKind != JsonValueKind.Object)
            {
                Unsupported(path, "allOf of a boolean schema");
                continue;
            }
            foreach (var property in part.EnumerateObject())
            {
                switch (property.Name)
                {
                    case "type" when property.Value.ValueKind == JsonValueKind.String && property.Value.GetString() == "object":
                        break;
                    case "properties" when property.Value.ValueKind == JsonValueKind.Object:
                        foreach (var p in property.Value.EnumerateObject())
                        {
                            if (properties.ContainsKey(p.Name))
                                Unsupported(path, $"allOf declaring property '{p.Name}' twice");
                            else
                                properties[p.Name] = JsonNode.Parse(p.Value.GetRawText());
                        }
                        break;
                    case "required" when property.Value.ValueKind == JsonValueKind.Array:
                        foreach (var r in property.Value.EnumerateArray())
                            required.Add(JsonNode.Parse(r.GetRawText()));
                        break;
                    case "additionalProperties":
                        additional = JsonNode.Parse(property.Value.GetRawText());
                        break;
                    default:
                        if (_handled.Contains(property.Name))
                            Unsupported(path, $"allOf of schemas other than objects ({property.Name})");
                        break;
                }
            }
        }
        var merged = new JsonObject { ["type"] = "object", ["properties"] = properties, ["required"] = required };
        if (additional is not null)
            merged["additionalProperties"] = additional;
        return Object(JsonSerializer.SerializeToElement(merged), path, hint);
    }

    // A rule for a sub-schema: a $ref's shared rule, or a new rule named after the hint.
    private string Rule(JsonElement schema, string path, string hint)
    {
        if (schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("$ref", out var reference) && schema.EnumerateObject().Count() == 1)
            return Ref(reference, path, hint);
        var name = builder.Reserve(hint);
        builder.Define(name, Visit(schema, path, name));
        return name;
    }

    private string Ref(JsonElement reference, string path, string hint)
    {
        var pointer = reference.ValueKind == JsonValueKind.String ? reference.GetString()! : throw new AgentHostException(ErrorKind.InvalidArgument, $"$ref at {path} must be a string.");
        if (!pointer.StartsWith('#'))
        {
            Unsupported(path, $"$ref '{pointer}' (only references within the schema, starting with #)");
            return builder.Primitive("value");
        }
        if (_refs.TryGetValue(pointer, out var known))
            return known;
        var target = Resolve(pointer, path);
        var segments = pointer.Split('/');
        var name = builder.Reserve(segments.Length > 1 ? $"{hint}-{segments[^1]}" : hint + "-root");
        _refs[pointer] = name;   // before visiting, so that a recursive reference finds it
        builder.Define(name, Visit(target, pointer, name));
        return name;
    }

    // A referenced schema whose every value must hold a value of itself (a requires b and b requires a, through
    // required properties, arrays with minItems, allOf) has no finite value: its grammar rule can be entered but
    // never finished, and a generation would only stop at max_tokens. Which references can end is a least fixed
    // point (llama.cpp's productive rules): start with none, add each whose schema has a finite value when only
    // those already added can; whatever is left goes round a cycle, which the error names.
    private void RefuseEndlessReferences()
    {
        var finite = new HashSet<string>(StringComparer.Ordinal);
        var targets = new List<(string Pointer, JsonElement Schema)>(_refs.Count);
        foreach (var pointer in _refs.Keys)
            targets.Add((pointer, Resolve(pointer, pointer)));
        for (var changed = true; changed;)
        {
            changed = false;
            foreach (var (pointer, schema) in targets)
            {
                if (!finite.Contains(pointer) && HasFiniteValue(schema, pointer, finite, blocking: null))
                {
                    finite.Add(pointer);
                    changed = true;
                }
            }
        }
        if (finite.Count == targets.Count)
            return;

        // Follow, from the first endless reference, the first reference that keeps each one from ending, until one repeats.
        var next = new Dictionary<string, (string Pointer, string At)>(StringComparer.Ordinal);
        foreach (var (pointer, schema) in targets)
        {
            var blocking = new List<(string Pointer, string At)>();
            if (!finite.Contains(pointer) && !HasFiniteValue(schema, pointer, finite, blocking) && blocking.Count > 0)
                next[pointer] = blocking[0];
        }
        if (targets.FirstOrDefault(t => next.ContainsKey(t.Pointer)).Pointer is not { } start)
            return;   // unsatisfiable for another reason, which the converter reports
        var chain = new List<string>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var current = start; next.ContainsKey(current) && !seen.ContainsKey(current); current = next[current].Pointer)
        {
            seen[current] = chain.Count;
            chain.Add(current);
        }
        var cycleStart = next.TryGetValue(chain[^1], out var last) && seen.TryGetValue(last.Pointer, out var at) ? at : 0;
        var steps = new StringBuilder();
        for (var i = cycleStart; i < chain.Count; i++)
        {
            var (target, where) = next[chain[i]];
            steps.Append(i == cycleStart ? $"{chain[i]} requires {target} (at {where})" : $", which requires {target} (at {where})");
        }
        throw new AgentHostException(ErrorKind.InvalidArgument,
            $"The JSON schema cannot be satisfied at {Short(chain[cycleStart])}: its required values refer to each other without end " +
            $"({Short(steps.ToString())}), so no finite value exists; make one of them optional.");
    }

    // Whether some finite value is valid against the schema, when the references in finite are the only ones known
    // to have one (the converter's reading of the schema: refs, const / enum, allOf, anyOf / oneOf, type or the type
    // its keywords imply). blocking collects the references that decided a false answer, with where they are.
    private bool HasFiniteValue(JsonElement schema, string path, HashSet<string> finite, List<(string Pointer, string At)>? blocking)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (schema.ValueKind != JsonValueKind.Object)
            return schema.ValueKind != JsonValueKind.False;
        if (schema.TryGetProperty("$ref", out var reference))
        {
            if (reference.ValueKind != JsonValueKind.String || reference.GetString() is not { } pointer || !pointer.StartsWith('#') || finite.Contains(pointer))
                return true;
            blocking?.Add((pointer, path));
            return false;
        }
        if (Has(schema, "const", "enum"))
            return true;
        if (schema.TryGetProperty("allOf", out var all) && all.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var part in all.EnumerateArray())
            {
                if (!HasFiniteValue(part, $"{path}/allOf/{i++}", finite, blocking))
                    return false;
            }
            return !Has(schema, "properties", "required") || ObjectHasFiniteValue(schema, path, finite, blocking);
        }
        foreach (var keyword in (ReadOnlySpan<string>)["anyOf", "oneOf"])
        {
            if (!schema.TryGetProperty(keyword, out var options) || options.ValueKind != JsonValueKind.Array)
                continue;
            var i = 0;
            var any = false;
            foreach (var option in options.EnumerateArray())
                any |= HasFiniteValue(option, $"{path}/{keyword}/{i++}", finite, blocking);
            return any;
        }
        var types = TypesOrInferred(schema, path);
        if (types.Count == 0)
            return true;
        foreach (var type in types)
        {
            var ends = type switch
            {
                "object" => ObjectHasFiniteValue(schema, path, finite, blocking),
                "array" => !(schema.TryGetProperty("minItems", out var min) && min.ValueKind == JsonValueKind.Number && min.GetDouble() >= 1
                             && schema.TryGetProperty("items", out var items)) || HasFiniteValue(items, path + "/items", finite, blocking),
                _ => true,
            };
            if (ends)
                return true;
        }
        return false;
    }

    // The schema's types, or the one its keywords imply when it names none (empty: any value).
    private List<string> TypesOrInferred(JsonElement schema, string path)
    {
        var types = Types(schema, path);
        if (types.Count == 0)
        {
            if (Has(schema, "properties", "required", "additionalProperties"))
                types.Add("object");
            else if (Has(schema, "items", "minItems", "maxItems"))
                types.Add("array");
            else if (Has(schema, "minLength", "maxLength"))
                types.Add("string");
        }
        return types;
    }

    // An object has a finite value when each required property does (declared ones by their schema, others by additionalProperties).
    private bool ObjectHasFiniteValue(JsonElement schema, string path, HashSet<string> finite, List<(string Pointer, string At)>? blocking)
    {
        if (!schema.TryGetProperty("required", out var required) || required.ValueKind != JsonValueKind.Array)
            return true;
        var hasProperties = schema.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object;
        foreach (var name in required.EnumerateArray())
        {
            if (name.ValueKind != JsonValueKind.String)
                continue;
            var text = name.GetString()!;
            if (hasProperties && properties.TryGetProperty(text, out var property))
            {
                if (!HasFiniteValue(property, $"{path}/properties/{Escape(text)}", finite, blocking))
                    return false;
            }
            else if (schema.TryGetProperty("additionalProperties", out var additional) && additional.ValueKind == JsonValueKind.Object
                     && !HasFiniteValue(additional, path + "/additionalProperties", finite, blocking))
            {
                return false;
            }
        }
        return true;
    }

    private JsonElement Follow(JsonElement schema, string path)
    {
        for (var hops = 0; schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("$ref", out var reference) && reference.ValueKind == JsonValueKind.String; hops++)
        {
            if (hops > 32)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"$ref at {path} goes round in circles.");
            var pointer = reference.GetString()!;
            if (!pointer.StartsWith('#'))
                break;
            schema = Resolve(pointer, path);
        }
        return schema;
    }

    private JsonElement Resolve(string pointer, string path)
    {
        var current = root;
        var fragment = Uri.UnescapeDataString(pointer[1..]);
        if (fragment.Length > 0)
        {
            if (fragment[0] != '/')
                throw new AgentHostException(ErrorKind.InvalidArgument, $"$ref '{pointer}' at {path} is not a JSON pointer (anchors are not supported).");
            foreach (var raw in fragment[1..].Split('/'))
            {
                var segment = raw.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
                var found = current.ValueKind switch
                {
                    JsonValueKind.Object when current.TryGetProperty(segment, out var child) => child,
                    JsonValueKind.Array when int.TryParse(segment, out var index) && index >= 0 && index < current.GetArrayLength() => current[index],
                    _ => (JsonElement?)null,
                };
                current = found ?? throw new AgentHostException(ErrorKind.InvalidArgument, $"$ref '{pointer}' at {path} does not point into the schema.");
            }
        }
        return current;
    }

    private int? GetCount(JsonElement schema, string keyword, string path)
    {
        if (!schema.TryGetProperty(keyword, out var value))
            return null;
        if (value.ValueKind != JsonValueKind.Number || value.GetDouble() is var count && (!double.IsInteger(count) || count < 0))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"{keyword} at {path} must be a non-negative integer.");
        if (count <= JsonGrammarOptions.MaxRepetitions)
            return (int)count;
        Unsupported(path, $"{keyword} above {JsonGrammarOptions.MaxRepetitions} (llama.cpp's repetition limit)");
        return null;
    }

    // The counts minKeyword and maxKeyword, refused when no value can meet both (compared as given, also beyond the repetition limit).
    private (int? Min, int? Max) GetCounts(JsonElement schema, string minKeyword, string maxKeyword, string path)
    {
        var min = GetCount(schema, minKeyword, path);
        var max = GetCount(schema, maxKeyword, path);
        if (schema.TryGetProperty(minKeyword, out var low) && schema.TryGetProperty(maxKeyword, out var high) && low.GetDouble() > high.GetDouble())
            throw Unsatisfiable(path, $"{maxKeyword} is below {minKeyword} ({high.GetRawText()} < {low.GetRawText()})");
        return (min, max);
    }

    // The type names of the schema's type keyword (empty: none given).
    private static List<string> Types(JsonElement schema, string path)
    {
        var types = new List<string>();
        if (!schema.TryGetProperty("type", out var type))
            return types;
        if (type.ValueKind == JsonValueKind.String)
        {
            types.Add(type.GetString()!);
        }
        else if (type.ValueKind == JsonValueKind.Array)
        {
            foreach (var t in type.EnumerateArray())
                types.Add(t.ValueKind == JsonValueKind.String ? t.GetString()! : throw new AgentHostException(ErrorKind.InvalidArgument, $"type at {path} must hold type names."));
            if (types.Count == 0)
                throw Unsatisfiable(path, "type is an empty list");
        }
        else
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"type at {path} must be a type name or an array of them.");
        }
        return types;
    }

    // Whether the value is of (one of) the schema's types; true when it names none.
    private static bool MatchesType(JsonElement schema, JsonElement value, string path)
    {
        var types = Types(schema, path);
        if (types.Count == 0)
            return true;
        foreach (var type in types)
        {
            var matches = type switch
            {
                "string" => value.ValueKind == JsonValueKind.String,
                "number" => value.ValueKind == JsonValueKind.Number,
                "integer" => value.ValueKind == JsonValueKind.Number && double.IsInteger(value.GetDouble()),
                "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
                "null" => value.ValueKind == JsonValueKind.Null,
                "object" => value.ValueKind == JsonValueKind.Object,
                "array" => value.ValueKind == JsonValueKind.Array,
                _ => throw UnknownType(type, path),
            };
            if (matches)
                return true;
        }
        return false;
    }

    private static bool Contains(JsonElement values, JsonElement value)
    {
        foreach (var candidate in values.EnumerateArray())
        {
            if (JsonElement.DeepEquals(candidate, value))
                return true;
        }
        return false;
    }

    private static AgentHostException UnknownType(string type, string path)
        => new(ErrorKind.InvalidArgument, $"Unknown type '{type}' at {path}; JSON schema types are string, number, integer, boolean, null, object and array.");

    private static AgentHostException Unsatisfiable(string path, string reason)
        => new(ErrorKind.InvalidArgument, $"The JSON schema cannot be satisfied at {Short(path)}: {reason}.");

    // A path short enough for a one-line error.
    private static string Short(string path) => path.Length <= 120 ? path : path[..60] + "..." + path[^57..];

    private static bool Has(JsonElement schema, params ReadOnlySpan<string> keywords)
    {
        foreach (var keyword in keywords)
        {
            if (schema.TryGetProperty(keyword, out _))
                return true;
        }
        return false;
    }

    private static string Alternatives(List<string> expressions)
        => expressions.Count == 1 ? expressions[0] : "(" + string.Join(" | ", expressions) + ")";

    private static string Escape(string name) => name.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    private void Unsupported(string path, string keyword)
    {
        var entry = $"{keyword} at {path}";
        if (!_unsupported.Contains(entry))
            _unsupported.Add(entry);
    }
}
