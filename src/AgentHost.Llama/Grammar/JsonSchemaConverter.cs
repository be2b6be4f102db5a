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
internal sealed class JsonSchemaConverter(GbnfBuilder builder, JsonElement root)
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

    public string Convert(string name)
    {
        var rule = builder.Reserve(name);
        builder.Define(rule, Visit(root, "#", rule));
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

    // Returns a GBNF expression for values valid against the schema.
    private string Visit(JsonElement schema, string path, string hint)
    {
        switch (schema.ValueKind)
        {
            case JsonValueKind.True:
                return builder.Primitive("value");
            case JsonValueKind.False:
                Unsupported(path, "false (a schema no value matches)");
                return builder.Primitive("value");
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
            return GbnfBuilder.Literal(GbnfBuilder.CompactJson(constant));
        if (schema.TryGetProperty("enum", out var values))
        {
            if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"enum at {path} must be a non-empty array.");
            var literals = new List<string>();
            foreach (var value in values.EnumerateArray())
                literals.Add(GbnfBuilder.Literal(GbnfBuilder.CompactJson(value)));
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
                alternatives.Add(Rule(option, $"{path}/{keyword}/{i}", $"{hint}-{i}"));
                i++;
            }
            return Alternatives(alternatives);
        }

        var types = new List<string>();
        if (schema.TryGetProperty("type", out var type))
        {
            if (type.ValueKind == JsonValueKind.String)
            {
                types.Add(type.GetString()!);
            }
            else if (type.ValueKind == JsonValueKind.Array)
            {
                foreach (var t in type.EnumerateArray())
                    types.Add(t.ValueKind == JsonValueKind.String ? t.GetString()! : throw new AgentHostException(ErrorKind.InvalidArgument, $"type at {path} must hold type names."));
            }
            else
            {
                throw new AgentHostException(ErrorKind.InvalidArgument, $"type at {path} must be a type name or an array of them.");
            }
        }
        else if (Has(schema, "properties", "required", "additionalProperties"))
        {
            types.Add("object");
        }
        else if (Has(schema, "items", "minItems", "maxItems"))
        {
            types.Add("array");
        }
        else if (Has(schema, "minLength", "maxLength"))
        {
            types.Add("string");
        }
        else
        {
            return builder.Primitive("value");
        }

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
        _ => throw new AgentHostException(ErrorKind.InvalidArgument, $"Unknown type '{type}' at {path}; JSON schema types are string, number, integer, boolean, null, object and array."),
    };

    private string Number(JsonElement schema, string path)
    {
        foreach (var keyword in _bounds)
        {
            if (schema.TryGetProperty(keyword, out _))
                Unsupported(path, keyword + " of a number (bounds are supported on integers)");
        }
        return builder.Primitive("number");
    }

    private string Integer(JsonElement schema, string path)
    {
        long? min = null, max = null;
        foreach (var keyword in _bounds)
        {
            if (!schema.TryGetProperty(keyword, out var value))
                continue;
            if (value.ValueKind != JsonValueKind.Number)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"{keyword} at {path} must be a number.");
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
            throw new AgentHostException(ErrorKind.InvalidArgument, $"No integer lies between the bounds at {path}.");
        return builder.IntegerRule(min, max);
    }

    private string String(JsonElement schema, string path)
    {
        if (!schema.TryGetProperty("format", out var format))
            return builder.StringRule(GetCount(schema, "minLength", path) ?? 0, GetCount(schema, "maxLength", path));
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
        var names = new List<string>();
        var schemas = new List<JsonElement?>();
        if (schema.TryGetProperty("properties", out var properties))
        {
            if (properties.ValueKind != JsonValueKind.Object)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"properties at {path} must be an object.");
            foreach (var property in properties.EnumerateObject())
            {
                names.Add(property.Name);
                schemas.Add(property.Value);
            }
        }
        var required = new HashSet<string>(StringComparer.Ordinal);
        if (schema.TryGetProperty("required", out var requiredNames))
        {
            if (requiredNames.ValueKind != JsonValueKind.Array)
                throw new AgentHostException(ErrorKind.InvalidArgument, $"required at {path} must be an array of property names.");
            foreach (var name in requiredNames.EnumerateArray())
            {
                var text = name.ValueKind == JsonValueKind.String ? name.GetString()! : throw new AgentHostException(ErrorKind.InvalidArgument, $"required at {path} must hold property names.");
                required.Add(text);
                if (!names.Contains(text))
                {
                    names.Add(text);     // required without a schema: any value
                    schemas.Add(null);
                }
            }
        }

        // Extra properties: none when the schema declares some (tool arguments), any when it declares none.
        string? extraValue = names.Count == 0 ? builder.Primitive("value") : null;
        if (schema.TryGetProperty("additionalProperties", out var additional))
        {
            extraValue = additional.ValueKind switch
            {
                JsonValueKind.False => null,
                JsonValueKind.True => builder.Primitive("value"),
                _ => Rule(additional, path + "/additionalProperties", hint + "-additional"),
            };
        }
        if (names.Count == 0 && extraValue == builder.Primitive("value"))
            return builder.Primitive("object");

        var ws = builder.Primitive("ws");
        var members = new string[names.Count];
        for (var i = 0; i < names.Count; i++)
        {
            var value = schemas[i] is { } s ? Rule(s, $"{path}/properties/{Escape(names[i])}", $"{hint}-{names[i]}") : builder.Primitive("value");
            members[i] = $"{GbnfBuilder.JsonLiteral(names[i])} {ws} \":\" {ws} {value} {ws}";
        }
        var extra = extraValue is null ? null : $"{builder.Primitive("string")} {ws} \":\" {ws} {extraValue} {ws}";
        var extraMax = builder.Options.MaxArrayItems;

        // Members after one was written: each required one with its comma, each optional one maybe.
        string Rest(int from)
        {
            var rest = new StringBuilder();
            for (var j = from; j < members.Length; j++)
                rest.Append(required.Contains(names[j]) ? $" \",\" {ws} {members[j]}" : $" (\",\" {ws} {members[j]})?");
            if (extra is not null && extraMax != 0)
                rest.Append(' ').Append(GbnfBuilder.Repeat($"(\",\" {ws} {extra})", 0, extraMax));
            return rest.ToString();
        }

        // The first member written is member i, or (if i is optional) one after it, or none.
        string First(int i)
        {
            if (i == members.Length)
            {
                if (extra is null || extraMax == 0)
                    return "";
                var more = GbnfBuilder.Repeat($"(\",\" {ws} {extra})", 0, extraMax is { } m ? m - 1 : null);
                return $"({extra}{(more.Length == 0 ? "" : " " + more)})?";
            }
            var here = members[i] + Rest(i + 1);
            return required.Contains(names[i]) ? here : $"({here} | {First(i + 1)})";
        }

        var body = First(0);
        return $"\"{{\" {ws} {body}{(body.Length == 0 ? "" : " ")}\"}}\"";
    }

    private string Array(JsonElement schema, string path, string hint)
    {
        var item = schema.TryGetProperty("items", out var items)
            ? Rule(items, path + "/items", hint + "-item")
            : builder.Primitive("value");
        var min = GetCount(schema, "minItems", path) ?? 0;
        var max = GetCount(schema, "maxItems", path);
        if (max < min)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"maxItems is below minItems at {path}.");
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
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var count) || count < 0)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"{keyword} at {path} must be a non-negative integer.");
        if (count <= JsonGrammarOptions.MaxRepetitions)
            return count;
        Unsupported(path, $"{keyword} above {JsonGrammarOptions.MaxRepetitions} (llama.cpp's repetition limit)");
        return null;
    }

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
